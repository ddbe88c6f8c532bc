"""The command line of every verb of ``python -m common``: flags, defaults, help texts, choices.

Each verb's module asks here for its parser and reads the Namespace it returns; no other
module of common/ builds one. Flag groups that several verbs share (device, protocol
overrides, timed loop, model) are defined once. Only light modules are imported here, so a
verb's ``--help`` and ``python -m common --help`` load no torch and no measuring module.
A builder whose description is its verb module's docstring takes it as ``description``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import catalogue, inputs, paths, records
from common import protocol as protocols
from common.argtypes import non_negative, positive, threads
from common.spec import CLOCKS, COMPILE_MODES, LAYER_SETS, PRECISIONS, RUNTIMES, SGD_LR, SGD_MOMENTUM

DEVICE_HELP = "auto | cpu | cuda | cuda:N (default: auto)"
OVERRIDES = ("--warmup", "--iters", "--max-seconds", "--min-iters")
Flags = argparse._ActionsContainer  # a parser or one of its argument groups


class Parser(argparse.ArgumentParser):
    """One-line errors; no abbreviated options: drivers see which flags were given
    (``--inp pascal`` was taken as --input by argparse, yet not seen by the driver)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # one line, not usage + line
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default after its help, unless the help names it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:  # a default named in the help: not again
        text = action.help or ""
        return text if "(default" in text or action.default in (None, False) else super()._get_help_string(action)


# --- shared flag groups ---------------------------------------------------------------

def device_flag(p: Flags, text: str = DEVICE_HELP) -> None:
    p.add_argument("--device", default="auto", metavar="DEV", help=text)


def threads_flag(p: Flags) -> None:
    p.add_argument("--threads", type=threads, metavar="N",
                   help="CPU threads for PyTorch (default: PyTorch's choice, recorded)")


def device_options(p: argparse.ArgumentParser, outputs: str) -> None:
    device_flag(p, "auto | cpu | cuda | cuda:N; auto picks the GPU when present (default: auto)")
    threads_flag(p)
    p.add_argument("--tag", type=paths.tag_arg, metavar="NAME",
                   help="device folder name: letters, digits, '-', '_', '.' (default: derived from the device)")
    p.add_argument("--out-dir", type=Path, default=records.ROOT, metavar="DIR",
                   help=f"root for {outputs} and results/ outputs (default: the repository)")


def protocol_overrides(p: Flags, helps: tuple[str, ...],
                       defaults: tuple[object, ...] = (None,) * 4) -> None:
    """--warmup, --iters, --max-seconds, --min-iters: single values of a protocol, each
    checked as it is parsed (a bad one is one argparse error before any work)."""
    kinds = (non_negative, positive(int), positive(float), positive(int))
    for name, kind, default, text in zip(OVERRIDES, kinds, defaults, helps):
        p.add_argument(name, type=kind, default=default, metavar="S" if name == "--max-seconds" else "N", help=text)


def loop_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", choices=protocols.NAMES, default="full", metavar="NAME",
                   help=f"named protocol ({' | '.join(protocols.NAMES)}; common.protocol), for the device type; "
                        "the flags below change single values of it (default: full, the seeds' 25 warm-up + 300 "
                        "timed iterations)")
    protocol_overrides(p, ("warm-up iterations on the timed instance", "timed iterations (at most)",
                           "stop the timed loop after S seconds once --min-iters ran (full: no limit)",
                           "fewest iterations with --max-seconds"))
    p.add_argument("--clock", choices=CLOCKS, metavar="CLOCK",
                   help="cuda-event | perf_counter (default: cuda-event on a GPU, perf_counter on the CPU)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", metavar="P",
                   help="fp32 (IEEE, TF32 off) | tf32 | fp16 | bf16 (autocast) (default: fp32)")


def flag(p: Flags, name: str, text: str) -> None:
    """An on/off flag, off unless given."""
    p.add_argument(name, action="store_true", help=text)


def switch(p: Flags, name: str, text: str, default: bool = True) -> None:
    """--NAME / --no-NAME, on unless ``default`` says otherwise."""
    p.add_argument(name, action=argparse.BooleanOptionalAction, default=default, help=text)


def _timer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pass", dest="pass_", choices=("infer", "train"), default="infer", metavar="PASS",
                   help="infer: inference latency; train: forward, backward and total of a training "
                        "step (cross-entropy loss), with inference beside it (default: infer)")
    p.add_argument("--with-optimizer", action="store_true",
                   help=f"with --pass train: also time an SGD step (lr {SGD_LR}, momentum {SGD_MOMENTUM}) "
                        "as its own column (default: off, parameters untouched)")
    p.add_argument("--layers", action="store_true", help="time every unit (layer/block) with hooks")
    p.add_argument("--throughput", action="store_true",
                   help="images/s at the largest batch that fits and at --batch, in eager fp32 and in the "
                        "fastest mode (record kind 'throughput'; never mixed with latency)")
    p.add_argument("--depth", type=int, default=1, choices=(1, 2), metavar="D",
                   help="per-unit granularity: 1 top-level units, 2 also ResNet blocks (ResNets only; default: 1)")
    loop_options(p)
    p.add_argument("--warmup-seconds", type=float, metavar="S",
                   help="warm-up also lasts at least S seconds of wall time (full: "
                        f"{protocols.preset('full', 'cpu').warmup_s:g}; 0: the iteration count alone)")
    p.add_argument("--repeats", type=positive(int), metavar="N",
                   help="run the protocol N times on fresh model instances; report the median of the medians "
                        "and the spread between repeats (default: 3 on a GPU, 1 on the CPU)")
    p.add_argument("--fresh-process", action="store_true",
                   help="with --repeats: each repeat in its own fresh process (whole-model timing only)")
    switch(p, "--kernels", "on a GPU: profile kernel time (torch.profiler) for the busy fraction and per-unit "
                            "kernel time, after every timed loop of the process (a driver profiles all its "
                            "requests at its end, on fresh instances); --no-kernels: no profile taken (default: "
                            "on; nothing to profile on the CPU)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format for model and input")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="let cuDNN autotune its algorithms (default: off, PyTorch's default)")
    p.add_argument("--cuda-graph", action="store_true", help="capture once after warm-up, time replays")
    p.add_argument("--mode", choices=("as-given", "fastest"), default="as-given", metavar="MODE",
                   help="as-given: the flags above; fastest: try every supported precision / "
                        "memory format / graph / compile combination briefly, then measure the best "
                        "(default: as-given)")
    switch(p, "--search-compile", "with --mode fastest: include the torch.compile(max-autotune) candidate, "
                                   "which takes minutes to compile (default: on)")
    p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                   help="torch.compile with MODE: default | reduce-overhead | max-autotune "
                        "(compile time reported apart)")
    p.add_argument("--runtime", choices=RUNTIMES, default="torch", metavar="RT",
                   help="torch | onnxruntime | openvino: who runs the model (the others: its ONNX export, "
                        "cached; fp32 and int8, openvino also bf16; on the CPU) (default: torch)")


def model_options(p: argparse.ArgumentParser, tool: str) -> None:
    p.add_argument("--input", default="cityscapes", choices=list(inputs.PRESETS), metavar="PRESET",
                   help="input preset: cityscapes 1x3x1024x2048, pascal 1x3x500x334, imagenet 1x3x224x224 "
                        "(default: cityscapes)")
    p.add_argument("--size", metavar="HxW", help="custom input height x width; overrides --input")
    p.add_argument("--batch", type=positive(int), default=1, metavar="N", help="batch size (default: 1)")
    p.add_argument("--output-stride", type=int, choices=(8, 16, 32), default=32, metavar="OS",
                   help="8 | 16: dilated last stages, the segmentation form (torchvision ResNets, timm models "
                        "with output_stride); 32: the model as published (default: 32)")
    p.add_argument("--features", action="store_true",
                   help="the model returns its multi-scale stage features (timm features_only; torchvision "
                        "stages), the form a segmentation head consumes")
    if tool == "timer":
        _timer_options(p)
        return
    p.add_argument("--struct", action="store_true", help="write the model-structure table instead of the memory report")
    p.add_argument("--depth", type=positive(int), default=3, metavar="D", help="structure table depth (default: 3)")


# --- one model: time, layers, train, memory, structure; seed 004's layer sets ----------

def model(tool: str, family: str | None) -> Parser:
    """``timer`` (time, layers, train) or ``mem`` (memory, structure) of one model."""
    names = [i.name for i in catalogue.CATALOGUE if family in (None, i.family)]
    if family in ("zoo", None):
        names = names + ["any torchvision classification/segmentation model or <segmentation model>.backbone, "
                         "any timm model (timm/<name> where both have it)"]
    p = Parser(prog=f"{family + '_profiler/' if family else ''}{tool}.py",
               description="Whole-model and per-unit latency, inference or training step." if tool == "timer"
               else "Memory report (static, peak, MACs/FLOPs, feature memory) or model structure.")
    p.add_argument("--model", required=True, metavar="NAME", help=f"model to profile: {', '.join(names)}")
    model_options(p, tool)
    device_options(p, "<family>_profiler/")
    return p


def layer_sets() -> Parser:
    p = Parser(prog="layer_profiler/timer.py",
               description="Single-layer benchmarks (seed 004): forward, backward, total, achieved rates.")
    p.add_argument("--set", dest="layer_set", default="seed004", choices=list(LAYER_SETS), metavar="SET",
                   help="seed004: seed 004's shapes (3->64 channels, one 224x224 image, Dense 1024->512); "
                        "large: batch 8, 64->64 channels, Dense 4096->4096 at batch 256 (default: seed004)")
    device_options(p, "layer_profiler/")
    loop_options(p)
    return p
