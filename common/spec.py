"""Request: the whole of one measurement request, frozen, recorded, and the only
input of the measuring code (nothing reads argparse after it is built).

A request names *what* is measured (``kind``), *on what* (model, input, device),
*how* (protocol and execution mode) and *where its outputs go* (root and tag). The
file stem comes from the request alone: a ``search="fastest"`` request is named
``..._fastest`` whatever mode the search picks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from common import protocol as protocols
from common.inputs import InputSpec
from common.protocol import Protocol

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")  # int8: post-training static quantisation
RUNTIMES = ("torch", "onnxruntime", "openvino")  # who executes the model (common.measure.runtimes)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
CLOCKS = ("cuda-event", "perf_counter")
# Request kinds. 'train' requests write 'train-timing' / 'train-layers' records.
KINDS = ("timing", "layers", "train-timing", "train-layers", "memory", "structure", "layer-bench", "throughput")
# Every record kind: a request's, and those written about runs (failures, jobs, sweeps, checks).
RECORD_KINDS = KINDS + ("failure", "runtime-failure", "job", "zoo-run", "sweep", "peak", "timer-check", "burden",
                         "burden-run")
SEARCHES = ("as-given", "fastest")
LAYER_SETS = ("seed004", "large")  # seed 004's single-layer benchmarks (common.measure.layerbench)
# The optimizer of --with-optimizer: plain SGD with momentum, the ImageNet
# recipe of the ResNet paper (its cost is one read-modify-write per parameter).
SGD_LR, SGD_MOMENTUM = 0.1, 0.9
MODE_FIELDS = ("precision", "channels_last", "cudnn_benchmark", "cuda_graph", "compile", "runtime")
DEFAULT_CLOCK = {"cuda": "cuda-event", "cpu": "perf_counter"}
PROTOCOL_FIELDS = ("warmup", "iters", "max_seconds", "min_iters", "warmup_s", "repeats")


def default_clock(device: str) -> str:
    """CUDA events on a GPU (no host round trip), perf_counter on the CPU."""
    return DEFAULT_CLOCK["cpu" if device.startswith("cpu") else "cuda"]


def variant_of(mode: dict) -> str:
    """File-name suffix naming every non-default execution setting of ``mode``."""
    parts = [] if mode["precision"] == "fp32" else [mode["precision"]]
    parts += ["cl"] if mode["channels_last"] else []
    parts += ["cudnnbench"] if mode["cudnn_benchmark"] else []
    parts += ["graph"] if mode["cuda_graph"] else []
    parts += [f"compile-{mode['compile']}"] if mode["compile"] else []
    parts += [mode["runtime"]] if mode.get("runtime", "torch") != "torch" else []  # older records: torch
    return "-".join(parts)


def mode_name(mode: dict) -> str:
    """Human name of an execution mode: 'eager fp32', 'bf16 channels-last + CUDA graph'."""
    words = [mode["precision"]]
    words += ["channels-last"] if mode["channels_last"] else []
    words += ["cudnn-benchmark"] if mode["cudnn_benchmark"] else []
    words += ["+ CUDA graph"] if mode["cuda_graph"] else []
    words += [f"+ compile({mode['compile']})"] if mode["compile"] else []
    if mode.get("runtime", "torch") != "torch":
        return f"{mode['runtime']} {' '.join(words)}"
    return ("eager " if not (mode["cuda_graph"] or mode["compile"]) else "") + " ".join(words)


@dataclass(frozen=True)
class Request:
    kind: str  # one of KINDS
    model: str  # registry name; "layers" for a layer-bench request
    input: InputSpec
    device: str  # "cpu" or "cuda:N", resolved
    clock: str = "cuda-event"  # perf_counter on the CPU; "none" where nothing is timed
    protocol: Protocol = Protocol()  # warm-up, samples, time budget, repeats (common.protocol)
    precision: str = "fp32"  # fp32 means IEEE fp32: TF32 off in cuDNN and matmul
    channels_last: bool = False
    cudnn_benchmark: bool = False  # PyTorch's default
    cuda_graph: bool = False
    compile: str | None = None
    depth: int = 1  # per-unit granularity (2: ResNet blocks); structure table depth for 'structure'
    search: str = "as-given"  # "fastest": try the candidate modes briefly, then measure the best
    search_compile: bool = True  # the search includes torch.compile(max-autotune)
    with_optimizer: bool = False  # training step: also time an SGD step
    layer_set: str | None = None  # layer-bench: which set
    tag: str | None = None  # device folder; None: derived from the device
    threads: int | None = None  # CPU threads; None: PyTorch's choice (recorded in env)
    fresh_process: bool = False  # each repeat in its own process (python -m common.run)
    output_stride: int = 32  # 8 | 16: dilated last stages (segmentation-ready); 32: the model as published
    features: bool = False  # the model returns its multi-scale stage features (timm features_only)
    kernels: bool = True  # GPU kernel profile (kernel time, busy fraction) after the timed loops; no-op on the CPU
    runtime: str = "torch"  # one of RUNTIMES; not torch: the model exported to ONNX, timed in that runtime
    # A driver's own series (the runtimes driver's PyTorch baselines: its protocol, its load): the name
    # ends the stem, so such a run never replaces, nor is replaced by, the plain request's record.
    campaign: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown request kind {self.kind!r}; one of {', '.join(KINDS)}")

    def __getattr__(self, name: str) -> object:
        """The protocol's values read as the request's (``req.warmup``, ``req.max_seconds``)."""
        if name in PROTOCOL_FIELDS:
            return getattr(self.protocol, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def of(cls, *args: object, **kw: object) -> "Request":
        """A Request with its protocol's values given flat (``warmup=1, iters=3``)."""
        base = kw.pop("protocol", Protocol())
        loop = {k: kw.pop(k) for k in PROTOCOL_FIELDS if k in kw}
        return cls(*args, **kw, protocol=base.with_changes(**loop))  # type: ignore[arg-type, union-attr]

    def with_protocol(self, **changes: object) -> "Request":
        return replace(self, protocol=self.protocol.with_changes(**changes))

    @property
    def mode(self) -> str:
        return mode_name(self.mode_dict())

    @property
    def variant(self) -> str:
        return variant_of(self.mode_dict())

    def mode_dict(self) -> dict:
        return {k: getattr(self, k) for k in MODE_FIELDS}

    def with_mode(self, mode: dict) -> "Request":
        """This request in another execution mode: every mode setting reset, then ``mode``."""
        base = {"precision": "fp32", "channels_last": False, "cudnn_benchmark": False, "cuda_graph": False,
                "compile": None, "runtime": "torch"}
        return replace(self, **{**base, **{k: v for k, v in mode.items() if k in MODE_FIELDS}})

    def with_batch(self, batch: int) -> "Request":
        """This request at another batch size (OOM and throughput searches, the memory guard)."""
        return replace(self, input=replace(self.input, batch=batch))

    @property
    def is_train(self) -> bool:
        return self.kind.startswith("train-")

    @property
    def per_unit(self) -> bool:
        return self.kind in ("layers", "train-layers")

    @property
    def stem(self) -> str:
        """File stem of every output of this request, from the request alone."""
        return self._plain_stem + (f"_{self.campaign}" if self.campaign else "")

    @property
    def _plain_stem(self) -> str:
        if self.kind == "layer-bench":
            return "_".join(p for p in (self.layer_set, self.variant) if p)
        if self.kind in ("memory", "structure"):
            return f"{self.file_model}_{self.input.tag}{self.build_suffix}"
        depth = f"depth{self.depth}" if self.per_unit and self.depth > 1 else ""
        if self.is_train:
            suffix = "_".join(p for p in ("train" + ("-sgd" if self.with_optimizer else ""), depth) if p)
        else:
            suffix = "_".join(p for p in ("fastest" if self.search == "fastest" else "", depth) if p)
        variant = "" if self.search == "fastest" else self.variant
        return "_".join(p for p in (self.file_model, self.input.tag, variant, suffix) if p) + self.build_suffix

    @property
    def file_model(self) -> str:
        """The model's name in file names: ``timm/convnext_tiny`` -> ``timm__convnext_tiny``."""
        return self.model.replace("/", "__")

    @property
    def build_suffix(self) -> str:
        """``_os8`` / ``_os16`` / ``_features``: how the model was built, only when not as published."""
        return (f"_os{self.output_stride}" if self.output_stride != 32 else "") + ("_features" if self.features else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"]["shape"] = list(self.input.shape)
        d.update({k: d["protocol"][k] for k in PROTOCOL_FIELDS})  # derived, as records before protocols had them
        d["variant"] = self.variant
        d["mode"] = self.mode
        if d["campaign"] is None:  # a plain request's record keeps the layout it had before campaigns
            del d["campaign"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Request":
        """The request a record was made from (derived keys such as 'mode' ignored; a
        record made before protocols were named: the protocol its loop fields describe)."""
        names = {f.name for f in fields(cls)} - {"input", "protocol"}
        inp = {k: v for k, v in d["input"].items() if k != "shape"}
        return cls(**{k: v for k, v in d.items() if k in names}, input=InputSpec(**inp),
                   protocol=protocols.from_request(d))
