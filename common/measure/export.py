"""Export once, cached: a request's model as ONNX (and its int8 forms) in a cache
folder outside the tracked tree.

The cache key names everything the file depends on: model (and build options),
input shape, opset, the torch version that exported it and the seed of the random
weights (the model is built under ``WEIGHT_SEED`` so a cached file holds the same
weights as the PyTorch reference a later run builds). Files are written atomically,
so an interrupted export never leaves a half file that a later run would trust.
"""
from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from common import inputs, paths, registry
from common.spec import Request

OPSET = 17
WEIGHT_SEED = 0
CALIBRATION_INPUTS = 8  # seeded inputs the int8 quantisers calibrate on
CALIBRATION_SEED = inputs.SEED + 100  # never the timed input's seed: calibration is not fitted to it


def cache_dir() -> Path:
    """``$BP_CACHE/onnx``, else ``~/.cache/backbone-profile/onnx``: never inside the repository."""
    return paths.cache_root() / "onnx"


def key(req: Request) -> str:
    """File stem of the exported model: what its content depends on."""
    b, c, h, w = req.input.shape
    return (f"{req.file_model}{req.build_suffix}_{b}x{c}x{h}x{w}_opset{OPSET}_torch{torch.__version__}"
            f"_seed{WEIGHT_SEED}").replace("+", "-")


def build_seeded(req: Request) -> nn.Module:
    """The request's model on the CPU with reproducible random weights (eval mode)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHT_SEED)
        return registry.build_for(req, "cpu")


def calibration_inputs(req: Request, n: int = CALIBRATION_INPUTS) -> list[np.ndarray]:
    gen = torch.Generator().manual_seed(CALIBRATION_SEED)
    return [torch.randn(req.input.shape, generator=gen).numpy() for _ in range(n)]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters and quantisers print progress and deprecation notes: keep the bar readable."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then rename: a crash leaves no file a later run would take as cached."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        data = tmp.with_suffix(".bin")  # OpenVINO's weights beside its .xml: moved first, so an .xml has them
        if data.exists():
            os.replace(data, path.with_suffix(".bin"))
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_suffix(".bin")):
            leftover.unlink(missing_ok=True)


def onnx_export(model: nn.Module, x: torch.Tensor, path: Path) -> str:
    """Export with the TorchScript exporter (its node names carry the module path,
    which the per-node profiles map onto units), else the dynamo exporter; returns
    which one wrote the file."""
    try:
        with _quiet(), torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=OPSET, input_names=["input"],
                              do_constant_folding=True)
        return "torchscript"
    except Exception as first:  # noqa: BLE001 - the other exporter may trace what this one cannot
        try:
            with _quiet(), torch.no_grad():
                torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=max(OPSET, 18),
                                  external_data=False)
            return "dynamo"
        except Exception as second:  # noqa: BLE001
            raise ExportError(f"torch.onnx cannot export it: torchscript: {oneline(first)}; dynamo: "
                              f"{oneline(second)}") from None


class ExportError(RuntimeError):
    """The model cannot be exported or compiled by a runtime: a failure record, not a crash."""

    def __init__(self, reason: str, stage: str = "export"):
        super().__init__(reason)
        self.stage = stage


def oneline(exc: BaseException, limit: int = 240) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:limit]


def cached(path: Path, make: Callable[[Path], dict]) -> dict:
    """``{"path", "cached", ...}``: the file at ``path``, made by ``make(tmp)`` on a miss."""
    if path.exists():
        return {"path": str(path), "cached": True}
    t0 = time.perf_counter()
    info: dict = {}
    _atomic(path, lambda tmp: info.update(make(tmp)))
    return {"path": str(path), "cached": False, "seconds": time.perf_counter() - t0, **info}


def onnx_fp32(req: Request, model: nn.Module, x: torch.Tensor) -> dict:
    """The fp32 ONNX file of ``req`` (exported on a miss from ``model``, built by ``build_seeded``)."""
    path = cache_dir() / f"{key(req)}.onnx"
    info = cached(path, lambda tmp: {"exporter": onnx_export(model, x, tmp)})
    return {**info, "opset": OPSET, "torch": torch.__version__}


def ort_int8(req: Request, fp32_path: str) -> dict:
    """ONNX Runtime's static QDQ quantisation of the fp32 file (u8 activations, s8
    per-channel weights: the pairing ONNX Runtime recommends on x86 with VNNI/AMX),
    MinMax-calibrated on ``CALIBRATION_INPUTS`` seeded inputs."""
    from onnxruntime import quantization as q

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration_inputs(req))

        def get_next(self) -> dict | None:
            x = next(self._it, None)
            return None if x is None else {"input": x}

    def make(tmp: Path) -> dict:
        pre = tmp.with_name(tmp.stem + ".pre.onnx")
        try:
            with _quiet():
                q.quant_pre_process(fp32_path, str(pre), skip_symbolic_shape=True)
                q.quantize_static(str(pre), str(tmp), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                                  activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                                  calibrate_method=q.CalibrationMethod.MinMax)
        finally:
            pre.unlink(missing_ok=True)
        return {}

    path = cache_dir() / f"{key(req)}_int8-ort-qdq-cal{CALIBRATION_INPUTS}.onnx"
    info = cached(path, make)
    return {**info, "method": "onnxruntime.quantization.quantize_static: QDQ, per-channel s8 weights, u8 "
                              f"activations, MinMax calibration on {CALIBRATION_INPUTS} seeded inputs"}


def ov_int8(req: Request, fp32_path: str) -> dict:
    """NNCF's post-training quantisation of the OpenVINO model read from the fp32 ONNX
    file, calibrated on ``CALIBRATION_INPUTS`` seeded inputs (saved as OpenVINO IR)."""
    import nncf
    import openvino as ov

    def make(tmp: Path) -> dict:
        model = ov.Core().read_model(fp32_path)
        with _quiet():
            nncf.set_log_level(40)
            qmodel = nncf.quantize(model, nncf.Dataset(calibration_inputs(req)), subset_size=CALIBRATION_INPUTS)
        ov.save_model(qmodel, str(tmp), compress_to_fp16=False)
        return {}

    path = cache_dir() / f"{key(req)}_int8-nncf-cal{CALIBRATION_INPUTS}.xml"
    info = cached(path, make)
    return {**info, "method": f"nncf.quantize (default preset, performance) on {CALIBRATION_INPUTS} seeded inputs"}
