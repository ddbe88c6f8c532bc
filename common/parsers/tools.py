"""The command lines of the verbs around the measurements: burden, check-timer, choose, compact,
runtimes, peak, list, render, compare and reference. A builder given ``description`` takes
its verb module's docstring (or its first line) as it stands."""
from __future__ import annotations

import argparse
from pathlib import Path

from common import catalogue, paths, records
from common.argtypes import positive, scales, threads
from common.burden.request import SEED_BATCH
from common.parsers import DEVICE_HELP, Parser, DefaultsHelp, switch, device_flag, protocol_overrides, threads_flag
from common.protocol import MIN_ITERS

CHECK_MIN_RUN_S = 1.0  # check-timer: blocked_autorange measures for at least this long


class _OneLine(Parser):
    """burden's parser: one-line errors, abbreviated options accepted as they always were."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, allow_abbrev=True, **kwargs)  # type: ignore[arg-type]


def burden(prog: str) -> argparse.ArgumentParser:
    p = _OneLine(prog=prog, formatter_class=DefaultsHelp,
                 description="Parameter memory, feature memory (convnet-burden's convention and the measured "
                             "CPU peak), MACs and FLOPs of torchvision and timm models, at their typical input "
                             "size and across input sizes; writes the records OUT/records/any/burden/<model>.json, "
                             "then renders OUT/burden.md and OUT/burden/<model>.md (+ figs/<model>.png).")
    p.add_argument("--models", nargs="+", default=["all"], metavar="MODEL",
                   help=f"all | {' | '.join(catalogue.GROUPS)} (groups) and/or model names: any torchvision "
                        "classification, segmentation or detection model, any timm model "
                        "(timm/NAME picks timm's where both have the name)")
    p.add_argument("--scales", type=scales, default="0.5,1,1.5,2,2.5,3", metavar="S[,S...]",
                   help="input-size multiples of the typical size for each model's sweep (convnet-burden: 0.5..3)")
    p.add_argument("--batch", type=positive(int), default=SEED_BATCH, metavar="N",
                   help="batch of the sweep (convnet-burden: 128); real CPU runs use 1")
    p.add_argument("--size", metavar="HxW", help="analyse every selected model at HxW instead of its typical size")
    p.add_argument("--out", type=Path, default=records.RESULTS, metavar="DIR",
                   help="results folder: records/, burden.md and burden/ (default: the repository's results/)")
    switch(p, "--peak", "measure the peak memory of one real CPU inference (worker process)")
    peak_limits = (("--peak-max-gmacs", float, 160.0, "G", "measure the peak only for models up to G GMACs at "
                    "their typical size"),
                   ("--peak-max-mib", float, 8192.0, "MIB", "... and up to MIB of parameters + features"),
                   ("--peak-threads", int, 1, "N", "CPU threads of the peak-memory worker (it runs beside the "
                    "analysis)"),
                   ("--peak-timeout", float, 300.0, "S", "seconds before a peak-memory run is abandoned"),
                   ("--real-max-seconds", float, 10.0, "S", "skip sweep sizes whose real CPU run (models that "
                    "cannot run on meta) would take longer"))
    for flag, kind, default, metavar, text in peak_limits:
        p.add_argument(flag, type=positive(kind), default=default, metavar=metavar, help=text)
    switch(p, "--figures", "draw each model's profile figure (PNG)")
    p.add_argument("--render-only", action="store_true",
                   help="rebuild burden.md, the reports and figures from the existing records; analyse nothing")
    switch(p, "--progress", "tqdm progress bars on stderr")
    return p


def check_timer(prog: str, description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--models", nargs="+", default=list(catalogue.BACKBONES), metavar="NAME",
                    help="models to check (default: the backbones)")
    ap.add_argument("--inputs", nargs="+", default=["cityscapes", "pascal"], metavar="PRESET",
                    help="input presets (default: cityscapes pascal)")
    ap.add_argument("--size", metavar="HxW", help="one custom input size instead of the presets")
    device_flag(ap)
    protocol_overrides(ap, ("our warm-up (default: 25)", "our iterations (default: 300)",
                            "bound our timed loop per model and input, as timer.py does (default: none)",
                            f"fewest iterations with --max-seconds (default: {MIN_ITERS})"), (25, 300, None, MIN_ITERS))
    ap.add_argument("--min-run-time", type=positive(float), default=CHECK_MIN_RUN_S, metavar="S",
                    help=f"blocked_autorange's minimum run time (default: {CHECK_MIN_RUN_S:g})")
    switch(ap, "--coverage", "also time every unit with hooks and report the coverage (default: on)")
    ap.add_argument("--fresh-process", type=positive(int), metavar="N",
                    help="N alternating rounds of a fresh-process timer run and a fresh-process "
                         "torch.utils.benchmark run (default: off: both in this process, on one instance)")
    ap.add_argument("--threads", type=threads, metavar="N",
                    help="CPU threads of every run (default: torch's default)")
    ap.add_argument("--benchmark-child", metavar="REQUEST_JSON", help=argparse.SUPPRESS)
    ap.add_argument("--tag", type=paths.tag_arg, metavar="NAME", help="device folder name (default: derived from the device)")
    ap.add_argument("--results", type=Path, default=records.RESULTS, metavar="DIR",
                    help="results folder the record goes under (default: the repository's results/)")
    return ap


def choose(prog: str, description: str, sorts: list[str], data: Path) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--device", required=True, help="device folder name, e.g. nvidia-h200")
    p.add_argument("--input", required=True, help="input preset, e.g. cityscapes, imagenet, pascal")
    bounds = (("--max-ms", "at most this median latency (ms, batch 1)"),
              ("--min-top1", "at least this published ImageNet top-1 (%%)"),
              ("--max-peak-mib", "at most this peak inference memory (MiB, eager fp32)"),
              ("--max-params-m", "at most this many parameters (millions)"))
    for flag, text in bounds:
        p.add_argument(flag, type=float, help=text)
    p.add_argument("--mode", default="eager",
                   help="eager (eager fp32, default), fastest (per model its fastest mode), all, or a mode's name")
    p.add_argument("--sort", choices=sorts, default="median_ms", help="order within each group")
    p.add_argument("--data", type=Path, default=data, help="the dataset (default: results/data/measurements.csv)")
    return p


def compact(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m common compact", description=description)
    p.add_argument("results", nargs="?", type=Path, default=records.RESULTS, metavar="RESULTS_DIR",
                   help="folder holding records/ (default: the repository's results/)")
    return p


def runtimes(prog: str, description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--models", nargs="+", metavar="NAME", help="default: ResNet-50 and MobileNet-V2 at pascal, "
                    "then the catalogue, then (--zoo) the zoo list")
    ap.add_argument("--inputs", nargs="+", default=["imagenet", "pascal"], metavar="PRESET")
    ap.add_argument("--zoo", action="store_true", help="after the catalogue, the zoo models of ZOO")
    ap.add_argument("--budget-s", type=float, default=3600, metavar="S", help="start no request after S seconds")
    ap.add_argument("--threads", type=threads, default=1, metavar="N",
                    help="threads of every run (default: 1: on a machine shared far beyond its cores, a run with "
                         "more threads than its share waits at every barrier for a descheduled thread)")
    ap.add_argument("--max-load", type=float, default=4.0, metavar="L",
                    help="before each request wait for the 1-minute load average to fall below L (default: 4.0)")
    ap.add_argument("--wait-s", type=float, default=60.0, metavar="S",
                    help="... for at most S seconds, then run anyway (default: 60)")
    ap.add_argument("--all-cells", action="store_true",
                    help="every cell for every row (default: all for ResNet-50 and MobileNet-V2 at pascal, the "
                         "core cells elsewhere)")
    ap.add_argument("--retry-failed", action="store_true", help="run requests whose runtime failed before")
    ap.add_argument("--out-dir", type=Path, default=records.ROOT, metavar="DIR")
    ap.add_argument("--dry-run", action="store_true", help="list the requests that would run")
    return ap


def peak(prog: str, description: str) -> argparse.ArgumentParser:
    ap = Parser(prog=prog, description=description)
    device_flag(ap, DEVICE_HELP)
    threads_flag(ap)
    ap.add_argument("--results", type=Path, default=records.RESULTS, metavar="DIR",
                    help="results folder; the record goes to records/<tag>/peak/peak.json on a GPU, "
                         "records/<tag>/peak/peak_<N>t.json on the CPU (N: the threads it ran with) "
                         "(default: the repository's results/)")
    return ap


def listing(prog: str, description: str) -> argparse.ArgumentParser:
    """``list`` as the subcommand of its verb (the front door puts it first)."""
    p = argparse.ArgumentParser(prog=prog.removesuffix(" list"), description=description)
    sub = p.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="print the catalogue", prog=prog)
    ls.add_argument("--tag", choices=catalogue.TAGS, metavar="TAG",
                    help=f"only entries with this tag: {', '.join(catalogue.TAGS)} (default: all)")
    ls.add_argument("--names", action="store_true", help="names only, space-separated (for shell drivers)")
    return p


def render(prog: str, description: str, timed_at_least: float) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--root", type=Path, default=records.ROOT, metavar="DIR",
                   help="repository root: family folders for .txt files and README.md (default: this checkout)")
    p.add_argument("--results", type=Path, default=None, metavar="DIR",
                   help="folder holding records/; pages and figures/ are written here (default: ROOT/results)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing every file that would change")
    p.add_argument("--short-loops", action="store_true",
                   help="write nothing; list every current record whose timed loop stopped on its --max-seconds "
                        f"budget before --iters having timed less than {timed_at_least:.0%}% of it")
    return p


def compare(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m common compare", description=description)
    p.add_argument("a", type=Path, metavar="DIR_A", help="--out-dir of the first sweep")
    p.add_argument("b", type=Path, metavar="DIR_B", help="--out-dir of the second sweep")
    p.add_argument("--within", type=float, default=3.0, metavar="PCT", help="allowed difference in %% (default: 3)")
    return p


def reference(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m common reference", description=description)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--from", dest="source", type=Path, metavar="CSV", help="timm's results/results-imagenet.csv")
    which.add_argument("--torchvision", action="store_true",
                       help="rewrite the torchvision file from the installed torchvision's weights metadata")
    p.add_argument("names", nargs="*", help="timm models (default: the zoo's and the extra list)")
    return p
