"""Model-zoo burden (seed 003, convnet-burden): parameter memory, feature memory,
MACs/FLOPs of every torchvision classification, segmentation and detection model
and of any timm model, at its typical input size and across input sizes.

    python -m common.burden [--models all|classification|segmentation|detection|timm|NAME ...]
                            [--scales 0.5,1,1.5,2,2.5,3] [--batch 128] [--out results] ...

Writes ``<out>/burden/<model>.json`` (the record of one model), ``<out>/burden/<model>.md``
(its report: sizes sweep, per-layer table, figure ``<out>/burden/figs/<model>.png``) and
``<out>/burden.md`` (the table of every recorded model, rebuilt from the JSON records,
with convnet-burden's published figures beside ours; ``results/reference/convnet_burden.json``).

How each number is obtained:

- Parameters, MACs/FLOPs and feature memory come from ``common.measure.structure.analyze`` (one
  forward under a dispatch mode; FLOPs from ``torch.utils.flop_counter``'s formulas,
  MACs = FLOPs / 2; feature memory in convnet-burden's convention: every op output
  counted once at 4 bytes, no reuse, in-place ops and views add nothing). The forward
  runs on the ``meta`` device: no memory, no compute. Models whose construction reads
  tensor values (RegNet) are built on the CPU and moved to ``meta``. Models whose
  forward needs real values (detection: ``nonzero``, NMS) are run for real on the CPU,
  random weights seeded, input ``torch.rand`` seeded, so their data-dependent parts
  (proposals kept, detections) are those of that one random model.
- Per-layer costs are each module's *self* cost (ops charged to the innermost module
  running them); the rows add up to the totals.
- "peak held" is measured, not estimated: a separate worker process builds the model on
  the CPU and runs one inference (batch 1) under ``torch.profiler`` with
  ``profile_memory=True``; the peak is the highest running sum of the CPU allocator's
  allocation/free events during that forward, i.e. the activations and temporaries
  PyTorch held beyond the resident parameters, buffers and input. Models above the
  ``--peak-max-gmacs`` / ``--peak-max-mib`` limits are not run and say so.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import io
import json
import math
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from common import records
from common.measure import structure
from common.argtypes import positive
from common.errors import UserError
from common.registry import Unit

PROG = "common.burden"
MIB = 2**20
SCHEMA = 1
GROUPS = ("classification", "segmentation", "detection", "timm")
SEED_SCALES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)  # burden.m: opts.scales = 0.5:0.5:3
SEED_BATCH = 128  # burden.m: opts.batchSize = 128
ROOT_LABEL = "(model)"  # the per-layer row of the ops in the model's own forward
REFERENCE = records.RESULTS / "reference" / "convnet_burden.json"

# timm models in the full run: the project's Xception and the timm counterparts of
# convnet-burden's models that torchvision lacks (SE-Nets, MobileNet-v1).
TIMM_MODELS = ("legacy_xception", "legacy_seresnet50", "legacy_seresnet101", "legacy_seresnet152",
               "legacy_seresnext50_32x4d", "legacy_seresnext101_32x4d", "legacy_senet154", "mobilenetv1_100")

# Our model -> convnet-burden's row, and whether it is the same network or a variant.
COMPARE: dict[str, tuple[str, str]] = {
    "alexnet": ("alexnet", "same"), "squeezenet1_0": ("squeezenet1-0", "same"),
    "squeezenet1_1": ("squeezenet1-1", "same"), "vgg16": ("vgg-vd-16", "same"), "vgg19": ("vgg-vd-19", "same"),
    "googlenet": ("googlenet", "same"), "resnet18": ("resnet18", "same"), "resnet34": ("resnet34", "same"),
    "resnet50": ("resnet-50", "same"), "resnet101": ("resnet-101", "same"), "resnet152": ("resnet-152", "same"),
    "resnext50_32x4d": ("resnext-50-32x4d", "same"), "resnext101_32x8d": ("resnext-101-32x4d", "variant"),
    "resnext101_64x4d": ("resnext-101-64x4d", "same"), "inception_v3": ("inception-v3", "same"),
    "densenet121": ("densenet121", "same"), "densenet161": ("densenet161", "same"),
    "densenet169": ("densenet169", "same"), "densenet201": ("densenet201", "same"),
    "legacy_seresnet50": ("SE-ResNet-50", "same"), "legacy_seresnet101": ("SE-ResNet-101", "same"),
    "legacy_seresnet152": ("SE-ResNet-152", "same"), "legacy_seresnext50_32x4d": ("SE-ResNeXt-50-32x4d", "same"),
    "legacy_seresnext101_32x4d": ("SE-ResNeXt-101-32x4d", "same"), "legacy_senet154": ("SENet", "same"),
    "mobilenetv1_100": ("mcn-mobilenet", "same"),
    "ssd300_vgg16": ("ssd-pascal-vggvd-300", "variant"), "deeplabv3_resnet101": ("deeplab-res101-v2", "variant"),
}

# Why a difference from convnet-burden exceeds 10% where neither its rounding nor the
# in-place sums (both detected automatically) account for it: see NOTES below.

# Element-wise arithmetic that torchvision/timm run in place (``out += identity``):
# convnet-burden stores every such sum as a new feature (only its ReLUs are in place).
_INPLACE_SUMS = {torch.ops.aten.add_, torch.ops.aten.sub_, torch.ops.aten.mul_, torch.ops.aten.div_}


# --------------------------------------------------------------------------- the catalogue

@functools.lru_cache(maxsize=None)
def torchvision_groups() -> dict[str, tuple[str, ...]]:
    import torchvision.models as tvm

    return {"classification": tuple(tvm.list_models(tvm)),
            "segmentation": tuple(tvm.list_models(tvm.segmentation)),
            "detection": tuple(tvm.list_models(tvm.detection))}


def group_models(group: str) -> list[str]:
    return list(TIMM_MODELS) if group == "timm" else list(torchvision_groups()[group])


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model at a given input size, and its typical size."""

    name: str  # as the user names it (``timm/<name>`` forces timm)
    group: str  # classification | segmentation | detection | timm
    source: str  # torchvision | timm
    size: tuple[int, int]  # typical (H, W)
    size_note: str
    size_kw: str | None = None  # builder argument that fixes the input size: rebuilt per size
    fixed_note: str | None = None  # why other input sizes cost the same (the model resizes its input)
    det_max_size: int = 0  # detection transforms' default max_size

    @property
    def arch(self) -> str:
        return self.name.split("/", 1)[1] if self.name.startswith("timm/") else self.name

    def kwargs(self, size: tuple[int, int]) -> dict:
        h, w = size
        if self.source == "timm":
            kw: dict = {"pretrained": False}
            if self.size_kw == "img_size":
                kw["img_size"] = (h, w)
            return kw
        kw = {"weights": None}
        if self.group in ("segmentation", "detection"):
            kw["weights_backbone"] = None  # their default would download ImageNet weights
        if self.size_kw == "image_size":
            if h != w:
                raise UserError(f"{self.name} takes square inputs only (got {h}x{w})")
            kw["image_size"] = h
        elif self.size_kw == "input_size":
            kw["input_size"] = (h, w)
        elif self.size_kw == "min_size":
            # The transform resizes the shorter side to min_size (longer side <= max_size):
            # with these, an HxW input goes through unresized.
            kw["min_size"] = min(h, w)
            kw["max_size"] = max(self.det_max_size, h, w)
        return kw


def _construct(spec: ModelSpec, size: tuple[int, int]) -> nn.Module:
    kw = spec.kwargs(size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's init-weights notices, timm deprecations
        if spec.source == "timm":
            import timm

            return timm.create_model(spec.arch, **kw).eval()
        import torchvision.models as tvm

        return tvm.get_model(spec.arch, **kw).eval()


def _oneline(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build(spec: ModelSpec, size: tuple[int, int], device: str = "meta") -> tuple[nn.Module, str]:
    """The unmodified model, random weights (seeded on the CPU), in eval mode.

    On ``meta`` construction costs nothing; a model whose constructor computes with
    tensor values (RegNet's width schedule) is built on the CPU and moved to meta.
    """
    if device == "meta":
        try:
            with torch.device("meta"):
                return _construct(spec, size), "built on the meta device"
        except Exception as exc:  # noqa: BLE001 - any constructor failure: try the CPU
            reason = _oneline(exc, 120)
        model = build(spec, size, "cpu")[0].to("meta")
        return model, f"built on the CPU, moved to meta (construction on meta fails: {reason})"
    torch.manual_seed(0)
    return _construct(spec, size), "built on the CPU (seed 0)"


@functools.lru_cache(maxsize=None)
def resolve(name: str) -> ModelSpec:
    """A torchvision model name (classification, segmentation, detection) or a timm
    model name (``timm/<name>`` picks timm where both libraries have the name)."""
    groups = torchvision_groups()
    forced_timm = name.startswith("timm/")
    arch = name.split("/", 1)[1] if forced_timm else name
    if not forced_timm:
        for group, names in groups.items():
            if arch in names:
                return _torchvision_spec(arch, group)
    import timm

    if timm.is_model(arch):
        probe = ModelSpec(name, "timm", "timm", (224, 224), "")
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = timm.create_model(arch, pretrained=False)
        cfg = model.pretrained_cfg or {}
        _, h, w = cfg.get("input_size", (3, 224, 224))
        tag = cfg.get("tag") or "default"
        fixed = bool(cfg.get("fixed_input_size"))
        return ModelSpec(probe.name, "timm", "timm", (h, w), f"timm pretrained_cfg input_size ({arch}.{tag})",
                         size_kw="img_size" if fixed else None)
    raise UserError(f"unknown model {name!r}: not a torchvision classification/segmentation/detection model "
                    f"nor a timm model (python -m {PROG} --help lists the groups)")


def _torchvision_spec(name: str, group: str) -> ModelSpec:
    import torchvision.models as tvm

    weights = tvm.get_model_weights(name).DEFAULT
    if group == "classification":
        s = weights.transforms().crop_size[0]
        size_kw = "image_size" if name.startswith("vit_") else "input_size" if name.startswith("maxvit") else None
        note = f"crop size of torchvision's {weights} weights"
        if size_kw:
            note += f" (the architecture is built for it: {size_kw}={s}, rebuilt at each size)"
        return ModelSpec(name, group, "torchvision", (s, s), note, size_kw=size_kw)
    if group == "segmentation":
        s = weights.transforms().resize_size[0]
        return ModelSpec(name, group, "torchvision", (s, s),
                         f"resize size of torchvision's {weights} weights (shorter side {s}; square here)")
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tvm.get_model(name, weights=None, weights_backbone=None)
    t = model.transform
    if getattr(t, "fixed_size", None):
        h, w = t.fixed_size
        return ModelSpec(name, group, "torchvision", (h, w), f"the model's transform resizes every input to {h} x {w}",
                         fixed_note=f"the model's transform resizes every input to {h} x {w} (fixed_size), "
                                    "so other input sizes cost the same apart from that resize")
    s = t.min_size[-1]  # eval uses the last of the training sizes
    return ModelSpec(name, group, "torchvision", (s, s),
                     f"the transform's min_size {s} (max_size {t.max_size}); a square {s} x {s} input goes "
                     "through unresized (COCO images become about 800 x 1067)" if s == 800 else
                     f"the transform's min_size {s} (max_size {t.max_size}); a square {s} x {s} input goes "
                     "through unresized",
                     size_kw="min_size", det_max_size=t.max_size)


def published(spec: ModelSpec) -> dict | None:
    """torchvision's own figures for the model's default weights: ``num_params`` and
    ``_ops`` (documented as GFLOPS, in fact multiply-adds: resnet50's is 4.09)."""
    if spec.source != "torchvision":
        return None
    import torchvision.models as tvm

    try:
        w = tvm.get_model_weights(spec.arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None
    return {"weights": str(w), "num_params": w.meta.get("num_params"), "gops": w.meta.get("_ops")}


def stem(name: str) -> str:
    """File name of a model's outputs: ``timm/resnet18`` -> ``timm__resnet18``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name.replace("/", "__"))


def expand(items: list[str]) -> list[str]:
    """Group names and model names -> model names, in order, without repeats."""
    out: list[str] = []
    for item in items:
        names = ([n for g in GROUPS for n in group_models(g)] if item == "all"
                 else group_models(item) if item in GROUPS else [item])
        out += [n for n in names if n not in out]
    return out


# --------------------------------------------------------------------------- one analysed forward

class _InplaceSums(TorchDispatchMode):
    """Bytes written by in-place element-wise arithmetic (residual ``+=``): nothing in
    our convention, a new feature in convnet-burden's. Sees the ops that
    ``structure.analyze``'s own mode passes on; counts nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket in _INPLACE_SUMS and isinstance(out, torch.Tensor):
            self.bytes += out.numel() * structure.FEATURE_BYTES
        return out


def _shapes(out: Any, limit: int = 8) -> list[list[int]]:
    """Shapes of the tensors in a module's output (tensor, tuple/list, dict), at most ``limit``."""
    found: list[list[int]] = []

    def walk(o: Any) -> None:
        if len(found) >= limit:
            return
        if isinstance(o, torch.Tensor):
            found.append(list(o.shape))
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v)

    walk(out)
    return found


def _spatial(shape: list[int]) -> bool:
    """A feature map (N,C,H,W / N,H,W,C) or token sequence (N,L,C) with extent > 1."""
    if len(shape) == 3:
        return shape[1] > 1
    if len(shape) == 4:
        return shape[2] * shape[3] > 1 and shape[1] * shape[2] > 1
    return len(shape) > 4


def describe(shapes: list[list[int]] | None, batch_first: bool = True) -> str:
    """``512 x 7 x 7``: a feature map's shape without its batch dimension (``batch_first``)
    or the whole shape; of a multi-tensor output (detection backbones' maps, detections)
    the largest tensor, and how many others there are."""
    if not shapes:
        return "-"
    big = max(shapes, key=math.prod)
    dims = big[1:] if batch_first else big
    text = " x ".join(map(str, dims)) or "scalar"
    return text + (f" (largest of {len(shapes)})" if len(shapes) > 1 else "")


@dataclass
class Pass:
    size: tuple[int, int]
    batch: int
    device: str
    cost: structure.Cost
    inplace_bytes: int
    seconds: float
    order: dict[str, int] = field(default_factory=dict)  # module path -> first-call index
    outputs: dict[str, list[list[int]]] = field(default_factory=dict)  # path -> output shapes (last call)
    completed: list[str] = field(default_factory=list)  # paths in the order their calls ended


def _input(size: tuple[int, int], batch: int, device: str) -> torch.Tensor:
    shape = (batch, 3, *size)
    if device == "meta":
        return torch.empty(shape, device="meta")
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def run_pass(model: nn.Module, size: tuple[int, int], batch: int, device: str,
             per_layer: bool = False, trunk: str | None = None) -> Pass:
    """``structure.analyze`` of one forward; with ``per_layer`` every module is a unit
    (self costs) and its calls are recorded; else only ``trunk``'s output is."""
    x = _input(size, batch, device)
    modules = dict(model.named_modules())
    p = Pass(size, batch, device, cost=None, inplace_bytes=0, seconds=0.0)  # type: ignore[arg-type]
    handles = []
    hooked = modules if per_layer else ({trunk: modules[trunk]} if trunk in modules else {})
    for path, m in hooked.items():
        def pre(_m, _a, path=path):
            p.order.setdefault(path, len(p.order))

        def post(_m, _a, out, path=path):
            p.outputs[path] = _shapes(out)
            p.completed.append(path)

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    units = [Unit(path or ROOT_LABEL, path) for path in modules] if per_layer else None
    sums = _InplaceSums()
    t0 = time.perf_counter()
    try:
        with sums:
            p.cost = structure.analyze(model, x, units)
    finally:
        for h in handles:
            h.remove()
    p.seconds = time.perf_counter() - t0
    p.inplace_bytes = sums.bytes
    return p


def find_trunk(model: nn.Module, p: Pass) -> str | None:
    """The module whose output is the model's last feature map, for the sweep's "feature
    size" (convnet-burden reports its last fully-convolutional features): torchvision's
    ``backbone`` for segmentation/detection, else the last module to finish whose output
    is a feature map or token sequence with spatial extent > 1."""
    if "backbone" in dict(model.named_children()):
        return "backbone"
    for path in reversed(p.completed):
        shapes = p.outputs.get(path)
        if path and shapes and _spatial(shapes[0]):
            return path
    return None


# --------------------------------------------------------------------------- peak memory, measured

def measure_peak(name: str, height: int, width: int, threads: int) -> dict:
    """One inference of ``name`` (CPU, batch 1) under torch.profiler's memory profiling:
    the highest running sum of allocations minus frees during the forward."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads)
    spec = resolve(name)
    model = build(spec, (height, width), "cpu")[0]
    x = _input((height, width), 1, "cpu")
    t0 = time.perf_counter()
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(x)
    seconds = time.perf_counter() - t0
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    running = peak = 0
    for e in events:
        running += e.nbytes()
        peak = max(peak, running)
    resident = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers(), x])
    return {"status": "measured", "peak_bytes": peak, "resident_bytes": resident, "threads": threads,
            "forward_s": seconds, "allocation_events": len(events)}


def _peak_worker() -> int:
    """Jobs on stdin, one JSON line each; one JSON result line per job on stdout. Anything
    else printed (profiler notices, warnings) goes to stderr."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    warnings.simplefilter("ignore")
    for line in sys.stdin:
        job = json.loads(line)
        try:
            res = measure_peak(job["name"], job["height"], job["width"], job["threads"])
        except Exception as exc:  # noqa: BLE001 - reported to the parent, the worker goes on
            res = {"status": "failed", "reason": _oneline(exc)}
        gc.collect()
        out.write(json.dumps(res) + "\n")
        out.flush()
    return 0


class PeakRunner:
    """Feeds peak-memory jobs to one worker process (one import of torch for all jobs),
    in a thread beside the main analysis. A worker that dies (out of memory) or
    overruns ``timeout_s`` fails that job only; the next job starts a fresh worker."""

    def __init__(self, threads: int, timeout_s: float):
        self.threads, self.timeout_s = threads, timeout_s
        self.jobs: queue.Queue = queue.Queue()
        self.results: dict[str, dict] = {}
        self.submitted = 0
        self.done = threading.Event()
        self._log = tempfile.TemporaryFile(mode="w+")
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def submit(self, name: str, size: tuple[int, int]) -> None:
        self.submitted += 1
        self.jobs.put({"name": name, "height": size[0], "width": size[1], "threads": self.threads})

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), PYTHONPATH=str(records.ROOT),
                   PYTHONDONTWRITEBYTECODE="1")
        return subprocess.Popen([sys.executable, "-m", PROG, "--peak-worker"], cwd=str(records.ROOT), env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)

    def _last_log_line(self) -> str:
        try:
            self._log.seek(0)
            lines = [ln.strip() for ln in self._log.read().splitlines() if ln.strip()]
            self._log.seek(0, 2)
            return lines[-1][:200] if lines else "no output"
        except OSError:
            return "no output"

    def _loop(self) -> None:
        proc = None
        while True:
            job = self.jobs.get()
            if job is None:
                break
            try:
                if proc is None or proc.poll() is not None:
                    proc = self._start()
                proc.stdin.write(json.dumps(job) + "\n")
                proc.stdin.flush()
                timer = threading.Timer(self.timeout_s, proc.kill)
                timer.start()
                line = proc.stdout.readline()
                timer.cancel()
                if line:
                    res = json.loads(line)
                else:
                    rc = proc.wait()
                    why = (f"timed out after {self.timeout_s:.0f} s" if rc == -9 and not timer.is_alive()
                           else f"worker process died (exit {rc}{', out of memory?' if rc == -9 else ''})")
                    res = {"status": "failed", "reason": f"{why}; last output: {self._last_log_line()}"}
                    proc = None
            except (OSError, ValueError) as exc:
                res = {"status": "failed", "reason": _oneline(exc)}
                proc = None
            res["method"] = PEAK_METHOD
            self.results[job["name"]] = res
        if proc is not None:
            proc.stdin.close()
            proc.wait(timeout=60)
        self.done.set()

    def finish(self, progress: bool = True) -> dict[str, dict]:
        from tqdm import tqdm

        self.jobs.put(None)
        with tqdm(total=self.submitted, desc="peak memory (CPU)", unit="model", file=sys.stderr,
                  disable=not progress) as bar:
            while not self.done.wait(0.5):
                bar.n = len(self.results)
                bar.refresh()
            bar.n = len(self.results)
            bar.refresh()
        self._thread.join()
        return self.results


PEAK_METHOD = ("worker process, CPU, batch 1, random weights, first inference: torch.profiler "
               "(profile_memory=True) allocation/free events of the forward, highest running sum "
               "(parameters, buffers and input were allocated before and are excluded)")


# --------------------------------------------------------------------------- one model

@dataclass
class Options:
    scales: tuple[float, ...] = SEED_SCALES
    batch: int = SEED_BATCH
    size: tuple[int, int] | None = None
    peak: bool = True
    peak_max_gmacs: float = 160.0
    peak_max_mib: float = 8192.0
    real_max_seconds: float = 10.0
    figures: bool = True


def _cost_dict(p: Pass) -> dict:
    c = p.cost
    return {"size": list(p.size), "batch": p.batch, "device": p.device, "params": c.params,
            "param_bytes": c.param_bytes, "buffer_bytes": c.buffer_bytes, "input_bytes": c.input_bytes,
            "macs": c.macs, "flops": c.flops, "feature_bytes": c.feature_bytes,
            "feature_bytes_seed_convention": c.feature_bytes + p.inplace_bytes,
            "uncounted_ops": c.uncounted_ops, "seconds": round(p.seconds, 3)}


def _layer_rows(model: nn.Module, p: Pass) -> list[list]:
    """[order, path, type, output, self params, feature bytes, flops] per module with a
    cost, in first-call order (modules never called last, order None)."""
    modules = dict(model.named_modules())
    rows = []
    for (path, m), u in zip(modules.items(), p.cost.units):
        own = sum(t.numel() for t in m.parameters(recurse=False))
        if not (own or u.flops or u.feature_bytes):
            continue
        rows.append([p.order.get(path), path or ROOT_LABEL, type(m).__name__,
                     describe(p.outputs.get(path), batch_first=False),
                     own, u.feature_bytes, u.flops])
    rows.sort(key=lambda r: (r[0] is None, r[0] if r[0] is not None else 0))
    return rows


def _seed_row(name: str) -> dict | None:
    if name not in COMPARE:
        return None
    seed_name = COMPARE[name][0]
    return next((r for r in reference()["rows"] if r["model"] == seed_name), None)


@functools.lru_cache(maxsize=None)
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


def profile_model(name: str, opts: Options, peaks: PeakRunner | None) -> dict:
    """Every figure of one model; failures are recorded in the entry, never raised."""
    entry: dict = {"schema": SCHEMA, "kind": "burden", "model": name, "status": "ok", "failure": None}
    try:
        spec = resolve(name)
    except Exception as exc:  # noqa: BLE001
        return {**entry, "status": "failed", "failure": {"stage": "resolve", "reason": _oneline(exc)}}
    size = opts.size or spec.size
    entry.update(group=spec.group, source=spec.source, size_note=spec.size_note if not opts.size else "--size",
                 published=published(spec))
    # Build, then analyse at the typical size (batch 1, per layer): meta first, real CPU if meta fails.
    try:
        model, build_note = build(spec, size, "meta")
    except Exception as exc:  # noqa: BLE001
        return {**entry, "status": "failed", "failure": {"stage": "build", "reason": _oneline(exc)}}
    device, meta_reason, cpu_model = "meta", None, None
    try:
        base = run_pass(model, size, 1, "meta", per_layer=True)
    except Exception as exc:  # noqa: BLE001 - data-dependent forward: run it for real
        meta_reason = _oneline(exc, 160)
        device = "cpu"
        try:
            cpu_model, build_note = build(spec, size, "cpu")
            model = cpu_model
            base = run_pass(model, size, 1, "cpu", per_layer=True)
        except Exception as exc2:  # noqa: BLE001
            return {**entry, "status": "failed",
                    "failure": {"stage": "trace", "reason": f"meta: {meta_reason}; CPU: {_oneline(exc2)}"}}
    trunk = find_trunk(model, base)
    entry["base"] = {**_cost_dict(base), "build": build_note, "meta_failure": meta_reason,
                     "trunk": trunk, "trunk_out": base.outputs.get(trunk) if trunk else None}
    entry["layers"] = {"columns": ["order", "module", "type", "output", "params", "feature_bytes", "flops"],
                       "rows": _layer_rows(model, base)}
    # Peak memory: measured in the worker where the run is affordable.
    gmacs = base.cost.macs / 1e9
    need_mib = (base.cost.param_bytes + base.cost.buffer_bytes + base.cost.feature_bytes) / MIB
    if not opts.peak or peaks is None:
        entry["peak"] = {"status": "not measured", "reason": "--no-peak"}
    elif gmacs > opts.peak_max_gmacs:
        entry["peak"] = {"status": "not measured",
                         "reason": f"too slow here: {gmacs:,.0f} GMACs > --peak-max-gmacs {opts.peak_max_gmacs:g}"}
    elif need_mib > opts.peak_max_mib:
        entry["peak"] = {"status": "not measured",
                         "reason": f"too big here: params + features {need_mib:,.0f} MiB > --peak-max-mib "
                                   f"{opts.peak_max_mib:g}"}
    else:
        entry["peak"] = {"status": "pending"}
        peaks.submit(name, size)
    # convnet-burden's row, at its input size when that differs from ours.
    seed = _seed_row(name)
    entry["compare"] = None
    if seed is not None:
        seed_size = tuple(seed["input_size"])
        cmp = {"seed_model": seed["model"], "relation": COMPARE[name][1], "size": list(seed_size)}
        try:
            if seed_size == tuple(size):
                cp = base
            else:
                m2 = model if spec.size_kw is None else build(spec, seed_size, device)[0]
                cp = run_pass(m2, seed_size, 1, device, per_layer=True)
                cmp["layers"] = _layer_rows(m2, cp)
            cmp.update(params=cp.cost.params, param_bytes=cp.cost.param_bytes, macs=cp.cost.macs,
                       feature_bytes=cp.cost.feature_bytes,
                       feature_bytes_seed_convention=cp.cost.feature_bytes + cp.inplace_bytes)
        except Exception as exc:  # noqa: BLE001
            cmp["failure"] = _oneline(exc)
        entry["compare"] = cmp
    # Sweep of input sizes (convnet-burden: 0.5x..3x at batch 128), whole model.
    entry["sweep"] = _sweep(spec, model, size, device, base, trunk, opts)
    del model, cpu_model
    gc.collect()
    return entry


def _sweep(spec: ModelSpec, model: nn.Module, size: tuple[int, int], device: str, base: Pass,
           trunk: str | None, opts: Options) -> dict:
    batch = opts.batch if device == "meta" else 1
    out: dict = {"batch": batch, "device": device, "trunk": trunk, "rows": []}
    if device == "cpu":
        out["note"] = (f"real CPU runs (the forward cannot run on meta), batch 1; sizes whose run would take "
                       f"more than --real-max-seconds {opts.real_max_seconds:g} s here are skipped")
    patch = getattr(model, "patch_size", None) if spec.size_kw == "image_size" else None
    for k in opts.scales:
        s = (max(1, round(size[0] * k)), max(1, round(size[1] * k)))
        row: dict = {"scale": k, "size": list(s), "batch": batch}
        if isinstance(patch, int) and s[0] % patch:
            # A ViT takes whole patches only: the nearest multiple of the patch size.
            s = (max(patch, round(s[0] / patch) * patch),) * 2
            row.update(size=list(s), note=f"rounded to a multiple of the {patch}-pixel patch")
        if spec.fixed_note and s != tuple(size):
            out["rows"].append({**row, "status": "n/a", "reason": spec.fixed_note})
            continue
        if device == "cpu":
            estimate = base.seconds * (s[0] * s[1]) / (size[0] * size[1])
            if s == tuple(size) and batch == 1:
                out["rows"].append({**row, "status": "ok", **_sweep_cost(base, trunk)})
                continue
            if estimate > opts.real_max_seconds:
                out["rows"].append({**row, "status": "skipped",
                                    "reason": f"real CPU run estimated at {estimate:,.0f} s > --real-max-seconds "
                                              f"{opts.real_max_seconds:g}"})
                continue
        try:
            m = model if spec.size_kw is None or s == tuple(size) else build(spec, s, device)[0]
            p = run_pass(m, s, batch, device, trunk=trunk)
            out["rows"].append({**row, "status": "ok", **_sweep_cost(p, trunk)})
        except Exception as exc:  # noqa: BLE001 - this size fails, the others go on
            out["rows"].append({**row, "status": "failed", "reason": _oneline(exc, 160)})
    return out


def _sweep_cost(p: Pass, trunk: str | None) -> dict:
    return {"macs": p.cost.macs, "flops": p.cost.flops, "feature_bytes": p.cost.feature_bytes,
            "seconds": round(p.seconds, 3),
            "feature_bytes_seed_convention": p.cost.feature_bytes + p.inplace_bytes,
            "trunk_out": p.outputs.get(trunk) if trunk else None}


# --------------------------------------------------------------------------- formatting

def _mib(b: float | None) -> str:
    if b is None:
        return "-"
    v = b / MIB
    return f"{v:,.0f} MiB" if v >= 100 else f"{v:.1f} MiB" if v >= 1 else f"{v:.2f} MiB"


def _mem(b: float) -> str:
    """Binary units for the sweep's large figures (convnet-burden prints MB/GB/TB too)."""
    for step, unit in ((2**40, "TiB"), (2**30, "GiB")):
        if b >= 10 * step:
            return f"{b / step:,.1f} {unit}"
    return _mib(b)


def _si(n: float | None) -> str:
    if n is None:
        return "-"
    for step, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= step:
            v = n / step
            return f"{v:.3g} {prefix}" if v < 100 else f"{v:,.0f} {prefix}"
    return f"{n:.0f}"


def _size(s) -> str:
    return f"{s[0]} x {s[1]}"


def _pct(ours: float, seed: float) -> float:
    return (ours - seed) / seed * 100


def _signed(p: float) -> str:
    return f"{p:+.0f}%".replace("-", "\u2212")


def _env() -> dict:
    from common import env as envmod

    import torchvision

    e = envmod.collect(torch.device("cpu"))
    try:
        import timm

        e["timm"] = timm.__version__
    except ImportError:
        e["timm"] = None
    e["torchvision"] = torchvision.__version__
    return {k: e.get(k) for k in ("date", "host_cpu", "cpu_count", "threads", "python", "torch", "torchvision", "timm")}


# --------------------------------------------------------------------------- comparison with convnet-burden

METRICS = (("param", "param_bytes", "param_mib", "param mem"),
           ("feature", "feature_bytes", "feature_mib", "feat. mem"),
           ("macs", "macs", "flops_as_printed", "MACs vs its 'flops'"))


def compare(entry: dict) -> list[dict] | None:
    """Per metric: ours, the seed's printed value, the difference, and the explanation
    where it exceeds 10%."""
    cmp = entry.get("compare")
    if not cmp or "macs" not in cmp:
        return None
    seed = next((r for r in reference()["rows"] if r["model"] == cmp["seed_model"]), None)
    if seed is None:
        return None
    out = []
    for key, ours_key, seed_key, label in METRICS:
        scale = MIB if key != "macs" else 1
        ours = cmp[ours_key] / scale
        printed, step = seed[seed_key], seed["unit_steps"][seed_key]
        pct = _pct(ours, printed)
        item = {"metric": key, "label": label, "ours": ours, "seed": printed, "pct": pct, "why": None}
        if abs(pct) > 10:
            lo, hi = printed - step / 2, printed + step / 2
            note = _note(entry, key)
            unit = "MiB" if key != "macs" else "operations"
            if lo <= ours < hi:
                item["why"] = (f"rounding: the seed prints {seed['printed'][{'param': 'param_mem', 'feature': 'feat_mem', 'macs': 'flops'}[key]]!r} "
                               f"to a whole number of units, i.e. anything in [{_num(lo)}, {_num(hi)}) {unit}; ours "
                               f"({_num(ours)}) is inside that interval")
            elif key == "feature" and _close(cmp["feature_bytes_seed_convention"] / MIB, printed, step):
                conv = cmp["feature_bytes_seed_convention"] / MIB
                item["why"] = (f"in-place sums: {_pkg(entry)} adds residuals in place (`out += identity`), which "
                               f"stores nothing new; convnet-burden stores every sum as a new feature. Counted its "
                               f"way ours is {conv:.1f} MiB ({_signed(_pct(conv, printed))})"
                               + (f". {note}" if note else ""))
            elif note:
                item["why"] = note
            else:
                item["why"] = "not explained"
        out.append(item)
    return out


def _pkg(entry: dict) -> str:
    return "timm" if entry.get("source") == "timm" else "torchvision"


def _close(ours: float, printed: float, step: float) -> bool:
    return abs(_pct(ours, printed)) <= 10 or printed - step / 2 <= ours < printed + step / 2


def _num(v: float) -> str:
    if v >= 1e6:
        return _si(v)
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


# Explanations of the differences over 10% that neither rounding nor in-place sums
# account for, keyed by our model and metric ("param", "feature", "macs"). Each is a
# function of the model's record, so the figures it quotes are ours, at the seed's size.

def _rows(entry: dict) -> list[list]:
    return (entry.get("compare") or {}).get("layers") or entry["layers"]["rows"]


def _part(entry: dict, col: int, prefix: str = "", kind: str | None = None, suffix: str = "") -> float:
    """Sum of one per-layer column (4 params, 5 feature bytes, 6 FLOPs) over the rows
    whose module path starts with ``prefix`` / ends with ``suffix`` / has type ``kind``."""
    return sum(r[col] for r in _rows(entry) if r[1].startswith(prefix) and r[1].endswith(suffix)
               and (kind is None or r[2] == kind))


def _ours(entry: dict, key: str) -> float:
    return entry["compare"][key]


def _seed(entry: dict, key: str) -> float:
    return next(r for r in reference()["rows"] if r["model"] == entry["compare"]["seed_model"])[key]


def _alexnet_feature(e: dict) -> str:
    return ("torchvision's AlexNet is the single-tower variant of 'One weird trick' (64/192/384/256/256 filters, "
            "no LRN); convnet-burden's (MatConvNet's) keeps the original layout (96/256/384/384/256 filters, LRN "
            "after the first two stages). The fully connected layers, which dominate parameters and MACs, are the "
            "same (those agree); the wider early stages and their LRN outputs are the extra feature memory")


def _googlenet_feature(e: dict) -> str:
    bn = _part(e, 5, kind="BatchNorm2d") / MIB
    lrn = (64 * 56 * 56 + 192 * 56 * 56) * 4 / MIB
    alt = _ours(e, "feature_bytes") / MIB - bn + lrn
    return (f"torchvision's GoogLeNet puts a batch norm after every convolution (BasicConv2d): their outputs are "
            f"{bn:.1f} MiB of ours. The original (Caffe) GoogLeNet that convnet-burden imported has no batch norm "
            f"but two LRN layers (64x56x56 and 192x56x56 outputs, {lrn:.1f} MiB). Without the batch-norm outputs "
            f"and with the LRNs ours would be {alt:.1f} MiB ({_signed(_pct(alt, _seed(e, 'feature_mib')))})")


def _googlenet_macs(e: dict) -> str:
    return (f"ours ({_si(_ours(e, 'macs'))} MACs) sits just below the lower edge (1.5 G) of its rounded "
            "'2 GFLOPs' = [1.5, 2.5) G; convnet-burden also counts bias adds, 2 operations per ReLU output, "
            "pooling and LRN, which our MACs leave out and which lift the original GoogLeNet past 1.5 G")


def _inception_param(e: dict) -> str:
    aux = _part(e, 4, prefix="AuxLogits") * 4 / MIB
    alt = _ours(e, "param_bytes") / MIB - aux
    return (f"torchvision's inception_v3 built without weights keeps its auxiliary classifier (`AuxLogits`, "
            f"{aux:.1f} MiB of parameters, not run in eval); convnet-burden's import has none: without it ours is "
            f"{alt:.1f} MiB ({_signed(_pct(alt, _seed(e, 'param_mib')))})")


def _resnext_variant(metric: str):
    def note(e: dict) -> str:
        ours = {"param": _ours(e, "param_bytes") / MIB, "feature": _ours(e, "feature_bytes") / MIB,
                "macs": _ours(e, "macs")}[metric]
        seed = _seed(e, {"param": "param_mib", "feature": "feature_mib", "macs": "flops_as_printed"}[metric])
        return (f"a different variant: torchvision has no ResNeXt-101 32x4d, only 32x8d, whose grouped 3x3 "
                f"convolutions have twice the width (8 channels per group instead of 4), and so do the 1x1 "
                f"convolutions around them: {ours / seed:.2f}x the seed's figure")
    return note


def _ssd_note(metric: str):
    def note(e: dict) -> str:
        k = 21 / 91  # PASCAL VOC's 20 classes + background vs COCO's 90 + background
        cls = "head.classification_head"
        if metric == "param":
            alt = (_ours(e, "param_bytes") - 4 * _part(e, 4, cls) * (1 - k)) / MIB
            seed, what = _seed(e, "param_mib"), f"{alt:.1f} MiB"
        elif metric == "macs":
            alt = _ours(e, "macs") - _part(e, 6, cls) / 2 * (1 - k)
            seed, what = _seed(e, "flops_as_printed"), f"{_si(alt)} MACs"
        else:
            net = _part(e, 5, "backbone") + _part(e, 5, "head.regression_head") + _part(e, 5, cls) * k
            alt, seed = net / MIB, _seed(e, "feature_mib")
            return (f"a variant, and a wider count: ours includes torchvision's input transform (normalise, "
                    f"resize: {_part(e, 5, 'transform') / MIB:.1f} MiB) and its post-processing in `SSD.forward` "
                    f"(box decoding, per-class score filtering and NMS over 8,732 boxes x 91 classes: "
                    f"{_part(e, 5, ROOT_LABEL) / MIB:.1f} MiB), which convnet-burden's network leaves to its "
                    f"detector layer; the VGG-16 backbone and the heads, with the classification head scaled to "
                    f"21 classes, come to {alt:.1f} MiB ({_signed(_pct(alt, seed))})")
        return (f"a variant: torchvision's SSD300 is trained on COCO (91 classes), convnet-burden's on PASCAL VOC "
                f"(21); the classification head's 3x3 convolutions scale with the classes (anchors x classes "
                f"outputs). Scaled to 21 classes ours is {what} ({_signed(_pct(alt, seed))})")
    return note


def _deeplab_note(metric: str):
    def note(e: dict) -> str:
        scales = 1 + 0.75**2 + 0.5**2  # its multi-scale input: x1, x0.75, x0.5 (pixels)
        n_cls, side = 21, math.ceil(513 / 8)  # DeepLab-v2 ASPP-L: four 3x3 convs 2048 -> 21 at output stride 8
        head_params = 4 * (2048 * n_cls * 9 + n_cls)
        head_macs = 4 * side * side * n_cls * 2048 * 9
        trunk_p = _part(e, 4, "backbone") * 4 / MIB
        trunk_f = _part(e, 5, "backbone") / MIB
        sums = (_ours(e, "feature_bytes_seed_convention") - _ours(e, "feature_bytes")) / MIB
        trunk_m = _part(e, 6, "backbone") / 2
        common = ("a variant: DeepLab-v3 (torchvision) vs DeepLab-v2, both on a ResNet-101 at output stride 8. "
                  "convnet-burden's deeplab-res101-v2 runs the network on three scales of the input (x1, x0.75, "
                  f"x0.5: {scales:.2f}x the pixels) and its head is four 3x3 convolutions straight to 21 classes; "
                  "v3's ASPP has 256-channel branches, image pooling and a 3x3 convolution. ")
        if metric == "param":
            alt = 3 * (trunk_p + head_params * 4 / MIB)
            return (common + f"Its 505 MB are three copies of the weights, one per scale branch: 3 x (our trunk "
                             f"{trunk_p:.1f} MiB + v2's head {head_params * 4 / MIB:.1f} MiB) = {alt:.0f} MiB")
        if metric == "feature":
            alt = scales * (trunk_f + sums) / 1024
            return (common + f"Our trunk's features at 513 x 513, counting in-place sums its way, are "
                             f"{trunk_f + sums:,.0f} MiB; over its three scales that is {alt:.2f} GiB, inside its "
                             f"'4 GB' = [3.5, 4.5) GiB")
        alt = scales * (trunk_m + head_macs)
        return (common + f"Our trunk's MACs at 513 x 513 ({_si(trunk_m)}) plus v2's head ({_si(head_macs)}), "
                         f"over its three scales: {_si(alt)} ({_signed(_pct(alt, _seed(e, 'flops_as_printed')))})")
    return note


def _se_feature(e: dict) -> str:
    se = _part(e, 5, suffix="se_module") / MIB
    alt = _ours(e, "feature_bytes") / MIB - se
    return (f"timm's legacy SE blocks return the rescaled features (`x * se`) as a new tensor and then add the "
            f"shortcut out of place: both are stored. convnet-burden's SE-Nets (imported from Caffe) fuse the "
            f"scaling and the residual sum into one Axpy layer, one output per block. Without the `se_module` "
            f"outputs ({se:.1f} MiB) ours is {alt:.1f} MiB ({_signed(_pct(alt, _seed(e, 'feature_mib')))})")


NOTES: dict[str, dict[str, Any]] = {
    "alexnet": {"feature": _alexnet_feature},
    "googlenet": {"feature": _googlenet_feature, "macs": _googlenet_macs},
    "inception_v3": {"param": _inception_param},
    "resnext101_32x8d": {m: _resnext_variant(m) for m in ("param", "feature", "macs")},
    "ssd300_vgg16": {m: _ssd_note(m) for m in ("param", "feature", "macs")},
    "deeplabv3_resnet101": {m: _deeplab_note(m) for m in ("param", "feature", "macs")},
    **{n: {"feature": _se_feature} for n in ("legacy_seresnet50", "legacy_seresnet101", "legacy_seresnet152",
                                             "legacy_seresnext50_32x4d", "legacy_seresnext101_32x4d",
                                             "legacy_senet154")},
}


def _note(entry: dict, key: str) -> str | None:
    fn = NOTES.get(entry["model"], {}).get(key)
    if fn is None:
        return None
    try:
        return fn(entry) if callable(fn) else fn
    except (KeyError, StopIteration, ZeroDivisionError, TypeError) as exc:
        return f"(explanation unavailable: {_oneline(exc, 80)})"


# --------------------------------------------------------------------------- torchvision's own figures

def _published_why(e: dict, param_off: bool, macs_off: bool) -> str:
    pub, b, g = e["published"], e["base"], e["group"]
    why = []
    if param_off and e["model"] == "googlenet":
        aux = sum(r[4] for r in e["layers"]["rows"] if r[1].startswith("aux"))
        why.append(f"built without weights GoogLeNet keeps its auxiliary classifiers (`aux1`, `aux2`: {aux:,} "
                   f"params, not run in eval), which torchvision's pretrained model drops: without them "
                   f"{b['params'] - aux:,}")
    if g == "segmentation":
        why.append("torchvision's figures include the auxiliary FCN head (`aux_loss=True`, which its pretrained "
                   "weights switch on, used in training only); built without weights the model has none")
    if macs_off and g == "detection":
        why.append("torchvision does not say at which input size or over which parts its detection figures are "
                   "counted (its maskrcnn figure equals fasterrcnn's: the mask head is left out); ours are at "
                   f"{_size(b['size'])} and count everything the forward runs, RoI heads on the proposals kept "
                   "and, for Mask/Keypoint R-CNN, the mask/keypoint heads on the detections")
    if macs_off and not why and pub.get("gops") is not None and abs(b["macs"] / 1e9 - pub["gops"]) < 0.0005:
        why.append("torchvision prints its figure with 3 decimals")
    return "; ".join(why) or "not explained"


def crosscheck(ok: list[dict]) -> list[str]:
    """Our parameters and MACs against torchvision's published ``num_params`` and ``_ops``."""
    rows = [e for e in ok if e.get("published") and e["published"].get("num_params")
            and not e.get("settings", {}).get("size")]
    if not rows:
        return []
    off = []
    for e in rows:
        pub, b = e["published"], e["base"]
        p_off = abs(_pct(b["params"], pub["num_params"])) > 0.5
        m_off = pub.get("gops") is None or abs(_pct(b["macs"] / 1e9, pub["gops"])) > 1
        if p_off or m_off:
            off.append((e, p_off, m_off))
    L = ["### Cross-check with torchvision's published figures", "",
         "torchvision publishes, with each model's default weights, its parameter count (`num_params`) and its "
         "cost (`_ops`, documented as GFLOPS but counted in multiply-adds: resnet50's is 4.09). "
         f"Ours agree within 0.5% (parameters) and 1% (MACs) for {len(rows) - len(off)} of the {len(rows)} "
         "torchvision models; the others:", "",
         "| model | torchvision: params / `_ops` | ours: params / MACs | why |",
         "|-------|------------------------------|---------------------|-----|"]
    for e, p_off, m_off in off:
        pub, b = e["published"], e["base"]
        gops = "-" if pub.get("gops") is None else f"{pub['gops']:g} G"
        L.append(f"| {e['model']} | {pub['num_params']:,} / {gops} | {b['params']:,} / {_si(b['macs'])} "
                 f"({_signed(_pct(b['params'], pub['num_params']))} / "
                 f"{'-' if pub.get('gops') is None else _signed(_pct(b['macs'] / 1e9, pub['gops']))}) "
                 f"| {_published_why(e, p_off, m_off)} |")
    L.append("")
    if any(e["group"] == "detection" for e in rows):
        L += ["Detection models built without weights have `BatchNorm2d` (trainable) in their backbone where the "
              "pretrained ones have `FrozenBatchNorm2d` (buffers): their parameter counts are about 0.1% higher.", ""]
    return L


# --------------------------------------------------------------------------- per-model report

def figure(entry: dict, path: Path) -> None:
    """Parameter memory, feature memory and FLOPs of each layer (self cost), in
    execution order: convnet-burden's profile figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in entry["layers"]["rows"] if r[0] is not None]
    params = [r[4] * 4 / MIB for r in rows]
    feats = [r[5] / MIB for r in rows]
    gflops = [r[6] / 1e9 for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    x = range(len(rows))
    for ax, ys, color, title, unit in (
            (axes[0], params, "tab:blue", "Parameter memory profile", "MiB (float32)"),
            (axes[1], feats, "tab:red", "Feature memory profile", "MiB"),
            (axes[2], gflops, "tab:purple", "FLOPs profile (FLOPs = 2 x MACs)", "GFLOPs")):
        ax.bar(x, ys, width=1.0, color=color, alpha=0.6, edgecolor="none")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.set_xticks([])
    b = entry["base"]
    axes[2].set_xlabel(f"depth (modules in execution order; {len(rows)} with a cost)")
    fig.suptitle(f"{entry['model']} at {_size(b['size'])}, batch 1", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    records.write_atomic(path, buf.getvalue())


def _peak_text(peak: dict | None) -> str:
    if not peak:
        return "not measured"
    if peak.get("status") == "measured":
        return _mib(peak["peak_bytes"])
    if peak.get("status") == "failed":
        return f"failed: {peak.get('reason', '')}"
    return f"not measured: {peak.get('reason', peak.get('status'))}"


def model_report(entry: dict) -> str:
    name = entry["model"]
    if entry["status"] != "ok":
        f = entry["failure"]
        return (f"### Report for {name}\n\nNot covered: the {f['stage']} step failed.\n\n"
                f"Reason: {f['reason']}\n")
    b, sw = entry["base"], entry["sweep"]
    lines = [f"### Report for {name}", ""]
    lines.append(f"{_pkg(entry)} `{name}` ({entry['group']}), random weights, `eval()`. {b['build'].capitalize()}; "
                 + ("analysed on the meta device (no memory, no compute)." if b["device"] == "meta" else
                    f"analysed in a real CPU run (the forward cannot run on meta: {b['meta_failure']})."))
    lines += ["", f"Model params: {b['params']:,} ({_mib(b['param_bytes'])} as float32"
              + (f"; buffers {_mib(b['buffer_bytes'])} more" if b["buffer_bytes"] else "") + ")"]
    uncalled = [r for r in entry["layers"]["rows"] if r[0] is None and r[4]]
    if uncalled:
        n = sum(r[4] for r in uncalled)
        names = ", ".join(f"`{r[1]}`" for r in uncalled[:6]) + (f" and {len(uncalled) - 6} more" if len(uncalled) > 6 else "")
        lines.append(f"(of which {n:,}, {_mib(4 * n)}, belong to modules this forward never calls: {names}; "
                     "auxiliary heads not run in eval, or weights that their parent module uses directly)")
    lines.append("")
    lines.append(f"Estimates for a single full pass of the model at input size {_size(b['size'])} "
                 f"({entry['size_note']}), batch 1:")
    lines.append("")
    seed_conv = b["feature_bytes_seed_convention"]
    lines.append(f"* Memory required for features: {_mib(b['feature_bytes'])} (convnet-burden's convention: "
                 "every op output once, 4 bytes per value, no reuse, in-place ops add nothing)"
                 + (f"; {_mib(seed_conv)} if in-place sums are stored as new features, as convnet-burden does"
                    if seed_conv != b["feature_bytes"] else ""))
    lines.append(f"* Peak memory held by PyTorch during inference (CPU, measured): {_peak_text(entry.get('peak'))}")
    lines.append(f"* MACs: {_si(b['macs'])}; FLOPs: {_si(b['flops'])} (FLOPs = 2 x MACs)")
    unc = ", ".join(f"`{k}` ({v})" for k, v in b["uncounted_ops"].items()) or "none"
    lines.append(f"* Operators without a FLOP formula (not counted; calls): {unc}")
    cmp = compare(entry)
    if cmp:
        c = entry["compare"]
        seed = next(r for r in reference()["rows"] if r["model"] == c["seed_model"])
        lines.append(f"* convnet-burden (seed 003), `{c['seed_model']}` at {_size(c['size'])}"
                     f"{' (a variant of this model)' if c['relation'] == 'variant' else ''}: "
                     f"{seed['printed']['param_mem']} / {seed['printed']['feat_mem']} / {seed['printed']['flops']} "
                     f"(its 'flops' are MACs); ours at {_size(c['size'])}: {_mib(c['param_bytes'])} / "
                     f"{_mib(c['feature_bytes'])} / {_si(c['macs'])} MACs")
        for item in cmp:
            if item["why"]:
                lines.append(f"  * {item['label']} {_signed(item['pct'])}: {item['why']}")
    lines.append("")
    trunk = sw.get("trunk")
    lines.append(f"Estimates of the burden of a whole forward pass at different input sizes, batch {sw['batch']}"
                 + (f" (feature size: the output of `{trunk}`)" if trunk else "") + ":")
    if sw.get("note"):
        lines += ["", f"Note: {sw['note']}."]
    lines += ["", "| input size | feature size | feature memory | MACs | FLOPs |",
              "|------------|--------------|----------------|------|-------|"]
    for r in sw["rows"]:
        if r["status"] == "ok":
            size_cell = _size(r["size"]) + (f" ({r['note']})" if r.get("note") else "")
            lines.append(f"| {size_cell} | {describe(r.get('trunk_out'))} | {_mem(r['feature_bytes'])} "
                         f"| {_si(r['macs'])} | {_si(r['flops'])} |")
        else:
            lines.append(f"| {_size(r['size'])} | {r['status']}: {r['reason']} | - | - | - |")
    lines += ["", "A rough outline of where in the network memory is allocated to parameters and features and "
              "where the greatest computational cost lies (self cost of each module, in execution order, "
              "left to right):", "", f"![{name} profile](figs/{stem(name)}.png)", ""]
    rows = entry["layers"]["rows"]
    lines += [f"Per-layer breakdown at {_size(b['size'])}, batch 1: each module's self cost (ops charged to the "
              "innermost module running them; a container's row holds only the ops of its own `forward`, "
              f"e.g. concatenations; `{ROOT_LABEL}` is the model's own `forward`). Modules without parameters, "
              "features or FLOPs (in-place ReLUs, pure containers) are left out; the rows add up to the totals.", "",
              "| # | module | type | output shape | params | param mem (MiB) | feat. mem (MiB) | MACs | FLOPs |",
              "|---|--------|------|--------|--------|-----------------|-----------------|------|-------|"]
    for n, (order, path, kind, outp, params, feat, flops) in enumerate(rows, 1):
        idx = "-" if order is None else str(n)
        note = " (not called)" if order is None else ""
        lines.append(f"| {idx} | `{path}`{note} | {kind} | {outp} | {params:,} | {params * 4 / MIB:.3f} "
                     f"| {feat / MIB:.3f} | {_si(flops // 2)} | {_si(flops)} |")
    tp = sum(r[4] for r in rows)
    lines.append(f"| | **total** | | | {tp:,} | {tp * 4 / MIB:.3f} | {sum(r[5] for r in rows) / MIB:.3f} "
                 f"| {_si(sum(r[6] for r in rows) // 2)} | {_si(sum(r[6] for r in rows))} |")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the table

SECTIONS = (("classification", "Image Classification Architectures (torchvision)"),
            ("timm", "timm models (convnet-burden's SE-Nets and MobileNet, the project's Xception)"),
            ("detection", "Object Detection Architectures (torchvision)"),
            ("segmentation", "Semantic Segmentation Architectures (torchvision)"))


def load_entries(folder: Path) -> list[dict]:
    entries = []
    for p in sorted(Path(folder).glob("*.json")):
        try:
            e = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(e, dict) and e.get("kind") == "burden" and e.get("schema") == SCHEMA:
            entries.append(e)
    return entries


def _order_key(e: dict) -> tuple:
    g = e.get("group") or "zz"
    gi = GROUPS.index(g) if g in GROUPS else len(GROUPS)
    try:
        idx = group_models(g).index(e["model"]) if g in GROUPS else 10**6
    except ValueError:
        idx = 10**6
    return gi, idx, e["model"]


def render_table(entries: list[dict], run_info: dict | None = None) -> str:
    entries = sorted(entries, key=_order_key)
    ok = [e for e in entries if e["status"] == "ok"]
    failed = [e for e in entries if e["status"] != "ok"]
    env = (ok or entries or [{}])[0].get("env", {})
    L = ["# Model-zoo burden: parameter memory, feature memory and FLOPs", "",
         f"Generated by `python -m {PROG}` (`burden_profiler/burden.sh`) from the records in `burden/*.json`; "
         "do not edit by hand. Layout and conventions follow convnet-burden (seed 003, "
         "[albanie/convnet-burden](https://github.com/albanie/convnet-burden)); its published figures "
         "(`reference/convnet_burden.json`) stand beside ours where it has the model.", ""]
    if env:
        L.append(f"Software: torch {env.get('torch')}, torchvision {env.get('torchvision')}, timm {env.get('timm')}; "
                 f"host CPU {env.get('host_cpu')} ({env.get('cpu_count')} cores).")
    if run_info:
        L.append(f"Last full run (`--models all`): {run_info['date']}, {run_info['models']} models in "
                 f"{run_info['minutes']:.1f} min on this host ({run_info.get('settings', '')}).")
    L += [f"{len(ok)} models covered, {len(failed)} not covered (listed below with the reason).", "",
          "The numbers below are for single-element batches. Units: MiB = 2^20 bytes; "
          "K/M/G/T = 10^3/10^6/10^9/10^12.", "",
          "* **param mem**: parameters x 4 bytes (float32); buffers (batch-norm statistics) are not included.",
          "* **feat. mem**: convnet-burden's convention: every intermediate output counted once at 4 bytes, no "
          "memory reuse, in-place ops (ReLU, `+=`) and views add nothing, the input image not counted. "
          "A rough guide to how big the activations are, not a footprint.",
          "* **MACs / FLOPs**: from PyTorch's own formulas (`torch.utils.flop_counter`: convolutions, matrix "
          "products, attention); FLOPs = 2 x MACs. Batch norm, activations, pooling, element-wise ops, "
          "interpolation, NMS... have no formula and are not counted; each model's report names them.",
          "* **peak held (CPU)**: measured, not estimated: the most memory PyTorch's CPU allocator held at once "
          "during one inference beyond the resident parameters, buffers and input (torch.profiler memory "
          "events, batch 1, random weights, in a separate worker process). Runs above the machine's limits "
          "(`--peak-max-gmacs`, `--peak-max-mib`) are not made and the cell says so.",
          "* **convnet-burden**: its param mem / feat. mem / 'flops'. Its 'flops' count a fused multiply-add as "
          "one operation, so they are compared with our **MACs** (it also adds bias adds, ReLUs and pooling, "
          "a few % more). Its figures are printed rounded to whole units ('2 GFLOPs' is 1.5-2.5 G). "
          "Δ = (ours - its) / its, ours computed at its input size; † marks a difference over 10%, "
          "explained in [Differences](#differences-over-10-from-convnet-burden).",
          "* Detection models cannot run on the meta device (`nonzero`, NMS): they are run for real on the "
          "CPU; their RPN/ROI and post-processing costs are those of one random-weight model on a `torch.rand` "
          "image (seeded).", ""]
    for group, title in SECTIONS:
        rows = [e for e in ok if e.get("group") == group]
        if not rows:
            continue
        L += [f"### {title}", "",
              "| model | input size | param mem | feat. mem | MACs | FLOPs | peak held (CPU) | convnet-burden | Δ param / feat. / MACs |",
              "|-------|------------|-----------|-----------|------|-------|-----------------|----------------|------------------------|"]
        for e in rows:
            b = e["base"]
            seed_cell, delta = "", ""
            cmp = compare(e)
            if cmp:
                c = e["compare"]
                s = next(r for r in reference()["rows"] if r["model"] == c["seed_model"])
                seed_cell = (f"{c['seed_model']}{' (variant)' if c['relation'] == 'variant' else ''}"
                             f"{'' if list(c['size']) == list(b['size']) else ' @ ' + _size(c['size'])}: "
                             f"{s['printed']['param_mem']} / {s['printed']['feat_mem']} / {s['printed']['flops']}")
                delta = " / ".join(_signed(i["pct"]) + ("†" if i["why"] else "") for i in cmp)
            elif e.get("compare") and e["compare"].get("failure"):
                seed_cell = f"{e['compare']['seed_model']}: ours failed at its size ({e['compare']['failure']})"
            how = "" if b["device"] == "meta" else " ‡"
            L.append(f"| [{e['model']}](burden/{stem(e['model'])}.md){how} | {_size(b['size'])} | {_mib(b['param_bytes'])} "
                     f"| {_mib(b['feature_bytes'])} | {_si(b['macs'])} | {_si(b['flops'])} "
                     f"| {_peak_text(e.get('peak'))} | {seed_cell} | {delta} |")
        if any(e["base"]["device"] != "meta" for e in rows):
            L += ["", "‡ analysed in a real CPU run: the forward cannot run on the meta device."]
        L.append("")
    # Differences explained.
    L += ["### Differences over 10% from convnet-burden", ""]
    diffs = [(e, i) for e in ok for i in (compare(e) or []) if i["why"]]
    if not diffs:
        L.append("None.")
    for e, i in diffs:
        c = e["compare"]
        L.append(f"* **{e['model']}** vs `{c['seed_model']}`{' (a variant)' if c['relation'] == 'variant' else ''}, "
                 f"{i['label']} {_signed(i['pct'])} ({_num(i['ours'])} vs {_num(i['seed'])}): {i['why']}")
    L.append("")
    L += crosscheck(ok)
    # Uncounted operators.
    L += ["### Operators not counted in FLOPs", "",
          "Ops with no formula in `torch.utils.flop_counter` (name: models that run it). Views and `empty` are "
          "not listed.", ""]
    seen: dict[str, list[str]] = {}
    for e in ok:
        for op in e["base"]["uncounted_ops"]:
            seen.setdefault(op, []).append(e["model"])
    for op in sorted(seen, key=lambda o: (-len(seen[o]), o)):
        names = seen[op]
        shown = ", ".join(names) if len(names) <= 6 else f"{len(names)} models"
        L.append(f"* `{op}`: {shown}")
    L.append("")
    # Sizes and peaks not covered.
    skipped = [(e, r) for e in ok for r in e["sweep"]["rows"] if r["status"] in ("failed", "skipped")]
    L += ["### Not covered", "", "Models that could not be built or traced:", ""]
    if not failed:
        L.append("* none")
    for e in failed:
        L.append(f"* **{e['model']}** ({e.get('group', '?')}): {e['failure']['stage']} failed: {e['failure']['reason']}")
    L += ["", f"Input sizes of the per-model sweeps not covered ({len(skipped)}; n/a sizes of fixed-size models "
          "not counted): see each model's report. By model:", ""]
    by_model: dict[str, list[str]] = {}
    for e, r in skipped:
        by_model.setdefault(e["model"], []).append(f"{_size(r['size'])} ({r['status']})")
    for name, items in by_model.items():
        L.append(f"* {name}: {', '.join(items)}")
    if not by_model:
        L.append("* none")
    L.append("")
    return "\n".join(L)


# --------------------------------------------------------------------------- command line

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _scales(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not vals or any(not math.isfinite(v) or v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: scales must be positive numbers, e.g. 0.5,1,2")
    return vals


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):  # a default already named in the help is not repeated
        text = action.help or ""
        return text if "(default" in text or action.default in (None, False) else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"python -m {PROG}", formatter_class=_Help,
                description="Parameter memory, feature memory (convnet-burden's convention and the measured "
                            "CPU peak), MACs and FLOPs of torchvision and timm models, at their typical input "
                            "size and across input sizes; writes OUT/burden.md and OUT/burden/<model>.{json,md,png}.")
    p.add_argument("--models", nargs="+", default=["all"], metavar="MODEL",
                   help="all | classification | segmentation | detection | timm (groups) and/or model names: "
                        "any torchvision classification, segmentation or detection model, any timm model "
                        "(timm/NAME picks timm's where both have the name)")
    p.add_argument("--scales", type=_scales, default="0.5,1,1.5,2,2.5,3", metavar="S[,S...]",
                   help="input-size multiples of the typical size for each model's sweep (convnet-burden: 0.5..3)")
    p.add_argument("--batch", type=positive(int), default=SEED_BATCH, metavar="N",
                   help="batch of the sweep (convnet-burden: 128); real CPU runs use 1")
    p.add_argument("--size", metavar="HxW", help="analyse every selected model at HxW instead of its typical size")
    p.add_argument("--out", type=Path, default=records.RESULTS, metavar="DIR",
                   help="folder of burden.md and burden/ (default: the repository's results/)")
    p.add_argument("--peak", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the peak memory of one real CPU inference (worker process)")
    p.add_argument("--peak-max-gmacs", type=positive(float), default=160.0, metavar="G",
                   help="measure the peak only for models up to G GMACs at their typical size")
    p.add_argument("--peak-max-mib", type=positive(float), default=8192.0, metavar="MIB",
                   help="... and up to MIB of parameters + features")
    p.add_argument("--peak-threads", type=positive(int), default=1, metavar="N",
                   help="CPU threads of the peak-memory worker (it runs beside the analysis)")
    p.add_argument("--peak-timeout", type=positive(float), default=300.0, metavar="S",
                   help="seconds before a peak-memory run is abandoned")
    p.add_argument("--real-max-seconds", type=positive(float), default=10.0, metavar="S",
                   help="skip sweep sizes whose real CPU run (models that cannot run on meta) would take longer")
    p.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                   help="draw each model's profile figure (PNG)")
    p.add_argument("--render-only", action="store_true",
                   help="rebuild burden.md and the reports from the existing records; analyse nothing")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="tqdm progress bars on stderr")
    p.add_argument("--peak-worker", action="store_true", help=argparse.SUPPRESS)
    return p


def _summary_line(e: dict) -> str:
    if e["status"] != "ok":
        return f"{e['model']}: not covered ({e['failure']['stage']}: {e['failure']['reason']})"
    b = e["base"]
    unc = ", ".join(b["uncounted_ops"]) or "none"
    return (f"{e['model']}: {_size(b['size'])}  params {b['params']:,} ({_mib(b['param_bytes'])})  "
            f"feat. mem {_mib(b['feature_bytes'])}  peak held (CPU) {_peak_text(e.get('peak'))}  "
            f"MACs {_si(b['macs'])}  FLOPs {_si(b['flops'])}  not counted: {unc}")


RUN_FILE = "_run.json"  # the last full run: date, model count, minutes (burden.md's header)


def render_reports(out: Path, entries_run: list[dict], figures: bool) -> None:
    folder = records.ensure_writable(Path(out) / "burden")
    if figures:
        records.ensure_writable(folder / "figs")
    for e in entries_run:
        records.write_atomic(folder / f"{stem(e['model'])}.md", model_report(e))
        if figures and e["status"] == "ok":
            figure(e, folder / "figs" / f"{stem(e['model'])}.png")


def render(out: Path, entries_run: list[dict], figures: bool, run_info: dict | None = None) -> None:
    """Reports of the models just run, then burden.md from every record in the folder."""
    folder = records.ensure_writable(Path(out) / "burden")
    render_reports(out, entries_run, figures)
    render_index(out, run_info)


def render_index(out: Path, run_info: dict | None = None) -> None:
    folder = records.ensure_writable(Path(out) / "burden")
    if run_info is not None:
        records.write_atomic(folder / RUN_FILE, json.dumps(run_info) + "\n")
    try:
        last = json.loads((folder / RUN_FILE).read_text())
    except (OSError, ValueError):
        last = None
    records.write_atomic(Path(out) / "burden.md", render_table(load_entries(folder), last))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.peak_worker:
        return _peak_worker()
    try:
        return _run(args)
    except UserError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; records written so far are kept\n")
        return 130


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from common import inputs

    folder = records.ensure_writable(Path(args.out) / "burden")
    if args.render_only:
        entries = load_entries(folder)
        render(args.out, [e for e in entries], False)
        return 0
    for item in args.models:
        if item != "all" and item not in GROUPS:
            resolve(item)  # an unknown name stops the run before any work
    names = expand(args.models)
    opts = Options(scales=args.scales, batch=args.batch, size=inputs.parse_size(args.size) if args.size else None,
                   peak=args.peak, peak_max_gmacs=args.peak_max_gmacs, peak_max_mib=args.peak_max_mib,
                   real_max_seconds=args.real_max_seconds, figures=args.figures)
    env = _env()
    settings = {"scales": list(opts.scales), "batch": opts.batch, "size": opts.size, "peak_max_gmacs": opts.peak_max_gmacs,
                "peak_max_mib": opts.peak_max_mib, "real_max_seconds": opts.real_max_seconds,
                "peak_threads": args.peak_threads}
    t0 = time.perf_counter()
    peaks = PeakRunner(args.peak_threads, args.peak_timeout) if opts.peak else None
    entries = []
    for name in tqdm(names, desc="burden", unit="model", file=sys.stderr, disable=not args.progress):
        try:
            e = profile_model(name, opts, peaks)
        except Exception as exc:  # noqa: BLE001 - one model's failure never stops the run
            e = {"schema": SCHEMA, "kind": "burden", "model": name, "status": "failed",
                 "failure": {"stage": "analysis", "reason": _oneline(exc)}}
        e.update(env=env, settings=settings)
        records.write_atomic(folder / f"{stem(name)}.json", json.dumps(e, indent=None, separators=(",", ":")) + "\n")
        entries.append(e)
    if peaks is not None:
        results = peaks.finish(args.progress)
        for e in entries:
            if e.get("peak", {}).get("status") == "pending":
                e["peak"] = results.get(e["model"], {"status": "failed", "reason": "no result from the worker"})
                records.write_atomic(folder / f"{stem(e['model'])}.json",
                                     json.dumps(e, indent=None, separators=(",", ":")) + "\n")
    render_reports(args.out, entries, opts.figures)
    minutes = (time.perf_counter() - t0) / 60
    run_info = None
    if args.models == ["all"]:
        run_info = {"date": env["date"], "models": len(entries), "minutes": round(minutes, 2),
                    "settings": f"scales {','.join(f'{k:g}' for k in opts.scales)}, sweep batch {opts.batch}, "
                                f"peak worker {args.peak_threads} thread(s) beside the analysis; "
                                "analysis, peaks, reports and figures"}
    render_index(args.out, run_info)
    for e in entries:
        print(_summary_line(e))
    return 0 if any(e["status"] == "ok" for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
