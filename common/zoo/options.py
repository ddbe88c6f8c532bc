"""The zoo sweep: many models, each in its own steps, failures recorded and the sweep goes on.

    python -m common zoo [--models NAME ... | --tag zoo] [--inputs imagenet cityscapes]
                         [--what eager fastest memory throughput] [protocol flags] [--budget-s S]

The sweep's command line (``build_parser``: the first line above is its description),
the inputs and slots a call defaults to (``defaults``) and the models it names
(``model_list``); ``common.zoo.driver`` runs the sweep and re-exports these.
"""
from __future__ import annotations

import argparse

from common import cli, paths, registry
from common.argtypes import non_negative, positive
from common.errors import UserError
from common.zoo import throughput as throughput_mod
from common.zoo.runrecord import SLOTS

DEFAULT_INPUTS = ("imagenet", "cityscapes")
CPU_SHORT_LIST = ("resnet18", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "shufflenet_v2_x1_0",
                  "convnext_tiny")
RUN_NAME = "zoo"


def defaults(args: argparse.Namespace, gpu: bool) -> None:
    args.inputs = args.inputs or (list(DEFAULT_INPUTS) if gpu else ["imagenet"])
    args.what = args.what or [s for s in SLOTS if gpu or s != "throughput"]



def model_list(args: argparse.Namespace, gpu: bool) -> list[str]:
    if args.models:
        names = [n for item in args.models for n in (registry.names(item) if item in registry.TAGS else [item])]
    else:
        names = registry.names("zoo") if gpu else list(CPU_SHORT_LIST)
    names = list(dict.fromkeys(names))
    if args.models:
        check_names(names)
    if args.shard:
        i, n = args.shard
        names = names[i::n]
    return names


def check_names(names: list[str]) -> None:
    """Every name a model the timers take, before any work: the unknown ones in one line,
    each with its closest names (a typo used to run and record a failure per step)."""
    bad = []
    for name in names:
        try:
            registry.get(name)
        except UserError as exc:
            bad.append(str(exc))
    if len(bad) == 1:
        raise UserError(bad[0])
    if bad:
        raise UserError(f"{len(bad)} of the models cannot be profiled: " + "; ".join(
            b.removesuffix(" (python -m common.registry list)") for b in bad) + " (python -m common.registry list)")


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (e.g. 0/2)") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= I < N")
    return i, n


def build_parser() -> cli.Parser:
    p = cli.Parser(prog="python -m common zoo", description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="models or catalogue tags (zoo, backbone, ...); default on a GPU: the burden zoo's "
                        f"classification + timm models; on the CPU: {' '.join(CPU_SHORT_LIST)}")
    p.add_argument("--inputs", nargs="+", default=None, metavar="IN",
                   help="input presets or HxW sizes (default: imagenet cityscapes on a GPU, imagenet on the CPU)")
    p.add_argument("--what", nargs="+", choices=SLOTS, metavar="SLOT",
                   help=f"slots per model and input: {' '.join(SLOTS)} (throughput at the first input only; "
                        "default: all on a GPU, all but throughput on the CPU)")
    p.add_argument("--warmup", type=non_negative, metavar="N", help="override the protocol's warm-up")
    p.add_argument("--iters", type=positive(int), metavar="N", help="override the protocol's iterations")
    p.add_argument("--max-seconds", type=positive(float), metavar="S",
                   help="override the protocol's bound per timed loop")
    p.add_argument("--min-iters", type=positive(int), metavar="N", help="override the protocol's fewest iterations")
    p.add_argument("--search-compile", action="store_true",
                   help="include torch.compile(max-autotune) in the fastest search (minutes per model)")
    p.add_argument("--throughput-cap", type=positive(int), default=throughput_mod.CAP["cuda"], metavar="N",
                   help="largest batch the throughput search tries on a GPU (default: none, doubling until a "
                        "step runs out of memory; a model that fits the cap is shown '(cap)')")
    p.add_argument("--force", action="store_true", help="re-measure zoo-family models whose records exist")
    p.add_argument("--force-catalogue", action="store_true",
                   help="also re-measure catalogue backbones' existing records (their full-protocol records "
                        "would be replaced by the zoo's bounded protocol)")
    p.add_argument("--budget-s", type=positive(float), metavar="S",
                   help="start no new model after S seconds (a later call resumes: existing records are skipped)")
    p.add_argument("--shard", type=parse_shard, metavar="I/N", help="every N-th model from the I-th (one GPU each)")
    p.add_argument("--run-name", type=paths.tag_arg, default=RUN_NAME, metavar="NAME", help="name of the zoo-run record (default: zoo)")
    p.add_argument("--no-run-record", dest="run_record", action="store_false",
                   help="leave the zoo-run record to the caller (a Dask sweep of kind zoo writes it: its tasks "
                        "run in parallel)")
    p.add_argument("--list", action="store_true", help="print the models and exit")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (one Request a line, JSON; a step that cannot be made: one line on stderr) "
                        "and measure nothing")
    cli.device_options(p, "zoo_profiler/")
    return p
