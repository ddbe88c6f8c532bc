"""What a sweep runs: requests from flags or a JSON/YAML file, as tasks.

A task is one single run of a front-door verb, ``python -m common time|memory ARGS``
or, for kind ``zoo``, one model's zoo steps ``python -m common zoo --models M ARGS`` (every input, eager/fastest as the modes say, and memory), minus
``--device`` (the worker that runs it adds its own) and ``--out-dir`` (the sweep's).
The records a task writes, and so whether they already exist, follow from the same
requests the entry point builds (``record_paths``).
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from common import inputs, registry
from common.errors import UserError

KINDS = ("timing", "layers", "memory", "zoo")
ZOO_MODES = ("eager", "fastest")
DEFAULTS = {"models": ["backbone"], "inputs": ["cityscapes", "pascal"], "modes": ["eager"], "kinds": ["timing"]}
# Protocol flags passed to every timer task (memory tasks take --batch and --threads only).
PROTOCOL = {"warmup": "--warmup", "iters": "--iters", "max_seconds": "--max-seconds", "min_iters": "--min-iters",
            "warmup_seconds": "--warmup-seconds", "repeats": "--repeats", "batch": "--batch", "threads": "--threads"}
MEM_PROTOCOL = ("batch", "threads")
ZOO_PROTOCOL = ("warmup", "iters", "max_seconds", "min_iters", "threads")  # what python -m common zoo takes
VERB = {"timer": "time", "mem": "memory", "zoo": "zoo"}  # a task's tool -> the front door's verb


@dataclass(frozen=True)
class Task:
    """One request as the argv of one single run (without --device/--out-dir)."""
    tool: str  # "timer" | "mem" | "zoo"
    args: tuple[str, ...]
    label: str  # "resnet50 cityscapes eager timing", "convnext_tiny zoo imagenet+cityscapes"
    kill_after: float | None = field(default=None, compare=False)  # test hook: SIGKILL the run after S seconds
    kill_worker_after: float | None = field(default=None, compare=False)  # test hook: SIGKILL its worker, once

    def command(self) -> list[str]:
        """The entry point, as ``python`` arguments."""
        return ["-m", "common", VERB[self.tool]]

    def argv(self, device: str | None, out_dir: str | None, tag: str | None) -> list[str]:
        """The single run's arguments; without a device, the run's own default (the GPU when there is one)."""
        extra = (["--device", device] if device else []) + (["--out-dir", out_dir] if out_dir else []) \
            + (["--tag", tag] if tag else [])
        return [*self.command(), *self.args, *extra]


def expand_models(items: list[str]) -> list[str]:
    """Model names (catalogue, torchvision, timm) and tags (``backbone``, ``catalogue``,
    ``train-bench``, ``zoo``) -> names, in order, once each."""
    out: list[str] = []
    for item in items:
        for name in (registry.names(item) if item in registry.TAGS else [registry.get(item).name]):
            if name not in out:
                out.append(name)
    if not out:
        raise UserError(f"no catalogue model matches {' '.join(items)!r} (python -m common list)")
    return out


def mode_args(mode: str) -> list[str]:
    """'eager' (fp32, the flags' defaults), 'fastest' (the mode search), or timer flags
    such as '--precision bf16 --channels-last'."""
    if mode == "eager":
        return []
    if mode == "fastest":
        return ["--mode", "fastest"]
    args = shlex.split(mode)
    if not args or not args[0].startswith("--"):
        raise UserError(f"unknown mode {mode!r}: use eager, fastest or timer flags such as '--precision bf16'")
    return args


def zoo_task(model: str, presets: list[str], modes: list[str], protocol: dict) -> Task:
    """One model's zoo steps at every input: eager and/or fastest as ``modes`` say, and memory."""
    for inp in presets:
        inputs.of(inp)
    other = [m for m in modes if m not in ZOO_MODES]
    if other:
        raise UserError(f"kind zoo takes modes {' and '.join(ZOO_MODES)} (its memory step always runs), "
                        f"not {other[0]!r}")
    flags = [a for k in ZOO_PROTOCOL if protocol.get(k) is not None for a in (PROTOCOL[k], str(protocol[k]))]
    flags += ["--search-compile"] if protocol.get("search_compile") else []
    # --no-run-record: the tasks run in parallel, so the sweep itself keeps the zoo-run record.
    return Task("zoo", ("--models", model, "--inputs", *presets, "--what", *modes, "memory", *flags,
                        "--no-run-record"), f"{model} zoo {'+'.join(presets)}")


def make_task(model: str, inp: str, mode: str, kind: str, protocol: dict) -> Task:
    inputs.of(inp)  # a preset or a size with positive sides, before any worker starts
    if kind not in KINDS or kind == "zoo":  # zoo: zoo_task (one task per model, not per input)
        raise UserError(f"unknown kind {kind!r}; choose from: {', '.join(KINDS)}")
    if kind == "memory":
        flags = [a for k in MEM_PROTOCOL if protocol.get(k) is not None for a in (PROTOCOL[k], str(protocol[k]))]
        return Task("mem", ("--model", model, *inputs.argv(inp), *flags), f"{model} {inp} memory")
    flags = [a for k, f in PROTOCOL.items() if protocol.get(k) is not None for a in (f, str(protocol[k]))]
    flags += ["--no-search-compile"] if protocol.get("search_compile") is False else []
    flags += ["--layers"] if kind == "layers" else []
    return Task("timer", ("--model", model, *inputs.argv(inp), *mode_args(mode), *flags),
                f"{model} {inp} {mode} {kind}")


def _yaml_load(text: str) -> object:
    """YAML as written: YAML 1.1 reads ``0x0`` (hex), ``010`` (octal) and ``1:30``
    (base 60) as numbers, so a size typed as ``input: 0x0`` became the input 0; such
    a scalar stays the text it was (plain decimal integers are still numbers)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
        text = loader.construct_scalar(node)
        return int(text) if re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", str(text)) else str(text)

    Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader)


def load_file(path: Path) -> dict:
    """A sweep file: JSON, or YAML (needs pyyaml) by its suffix."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UserError(f"cannot read sweep file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        if Path(path).suffix in (".yaml", ".yml"):
            data = _yaml_load(text)
        else:
            data = json.loads(text)
    except ImportError:
        raise UserError("a YAML sweep file needs pyyaml (pip install pyyaml), or write it as JSON") from None
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError's parse errors
        raise UserError(f"sweep file {str(path)!r} is not valid: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # yaml.YAMLError is no ValueError
        raise UserError(f"sweep file {str(path)!r} is not valid: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"sweep file {str(path)!r} must hold a mapping (models, inputs, modes, kinds, requests)")
    return data


def _listed(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def tasks_from(args: argparse.Namespace) -> list[Task]:
    """The grid models x inputs x modes x kinds (flags win over the file's keys),
    then the file's explicit ``requests`` entries; each request once."""
    data = load_file(args.file) if args.file else {}
    unknown = set(data) - set(DEFAULTS) - set(PROTOCOL) - {"requests", "search_compile"}
    if unknown:
        raise UserError(f"unknown key(s) in the sweep file: {', '.join(sorted(unknown))}")
    protocol = {k: data.get(k) for k in (*PROTOCOL, "search_compile")}
    protocol.update({k: v for k, v in vars(args).items() if k in protocol and v is not None})
    grid = {k: getattr(args, k) or (_listed(data[k]) if k in data else None) for k in DEFAULTS}
    if not data.get("requests") or any(grid.values()):
        grid = {k: v or DEFAULTS[k] for k, v in grid.items()}
        models = expand_models(grid["models"])
        tasks = [zoo_task(m, grid["inputs"], grid["modes"], protocol) for m in models if "zoo" in grid["kinds"]]
        tasks += [make_task(m, i, mode, kind, protocol)
                  for m in models for i in grid["inputs"] for kind in grid["kinds"] if kind != "zoo"
                  for mode in (grid["modes"] if kind != "memory" else ["eager"])]
    else:
        tasks = []
    for entry in data.get("requests") or []:
        if not isinstance(entry, dict) or "model" not in entry:
            raise UserError(f"each entry of 'requests' needs at least a model: {entry!r}")
        proto = {**protocol, **{k: entry[k] for k in PROTOCOL if k in entry}}
        inp, mode, kind = (str(entry.get(k, d)) for k, d in (("input", "cityscapes"), ("mode", "eager"),
                                                              ("kind", "timing")))
        for m in expand_models(_listed(entry["model"])):
            tasks.append(zoo_task(m, [inp], [mode], proto) if kind == "zoo" else make_task(m, inp, mode, kind, proto))
    tasks = list(dict.fromkeys(tasks))
    for t in tasks:
        check_args(t)
    return tasks


def _parser(tool: str):
    from common import cli

    if tool == "zoo":
        from common.zoo import driver

        return driver.build_parser()
    return cli.build_parser(tool, None)


def check_args(task: Task) -> None:
    """The task's flags parse as the entry point parses them (its error line is on stderr)."""
    try:
        _parser(task.tool).parse_args([*task.args, "--device", "cpu"])
    except SystemExit:
        raise UserError(f"bad request {task.label!r}: {shlex.join(task.args)}") from None


def record_paths(task: Task, device: str, tag: str, out_dir: str | None) -> list[Path]:
    """Where ``task``'s records go on ``device`` under ``tag`` (a zoo task: one per
    step). UserError when a timer/mem request cannot be made (e.g. an input too small
    for the model); a zoo step that cannot be made has its failure record instead."""
    if task.tool == "zoo":
        from common.zoo import driver

        return driver.step_paths(list(task.args), device, tag, out_dir)
    return [record_path(task, device, tag, out_dir)]


def record_path(task: Task, device: str, tag: str, out_dir: str | None) -> Path:
    """Where a timer/mem ``task``'s record goes on ``device`` under ``tag``: the request
    built as ``common.cli`` builds it, the path as ``run.Session`` names it. UserError
    when the request cannot be made (e.g. an input too small for the model)."""
    import torch

    from common import cli, records, run

    parser = cli.build_parser(task.tool, None)
    args = parser.parse_args([*task.args, "--device", device] + (["--out-dir", out_dir] if out_dir else []))
    req = cli.request_from_args(args, task.tool, torch.device(device))
    # env given: no device query here (the worker never touches its GPU; its runs do).
    session = run.Session(torch.device("cpu"), Path(out_dir) if out_dir else records.ROOT, tag, env={"probe": 1})
    return session.record_path(req)


def valid_record(path: Path) -> bool:
    """A finished, current record: readable, schema 2, all fields, not superseded."""
    from common import records

    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return records.is_record(rec) and not rec.get("superseded")
