"""Any model by name: torchvision classification and segmentation models (and a
segmentation model's backbone, ``deeplabv3_resnet50.backbone``), and any timm
model (``timm/<name>`` picks timm where both libraries have the name).

Every such model is an :class:`ZooEntry` of family ``zoo`` (outputs in
``zoo_profiler/``), built unmodified with random weights (nothing is downloaded;
segmentation models with ``weights_backbone=None``), with *generic units*:

- depth 1: the top-level children, depth 2: their children, in execution order,
  found by tracing one forward pass on the meta device (no memory, no compute);
- every executed module exactly once: a module never executed is dropped, one
  nested in another unit counts inside it;
- a module called more than once in one forward (weight sharing, one activation
  module applied at several places) is not a unit: its calls are timed inside the
  functional unit(s) around them, and that unit's note says so (``act x3``);
- the ATen ops the model's ``forward`` runs between units are *functional units*
  (``Unit.path=None``), their note naming the ops.

Build options (:class:`Options`) change the architecture, so they are part of the
build: ``output_stride`` 8/16 (dilated last stages: torchvision ResNets'
``replace_stride_with_dilation``, timm's ``output_stride=``) and ``features``
(timm ``features_only=True``; torchvision: the stages through
``IntermediateLayerGetter``), the model then returning its multi-scale features
as a list. timm models built for one input size (absolute position embeddings)
are built with ``dynamic_img_size=True`` where timm supports it.

torchvision and timm are imported only when a non-catalogue name is looked up.
"""
from __future__ import annotations

import functools
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from common.errors import UserError
from common.registry.backbones import Entry, Unit
from common.registry.unit_trace import trace, units_from_trace

FAMILY = "zoo"
BACKBONE_SUFFIX = ".backbone"
OUTPUT_STRIDES = (8, 16, 32)
# torchvision ResNets' replace_stride_with_dilation per output stride (layer2, layer3, layer4).
TV_DILATION = {8: [False, True, True], 16: [False, False, True], 32: [False, False, False]}


@dataclass(frozen=True)
class Options:
    """Build options that change the architecture (part of the request)."""

    output_stride: int = 32
    features: bool = False

    @property
    def is_default(self) -> bool:
        return self.output_stride == 32 and not self.features

    def describe(self) -> str:
        parts = [f"output stride {self.output_stride}"] if self.output_stride != 32 else []
        return ", ".join(parts + (["multi-scale features"] if self.features else [])) or "as published"


DEFAULT = Options()


@dataclass(frozen=True)
class ZooEntry(Entry):
    """A catalogue entry for any torchvision/timm model; ``notes`` say how it is built."""

    notes: tuple[str, ...] = ()
    native_size: tuple[int, int] = (224, 224)  # the size it is published at (traces run there)
    fixed_size: bool = False  # only the native size runs (no dynamic image size)
    options: Options = DEFAULT


def _silently(fn: Callable[[], nn.Module]) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def oneline(exc: BaseException, limit: int = 200) -> str:
    text = f"{type(exc).__name__}: {' '.join(str(exc).split()) or type(exc).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------- names

@functools.lru_cache(maxsize=1)
def torchvision_names() -> dict[str, str]:
    """torchvision name -> group (classification | segmentation)."""
    import torchvision.models as tvm

    out = {n: "classification" for n in tvm.list_models(tvm)}
    out.update({n: "segmentation" for n in tvm.list_models(tvm.segmentation)})
    return out


@functools.lru_cache(maxsize=1)
def detection_names() -> frozenset[str]:
    import torchvision.models as tvm

    return frozenset(tvm.list_models(tvm.detection))


@functools.lru_cache(maxsize=1)
def timm_names() -> tuple[str, ...]:
    import timm

    return tuple(timm.list_models())


def all_names() -> list[str]:
    """Every name ``lookup`` accepts (timm's without the ``timm/`` prefix)."""
    seg = [n + BACKBONE_SUFFIX for n, g in torchvision_names().items() if g == "segmentation"]
    return list(torchvision_names()) + seg + list(timm_names())


def source_of(name: str) -> tuple[str, str] | None:
    """(library, architecture name) of a zoo name, or None when neither library has it."""
    if name.startswith("timm/"):
        arch = name[5:]
        return ("timm", arch) if arch in timm_names() else None
    if name.endswith(BACKBONE_SUFFIX) and torchvision_names().get(name[: -len(BACKBONE_SUFFIX)]) == "segmentation":
        return "torchvision-backbone", name[: -len(BACKBONE_SUFFIX)]
    if name in torchvision_names():
        return "torchvision", name
    if name in timm_names():
        return "timm", name
    return None


# ---------------------------------------------------------------- builders

def _option_error(name: str, what: str, hint: str = "") -> UserError:
    return UserError(f"{name}: {what}" + (f"; {hint}" if hint else ""))


def _timm_has(arch: str) -> bool:
    return arch in timm_names()


def tv_stage_features(model: nn.Module, name: str) -> nn.Module:
    """A torchvision classifier's stages as a multi-scale feature extractor (a list of
    tensors, strides 4..32): ResNet-like models through layer1..layer4, models with a
    ``features`` sequence through the last block of each resolution."""
    from torchvision.models._utils import IntermediateLayerGetter

    class StageFeatures(IntermediateLayerGetter):
        """torchvision's IntermediateLayerGetter, returning a list (as timm's features_only does)."""

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
            return list(super().forward(x).values())

    kids = dict(model.named_children())
    if all(f"layer{i}" in kids for i in range(1, 5)):
        return StageFeatures(model, {f"layer{i}": f"layer{i}" for i in range(1, 5)})
    seq = kids.get("features")
    if isinstance(seq, nn.Sequential):
        last_of: dict[tuple, str] = {}
        with torch.device("meta"), torch.no_grad():
            probe = copy_to_meta(seq)
            y = torch.empty(1, 3, 224, 224, device="meta")
            for child_name, child in probe.named_children():
                y = child(y)
                # channels-first blocks: H, W are the last two dims; swin's stages are NHWC
                hw = tuple(y.shape[1:3]) if y.shape[-1] > y.shape[1] and y.shape[1] == y.shape[2] else tuple(y.shape[-2:])
                last_of[hw] = child_name
        keep = [n for hw, n in last_of.items() if hw[0] <= 56]  # stride 4 and coarser
        return StageFeatures(seq, {n: n for n in keep})
    raise _option_error(name, "torchvision's model has no stage structure for --features",
                        f"use timm/{name} (features_only)" if _timm_has(name) else "")


def copy_to_meta(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).to("meta")


def torchvision_builder(arch: str, group: str, opts: Options, backbone: bool = False) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm

        kw: dict = {"weights": None}
        if group == "segmentation":
            kw["weights_backbone"] = None  # its default would download ImageNet weights
        if opts.output_stride != 32 and not backbone:
            if "replace_stride_with_dilation" not in _tv_params(arch):
                hint = f"timm/{arch} has output_stride" if _timm_has(arch) else "pick a timm model with output_stride"
                raise _option_error(arch, "torchvision's model has no output-stride option "
                                          "(only ResNets: replace_stride_with_dilation)", hint)
            kw["replace_stride_with_dilation"] = TV_DILATION[opts.output_stride]
        try:
            model = _silently(lambda: tvm.get_model(arch, **kw))
        except NotImplementedError as exc:  # BasicBlock ResNets: "Dilation > 1 not supported in BasicBlock"
            if opts.output_stride == 32:
                raise  # e.g. a constructor that cannot run on meta (meta_build retries on the CPU)
            raise _option_error(arch, f"output stride {opts.output_stride} not possible in torchvision ({exc})",
                                f"timm/{arch} supports it" if _timm_has(arch) else "") from None
        if backbone:
            model = model.backbone
            if opts.output_stride != 32 or opts.features:
                raise _option_error(arch + BACKBONE_SUFFIX, "a segmentation backbone is used as built "
                                    "(deeplabv3's ResNet is already at output stride 8); drop --output-stride/--features")
        elif opts.features:
            model = tv_stage_features(model, arch)
        return model.eval()

    return build


@functools.lru_cache(maxsize=None)
def _tv_params(arch: str) -> frozenset[str]:
    """Keyword arguments the torchvision builder passes on to the model class."""
    import inspect

    import torchvision.models as tvm

    fn = tvm.get_model_builder(arch)
    src = inspect.getsource(inspect.unwrap(fn))
    names = set(inspect.signature(fn).parameters)
    if "replace_stride_with_dilation" in src or "_resnet(" in src:
        names.add("replace_stride_with_dilation")
    return frozenset(names)


def timm_builder(arch: str, opts: Options, dynamic: bool) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        kw: dict = {"pretrained": False}
        if dynamic:
            kw["dynamic_img_size"] = True
        if opts.output_stride != 32:
            kw["output_stride"] = opts.output_stride
        if opts.features:
            kw["features_only"] = True
        try:
            return _silently(lambda: timm.create_model(arch, **kw)).eval()
        except (TypeError, AssertionError, ValueError, RuntimeError, NotImplementedError, KeyError) as exc:
            if opts.is_default:
                raise
            raise _option_error(f"timm/{arch}", f"timm cannot build it with {opts.describe()} ({oneline(exc, 140)})",
                                "pick a model that supports it") from None

    return build


def meta_build(builder: Callable[[], nn.Module]) -> nn.Module:
    """The model on the meta device: built in place, or on the CPU and moved
    (a constructor that computes with tensor values, e.g. torchvision's RegNets)."""
    try:
        with torch.device("meta"):
            return builder()
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - any constructor failure on meta: build on the CPU
        return builder().to("meta")


# ---------------------------------------------------------------- entries

def _native_tv(arch: str, group: str) -> tuple[int, int]:
    import torchvision.models as tvm

    try:
        w = tvm.get_model_weights(arch).DEFAULT
        t = w.transforms()
        s = t.crop_size[0] if group == "classification" else t.resize_size[0]
        return (s, s)
    except Exception:  # noqa: BLE001 - no published weights: the usual ImageNet crop
        return (224, 224)


def _timm_cfg(arch: str) -> tuple[tuple[int, int], bool, bool]:
    """(native size, fixed input size, dynamic_img_size supported) of a timm architecture."""
    import timm

    model = meta_build(lambda: _silently(lambda: timm.create_model(arch, pretrained=False)))
    cfg = model.pretrained_cfg or {}
    _, h, w = cfg.get("input_size", (3, 224, 224))
    fixed = bool(cfg.get("fixed_input_size"))
    dynamic = False
    if fixed:
        try:
            meta_build(lambda: _silently(lambda: timm.create_model(arch, pretrained=False, dynamic_img_size=True)))
            dynamic = True
        except TypeError:
            dynamic = False
    return (h, w), fixed, dynamic


@functools.lru_cache(maxsize=None)
def lookup(name: str, opts: Options = DEFAULT) -> ZooEntry | None:
    """The entry of a torchvision or timm name built with ``opts``; None when neither library has it."""
    src = source_of(name)
    if src is None:
        return None
    library, arch = src
    notes: list[str] = []
    fixed = False
    if library == "timm":
        size, fixed_cfg, dynamic = _timm_cfg(arch)
        builder = timm_builder(arch, opts, dynamic)
        if dynamic:
            notes.append("timm dynamic_img_size=True (absolute position embeddings resampled to the input's "
                         "patch grid in each forward)")
        fixed = fixed_cfg and not dynamic
        display, source = name if name.startswith("timm/") else f"{arch} (timm)", "timm"
    else:
        group = "segmentation" if library == "torchvision-backbone" else torchvision_names()[arch]
        backbone = library == "torchvision-backbone"
        builder = torchvision_builder(arch, group, opts, backbone)
        size = (520, 520) if group == "segmentation" else _native_tv(arch, group)
        if group == "segmentation":
            notes.append("weights_backbone=None (random weights, nothing downloaded)")
        if backbone:
            notes.append(f"the backbone of torchvision's {arch} (its .backbone module, as the model runs it)")
        fixed = arch.startswith("vit_")  # torchvision's ViT asserts its image_size
        if fixed:
            size = (224, 224)  # built with weights=None: image_size 224 (vit_h_14's 518 is its SWAG weights')
        display, source = name, "torchvision"
    if not opts.is_default:
        notes.append(opts.describe())
    entry = ZooEntry(name=name, family=FAMILY, display=display, builder=builder, units=lambda m, d: [],
                     depths=(1, 2), tags=frozenset({"zoo"}), source=source, notes=tuple(notes),
                     native_size=size, fixed_size=fixed, options=opts)
    return replace(entry, units=functools.partial(generic_units, entry))


# ---------------------------------------------------------------- generic units

@functools.lru_cache(maxsize=None)
def _cached_units(entry: ZooEntry, depth: int) -> tuple[Unit, ...]:
    model = meta_build(entry.builder)
    h, w = entry.native_size
    try:
        tr = trace(model, torch.empty(1, 3, h, w, device="meta"))
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - a forward with no meta kernel: trace a real CPU pass
        torch.manual_seed(0)
        model = entry.builder()
        tr = trace(model, torch.randn(1, 3, h, w))
    return tuple(units_from_trace(model, tr, depth))


def generic_units(entry: ZooEntry, model: nn.Module, depth: int) -> list[Unit]:
    """The units of ``entry`` at ``depth`` (traced once on a meta build; ``model`` is
    an instance of the same build, so the module paths are the same)."""
    return list(_cached_units(entry, depth))


# ---------------------------------------------------------------- sizes

@functools.lru_cache(maxsize=256)


def check_size(entry: Entry, height: int, width: int) -> None:
    """One line and exit 2 when the model cannot take ``height`` x ``width``.

    A forward pass on the meta device (no memory, no compute) tries the size; a model
    built for one size says which it needs. A forward that cannot run on meta at
    all (an op with no meta kernel) is not judged here."""
    native = getattr(entry, "native_size", None)
    fixed = getattr(entry, "fixed_size", False)
    try:
        model = meta_build(entry.builder)
        with torch.inference_mode():
            model(torch.empty(1, 3, height, width, device="meta"))
    except UserError:
        raise
    except NotImplementedError:
        return  # no meta kernel: the real run decides
    except Exception as exc:  # noqa: BLE001 - the forward's own error at this size
        if "meta" in str(exc).lower() and "tensor" in str(exc).lower() and "device" in str(exc).lower():
            return
        if fixed and native:
            h, w = native
            how = ("timm has no dynamic_img_size for it" if entry.source == "timm"
                   else "torchvision builds it for one image_size")
            alt = "; timm's ViTs take any size with dynamic_img_size" if entry.source != "timm" else ""
            raise UserError(f"{entry.name} needs {h}x{w}; takes {h}x{w} only ({how}){alt}; got {height}x{width}")
        raise UserError(f"{entry.name} cannot take {height}x{width}: {oneline(exc, 160)}"
                        + (f" (published at {native[0]}x{native[1]})" if native else "")) from None
