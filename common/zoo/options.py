"""The zoo sweep: many models, each in its own steps, failures recorded and the sweep goes on.

    python -m common zoo [--models NAME ... | --tag zoo] [--inputs imagenet cityscapes]
                         [--what eager fastest memory throughput] [protocol flags] [--budget-s S]

The inputs and slots a call defaults to (``defaults``) and the models it names
(``model_list``; its command line: ``common.parsers.drivers.zoo``); ``common.zoo.driver``
runs the sweep and re-exports these.
"""
from __future__ import annotations

import argparse

from common import catalogue, registry
from common.errors import UserError
from common.parsers.drivers import ZOO_RUN as RUN_NAME  # noqa: F401 - re-exported
from common.zoo.runrecord import SLOTS

DEFAULT_INPUTS = ("imagenet", "cityscapes")
CPU_SHORT_LIST = catalogue.ZOO_CPU_MODELS


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
