"""What a sweep runs: requests from flags or a JSON/YAML file, planned as tasks.

A task holds one serialised Request (``Request.to_dict()``, built as ``common.cli``
builds a timer's or memory run's, for the sweep's device type) and runs it whole
through ``python -m common request``; or, for kind ``zoo``, one model's zoo steps
(every input, eager/fastest as the modes say, and memory) as fields, run by
``python -m common zoo``. No command-line flags are stored: the user's options
(modes, ``max_seconds`` ...) become Request and Protocol fields here. The records
a task writes, and so whether they already exist, follow from its request
(``record_paths``).
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from common import inputs, parsers
from common.argtypes import non_negative, positive
from common.errors import UserError
from common.parsers import drivers

KINDS = drivers.SWEEP_KINDS
ZOO_MODES = ("eager", "fastest")
DEFAULTS = {"models": ["backbone"], "inputs": ["cityscapes", "pascal"], "modes": ["eager"], "kinds": ["timing"]}
# The sweep's protocol options and how a value from a file is read (the sweep's flags read them alike).
PROTOCOL = {"warmup": non_negative, "iters": positive(int), "max_seconds": positive(float),
            "min_iters": positive(int), "warmup_seconds": float, "repeats": positive(int), "batch": positive(int),
            "threads": positive(int)}
MEM_PROTOCOL = ("batch", "threads")
ZOO_PROTOCOL = ("warmup", "iters", "max_seconds", "min_iters", "threads")  # what python -m common zoo takes
ZOO_FLAGS = {k: "--" + k.replace("_", "-") for k in ZOO_PROTOCOL}  # its flags, spelled out only to run it


@dataclass(frozen=True)
class Task:
    """One request to run alone: a serialised Request (kinds timing, layers, memory),
    or one model's zoo steps (kind zoo). Both as JSON text, so a task is hashable."""
    kind: str  # "timing" | "layers" | "memory" | "zoo"
    request: str | None = None  # JSON of Request.to_dict()
    zoo: str | None = None  # JSON: model, inputs, what, protocol values, search_compile
    label: str = field(default="", compare=False)  # "resnet50 cityscapes eager timing", "convnext_tiny zoo imagenet"
    kill_after: float | None = field(default=None, compare=False)  # test hook: SIGKILL the run after S seconds
    kill_worker_after: float | None = field(default=None, compare=False)  # test hook: SIGKILL its worker, once

    @property
    def tool(self) -> str:
        """Which run it is: 'timer', 'mem' or 'zoo' (outcomes and summaries say it)."""
        return "zoo" if self.kind == "zoo" else "mem" if self.kind == "memory" else "timer"

    def to_dict(self) -> dict:
        """The task as stored (the sweep's summary record, ``--plan``): no command-line flags."""
        body = {"request": json.loads(self.request)} if self.request else {"zoo": json.loads(self.zoo or "{}")}
        return {"kind": self.kind, "label": self.label, **body}

    def req(self):
        from common.spec import Request

        return Request.from_dict(json.loads(self.request))

    def zoo_argv(self) -> list[str]:
        """``python -m common zoo``'s arguments for this model (no --device/--out-dir/--tag)."""
        z = json.loads(self.zoo)
        flags = [a for k, v in z["protocol"].items() for a in (ZOO_FLAGS[k], str(v))]
        flags += ["--search-compile"] if z.get("search_compile") else []
        # --no-run-record: the tasks run in parallel, so the sweep itself keeps the zoo-run record.
        return ["--models", z["model"], "--inputs", *z["inputs"], "--what", *z["what"], *flags, "--no-run-record"]

    def argv(self, device: str | None, out_dir: str | None, tag: str | None) -> list[str]:
        """The single run, as ``python`` arguments: the request whole (its device and tag
        are in it), or the zoo's steps on ``device`` (none: the zoo's default, the GPU when
        there is one)."""
        out = ["--out-dir", out_dir] if out_dir else []
        if self.request:
            return ["-m", "common", "request", "--json", self.request, *out]
        extra = (["--device", device] if device else []) + (["--tag", tag] if tag else [])
        return ["-m", "common", "zoo", *self.zoo_argv(), *extra, *out]


def expand_models(items: list[str]) -> list[str]:
    """Model names (catalogue, torchvision, timm) and tags (``backbone``, ``catalogue``,
    ``train-bench``, ``zoo``) -> names, in order, once each."""
    from common import registry  # here: the sweep's workers import this module, and never build a model

    out: list[str] = []
    for item in items:
        for name in (registry.names(item) if item in registry.TAGS else [registry.get(item).name]):
            if name not in out:
                out.append(name)
    if not out:
        raise UserError(f"no catalogue model matches {' '.join(items)!r} (python -m common list)")
    return out


def mode_args(mode: str) -> list[str]:
    """'eager' (fp32, the timer's defaults), 'fastest' (the mode search), or the timer's
    options as typed on its command line, such as '--precision bf16 --channels-last'
    (read once, into the Request's fields)."""
    if mode == "eager":
        return []
    if mode == "fastest":
        return ["--mode", "fastest"]
    args = shlex.split(mode)
    if not args or not args[0].startswith("--"):
        raise UserError(f"unknown mode {mode!r}: use eager, fastest or timer flags such as '--precision bf16'")
    return args


def typed(protocol: dict) -> dict:
    """The protocol options, each read as the sweep's flag reads it (a file's values may be text)."""
    out = {}
    for k, v in protocol.items():
        if v is None or k not in PROTOCOL:
            out[k] = v
            continue
        try:
            out[k] = PROTOCOL[k](str(v))
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise UserError(f"bad {k} {v!r}: {exc}") from None
    return out


def zoo_task(model: str, presets: list[str], modes: list[str], protocol: dict) -> Task:
    """One model's zoo steps at every input: eager and/or fastest as ``modes`` say, and memory."""
    for inp in presets:
        inputs.of(inp)
    other = [m for m in modes if m not in ZOO_MODES]
    if other:
        raise UserError(f"kind zoo takes modes {' and '.join(ZOO_MODES)} (its memory step always runs), "
                        f"not {other[0]!r}")
    body = {"model": model, "inputs": list(presets), "what": [*modes, "memory"],
            "protocol": {k: protocol[k] for k in ZOO_PROTOCOL if protocol.get(k) is not None},
            "search_compile": bool(protocol.get("search_compile"))}
    return Task("zoo", zoo=json.dumps(body), label=f"{model} zoo {'+'.join(presets)}")


def make_task(model: str, inp: str, mode: str, kind: str, protocol: dict, device: str, tag: str | None) -> Task:
    """The Request of one model, input, mode and kind on ``device`` ('cpu' or 'cuda:0'),
    built as the timer or memory run builds it from the same options (so its record
    path is theirs), unchecked: a request that cannot be made fails where it runs."""
    import torch

    from common import cli

    inputs.of(inp)  # a preset or a size with positive sides, before any worker starts
    if kind not in KINDS or kind == "zoo":  # zoo: zoo_task (one task per model, not per input)
        raise UserError(f"unknown kind {kind!r}; choose from: {', '.join(KINDS)}")
    tool = "mem" if kind == "memory" else "timer"
    try:
        args = parsers.model(tool, None).parse_args(["--model", model, *(mode_args(mode) if tool == "timer" else [])])
    except SystemExit:
        raise UserError(f"bad mode {mode!r} for {model} (the timer's options, e.g. '--precision bf16')") from None
    args.input, args.size = (None, inp) if inputs.is_size(inp) else (inp, None)
    args.tag = tag
    for k in MEM_PROTOCOL if tool == "mem" else PROTOCOL:
        if protocol.get(k) is not None:
            setattr(args, k, protocol[k])
    if tool == "timer":
        args.layers = kind == "layers"
        args.search_compile = args.search_compile if protocol.get("search_compile") is None \
            else protocol["search_compile"]
    req = cli.request_from_args(args, tool, torch.device(device), checked=False)
    words = mode if mode in ("eager", "fastest") else req.mode
    label = f"{model} {inp} memory" if kind == "memory" else f"{model} {inp} {words} {kind}"
    return Task(kind, request=json.dumps(req.to_dict()), label=label)


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


def tasks_from(args: argparse.Namespace, device: str = "cpu") -> list[Task]:
    """The grid models x inputs x modes x kinds (flags win over the file's keys),
    then the file's explicit ``requests`` entries; each request once, planned for
    ``device`` ('cpu' or 'cuda:0', the device type of the workers that run it)."""
    data = load_file(args.file) if args.file else {}
    unknown = set(data) - set(DEFAULTS) - set(PROTOCOL) - {"requests", "search_compile"}
    if unknown:
        raise UserError(f"unknown key(s) in the sweep file: {', '.join(sorted(unknown))}")
    protocol = typed({k: data.get(k) for k in (*PROTOCOL, "search_compile")})
    protocol.update({k: v for k, v in vars(args).items() if k in protocol and v is not None})
    tag = getattr(args, "tag", None)
    grid = {k: getattr(args, k) or (_listed(data[k]) if k in data else None) for k in DEFAULTS}
    if not data.get("requests") or any(grid.values()):
        grid = {k: v or DEFAULTS[k] for k, v in grid.items()}
        models = expand_models(grid["models"])
        tasks = [zoo_task(m, grid["inputs"], grid["modes"], protocol) for m in models if "zoo" in grid["kinds"]]
        tasks += [make_task(m, i, mode, kind, protocol, device, tag)
                  for m in models for i in grid["inputs"] for kind in grid["kinds"] if kind != "zoo"
                  for mode in (grid["modes"] if kind != "memory" else ["eager"])]
    else:
        tasks = []
    for entry in data.get("requests") or []:
        if not isinstance(entry, dict) or "model" not in entry:
            raise UserError(f"each entry of 'requests' needs at least a model: {entry!r}")
        proto = {**protocol, **typed({k: entry[k] for k in PROTOCOL if k in entry})}
        inp, mode, kind = (str(entry.get(k, d)) for k, d in (("input", "cityscapes"), ("mode", "eager"),
                                                              ("kind", "timing")))
        for m in expand_models(_listed(entry["model"])):
            tasks.append(zoo_task(m, [inp], [mode], proto) if kind == "zoo"
                         else make_task(m, inp, mode, kind, proto, device, tag))
    tasks = list(dict.fromkeys(tasks))
    for t in tasks:
        check_zoo(t)
    return tasks


def check_zoo(task: Task) -> None:
    """A zoo task's options parse as the zoo parses them (its error line is on stderr)."""
    if task.kind != "zoo":
        return
    try:
        drivers.zoo().parse_args([*task.zoo_argv(), "--device", "cpu"])
    except SystemExit:
        raise UserError(f"bad request {task.label!r}") from None


def record_paths(task: Task, device: str, tag: str, out_dir: str | None) -> list[Path]:
    """Where ``task``'s records go on ``device`` under ``tag`` (a zoo task: one per
    step). UserError when a timer/mem request cannot be made (e.g. an input too small
    for the model); a zoo step that cannot be made has its failure record instead."""
    if task.kind == "zoo":
        from common.zoo import driver

        return driver.step_paths(task.zoo_argv(), device, tag, out_dir)
    return [record_path(task, device, tag, out_dir)]


def place(device: str, tag: str) -> str:
    """The key of a worker's device and tag in ``paths_by_place``."""
    return f"{device}\t{tag}"


def paths_by_place(task: Task, places: set[tuple[str, str]], out_dir: str | None) -> dict[str, list[str] | str]:
    """``record_paths`` of ``task`` for each (device, tag) of the sweep's workers, or the
    reason it cannot be made there: worked out by the sweep's process, which has built
    the plan, so that a worker never imports torch to name a record path."""
    out: dict[str, list[str] | str] = {}
    for device, tag in places:
        try:
            out[place(device, tag)] = [str(p) for p in record_paths(task, device, tag, out_dir)]
        except UserError as exc:
            out[place(device, tag)] = f"exit {exc.exit_code}: {exc}"
    return out


def runs_on(task: Task, device: str) -> bool:
    """Whether a worker on ``device`` runs ``task`` as planned (a zoo task runs anywhere:
    the zoo picks its protocol for the device it finds)."""
    from common.protocol import device_type

    return task.kind == "zoo" or device_type(task.req().device) == device_type(device)


def record_path(task: Task, device: str, tag: str, out_dir: str | None) -> Path:
    """Where a request task's record goes on ``device`` under ``tag``: the path as
    ``run.Session`` names it. UserError when the request cannot be made here (e.g.
    an input too small for the model, or planned for another device type)."""
    import torch

    from common import records, request_run, run

    req = task.req()
    if not runs_on(task, device):
        raise UserError(f"planned for {req.device}, this worker runs on {device}")
    request_run.validate(req)
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
