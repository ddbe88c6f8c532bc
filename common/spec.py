"""RunSpec: everything that defines one measurement, frozen and recorded."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from common.inputs import InputSpec

PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
CLOCKS = ("cuda-event", "perf_counter")


@dataclass(frozen=True)
class RunSpec:
    model: str
    input: InputSpec
    device: str  # "cpu" or "cuda:N", resolved
    clock: str = "cuda-event"  # perf_counter on the CPU
    warmup: int = 25  # the seeds' protocol: 25 warm-up iterations ...
    iters: int = 300  # ... then 300 timed
    max_seconds: float | None = None
    min_iters: int = 5
    precision: str = "fp32"  # fp32 means IEEE fp32: TF32 off in cuDNN and matmul
    channels_last: bool = False
    cudnn_benchmark: bool = False  # PyTorch's default
    cuda_graph: bool = False
    compile: str | None = None
    depth: int = 1  # per-layer granularity (2: ResNet blocks)

    @property
    def variant(self) -> str:
        """File-name suffix naming every non-default execution setting."""
        parts = [] if self.precision == "fp32" else [self.precision]
        parts += ["cl"] if self.channels_last else []
        parts += ["cudnnbench"] if self.cudnn_benchmark else []
        parts += ["graph"] if self.cuda_graph else []
        parts += [f"compile-{self.compile}"] if self.compile else []
        return "-".join(parts)

    @property
    def mode(self) -> str:
        """Human name of the execution mode, e.g. 'eager fp32' or 'bf16 channels-last + CUDA graph'."""
        words = [self.precision]
        if self.channels_last:
            words.append("channels-last")
        if self.cudnn_benchmark:
            words.append("cudnn-benchmark")
        if self.cuda_graph:
            words.append("+ CUDA graph")
        if self.compile:
            words.append(f"+ compile({self.compile})")
        return ("eager " if not (self.cuda_graph or self.compile) else "") + " ".join(words)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"]["shape"] = list(self.input.shape)
        d["variant"] = self.variant
        d["mode"] = self.mode
        return d
