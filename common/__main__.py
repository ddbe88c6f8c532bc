"""The front door: ``python -m common <verb> [flags]``; ``python -m common <verb> --help``
lists the verb's flags.

Each verb hands the rest of the command line to the main of the module that does
that job, which parses it with the verb's parser (every parser: ``common.parsers``).
Verbs are imported only when chosen, so ``--help`` is quick and loads no torch; the
one-model verbs parse their flags before importing (``Verb.parser``), so ``VERB --help``
and a bad flag answer without it too.
Adding a verb is one entry in ``VERBS``. The per-family ``timer.py``/``mem.py`` and
the shell drivers are one-line calls of a verb (``run``).
"""
from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass, field

PROG = "python -m common"


@dataclass(frozen=True)
class Verb:
    target: str  # "module:function"; the function takes argv (and prog/kwargs where it has them)
    help: str
    prefix: tuple[str, ...] = ()  # flags the verb implies, put before the user's
    kwargs: dict = field(default_factory=dict)
    # "module:function" building the verb's parser from ``tool`` and ``family`` without torch: the
    # front door parses once before importing the verb, so --help and a bad flag answer at once.
    parser: str | None = None


MODEL_PARSER = "common.parsers:model"  # common.cli.main's own parser
VERBS: dict[str, Verb] = {
    "time": Verb("common.cli:main", "latency of one model: whole model (--layers, --pass train, --throughput too)",
                 kwargs={"tool": "timer"}, parser=MODEL_PARSER),
    "layers": Verb("common.cli:main", "per-unit (layer/block) latency of one model", ("--layers",), {"tool": "timer"},
                   MODEL_PARSER),
    "train": Verb("common.cli:main", "training step of one model: forward, backward, total", ("--pass", "train"),
                  {"tool": "timer"}, MODEL_PARSER),
    "memory": Verb("common.cli:main", "memory report of one model: static, peak, MACs/FLOPs", kwargs={"tool": "mem"},
                   parser=MODEL_PARSER),
    "structure": Verb("common.cli:main", "model-structure table of one model", ("--struct",), {"tool": "mem"},
                      MODEL_PARSER),
    "layer-sets": Verb("common.drive:main", "seed 004's single-layer benchmarks, both sets (or --set)", ("layer-sets",)),
    "stats": Verb("common.drive:main", "models on both presets: whole model and per unit, one process", ("stats",)),
    "reports": Verb("common.drive:main", "a family's memory reports (--struct: structures) on both presets",
                    ("mem",)),
    "seed004": Verb("common.drive:main", "seed 004: nine models' training steps, then both layer sets", ("seed004",)),
    "profile": Verb("common.drive:main", "everything ./profile.sh measures, one process", ("profile",)),
    "zoo": Verb("common.zoo.driver:main", "the zoo sweep: latency, memory, throughput of many models, resumable"),
    "sweep": Verb("common.sweep.cli:main", "many requests as Dask tasks, one per GPU at a time, resumable"),
    "request": Verb("common.request_run:main", "measure one serialised Request (JSON): a sweep task, a --dry-run line"),
    "compare": Verb("common.sweep.compare:main", "compare two measurements of the same requests (sweep vs alone)"),
    "burden": Verb("common.burden.cli:main", "the model-zoo burden table (seed 003): params, features, MACs"),
    "peak": Verb("common.measure.peak:main", "the device's measured matrix rate per precision and copy bandwidth"),
    "check-timer": Verb("common.check_timer:main", "cross-check our timer against torch.utils.benchmark"),
    "reference": Verb("common.zoo.reference:main", "rewrite the timm top-1 reference file from timm's results CSV"),
    "compact": Verb("common.compact:main", "rewrite records in the current on-disk form (raw samples to 1 ns)"),
    "render": Verb("common.render.__main__:main", "render every .txt, table, figure and README's block from records"),
    "runtimes": Verb("common.deploy:main", "PyTorch, ONNX Runtime, OpenVINO; fp32, bf16, int8 on the CPU, resumable"),
    "choose": Verb("common.choose:main", "the models of one device and input that meet latency, top-1, memory bounds"),
    "list": Verb("common.registry.listing:main", "the catalogue, one line per model", ("list",)),
}


def usage() -> str:
    width = max(map(len, VERBS)) + 2
    lines = [f"usage: {PROG} <verb> [flags]   ({PROG} <verb> --help: the verb's flags)", "", "verbs:"]
    lines += [f"  {name:<{width}}{v.help}" for name, v in VERBS.items()]
    return "\n".join(lines) + "\n"


def run(verb: str, argv: list[str] | None = None, prog: str | None = None, **kwargs: object) -> int:
    """Run ``verb`` with ``argv`` (default: this process's arguments). ``kwargs`` go to
    the verb's function (a family's ``timer.py`` passes ``family``); ``prog`` names the
    command in messages (default: ``python -m common <verb>``)."""
    from common import bootstrap

    spec = VERBS[verb]
    argv = sys.argv[1:] if argv is None else argv
    bootstrap.ensure_environment(prog or f"{PROG} {verb}")
    call = {**spec.kwargs, **kwargs}
    if spec.parser:  # exits 0 on --help, 2 on a bad flag, as the verb's own parsing would
        module, name = spec.parser.split(":")
        parser = getattr(importlib.import_module(module), name)(call["tool"], call.get("family"))
        parser.prog = prog or f"{PROG} {verb}"
        parser.parse_args([*spec.prefix, *argv])
    module, name = spec.target.split(":")
    fn = importlib.import_module(module).__getattribute__(name)
    params = inspect.signature(fn).parameters
    if "prog" in params:
        call["prog"] = prog or f"{PROG} {verb}"
    return fn(argv=[*spec.prefix, *argv], **call)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        sys.stdout.write(usage())
        return 0
    if not argv or argv[0] not in VERBS:
        import difflib

        close = difflib.get_close_matches(argv[0], VERBS, n=3) if argv else []
        what = (f"unknown verb {argv[0]!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
                if argv else "no verb given")
        sys.stderr.write(f"{PROG}: error: {what}; one of: {', '.join(VERBS)} ({PROG} --help)\n")
        return 2
    from common import bootstrap

    # Started by a Python without torch: go on in .venv's, as ``-m common`` again.
    bootstrap.ensure_environment(f"{PROG} {argv[0]}", ["-m", "common", *argv])
    return run(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
