"""Model registry, per-layer units, and inputs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from common import inputs, registry
from common.errors import UserError
from conftest import meta_model

# torchvision / timm reference parameter counts (ImageNet heads, 1000 classes).
PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "mobilenet_v2": 3_504_872,
    "xception": 22_855_952,
}
# Seed 004's VGGs (torchvision, 1000 classes).
VGG_PARAMS = {"vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240, "vgg19_bn": 143_678_248}


# --------------------------------------------------------------------------- registry

@pytest.mark.parametrize("name", list(PARAMS) + list(VGG_PARAMS))
def test_parameter_count(name):
    m = meta_model(name)
    assert sum(p.numel() for p in m.parameters()) == {**PARAMS, **VGG_PARAMS}[name]


def test_seed004_models_and_batches():
    assert list(registry.SEED004) == list(VGG_PARAMS) + ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert {m for m, b in registry.SEED004.items() if b == 4} == {"resnet101", "resnet152"}
    assert set(registry.SEED004.values()) == {4, 8}


def test_backbones_are_the_six_of_the_tables():
    assert registry.BACKBONES == tuple(PARAMS)


def test_catalogue_expected_params_match_the_references():
    refs = {**PARAMS, **VGG_PARAMS}
    assert {n: registry.get(n).expected_params for n in refs} == refs


def test_unknown_model_names_the_closest():
    with pytest.raises(UserError) as exc:
        registry.get("resnet19")
    msg = str(exc.value)
    assert "'resnet19'" in msg and "did you mean" in msg and "resnet18" in msg
    assert "vgg16" not in msg  # only close names, not the whole catalogue


def test_unknown_model_without_close_name_lists_every_name():
    with pytest.raises(UserError) as exc:
        registry.get("qqqq")
    for name in registry.REGISTRY:
        assert name in str(exc.value)


def test_families_match_profiler_folders():
    assert registry.family_models("resnet") == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert registry.family_models("mobilenetv2") == ["mobilenet_v2"]
    assert registry.family_models("xception") == ["xception"]
    assert registry.family_models("vgg") == list(VGG_PARAMS)


def test_build_is_in_eval_mode_on_cpu():
    m = registry.build("mobilenet_v2")
    assert not m.training
    assert all(not sub.training for sub in m.modules())  # BatchNorm/Dropout in inference mode
    assert {p.device.type for p in m.parameters()} == {"cpu"}


# --------------------------------------------------------------------------- units

UNIT_CASES = [(name, 1) for name in registry.BACKBONES] + [("resnet18", 2), ("resnet50", 2), ("vgg16", 1),
                                                          ("vgg19_bn", 1)]


def _executed_leaves(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Dotted paths of leaf modules (no children), in the order they ran."""
    order: list[str] = []
    handles = []
    for path, mod in model.named_modules():
        if path and not list(mod.children()):
            handles.append(mod.register_forward_hook(lambda _m, _a, _o, path=path: order.append(path)))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return order


def _owner(path: str, unit_paths: list[str | None]) -> list[int]:
    return [i for i, up in enumerate(unit_paths) if up is not None and (path == up or path.startswith(up + "."))]


@pytest.mark.parametrize("name,depth", UNIT_CASES)
def test_units_cover_every_executed_leaf_once_in_order(name, depth):
    model = meta_model(name)
    units = registry.units(name, model, depth)
    paths = [u.path for u in units]
    leaves = _executed_leaves(model, torch.empty(1, 3, 64, 64, device="meta"))
    assert leaves, "no leaf module ran"

    sequence = []
    for leaf in leaves:
        owners = _owner(leaf, paths)
        assert len(owners) == 1, f"leaf {leaf!r} belongs to units {[units[i].label for i in owners]}"
        sequence.append(owners[0])
    assert sequence == sorted(sequence), "units are not in execution order"
    module_units = {i for i, p in enumerate(paths) if p is not None}
    assert set(sequence) == module_units, "some module unit never ran"
    # Labels are unique (they key the per-unit rows and the cost table).
    assert len({u.label for u in units}) == len(units)


def test_resnet_depth2_splits_stages_into_blocks():
    m = meta_model("resnet50")
    labels = [u.label for u in registry.units("resnet50", m, 2)]
    assert labels[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert labels[-2:] == ["avgpool", "fc"]
    blocks = labels[4:-2]
    assert blocks == [f"layer{s}.{b}" for s, n in zip((1, 2, 3, 4), (3, 4, 6, 3)) for b in range(n)]


def test_resnet_depth1_units():
    m = meta_model("resnet18")
    assert [u.label for u in registry.units("resnet18", m, 1)] == [
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]


def test_mobilenet_v2_has_functional_pooling_unit():
    m = meta_model("mobilenet_v2")
    units = registry.units("mobilenet_v2", m)
    labels = [u.label for u in units]
    assert labels == ["stem", *[f"block{i}" for i in range(1, 18)], "last_conv", "pooling", "classifier"]
    pooling = units[labels.index("pooling")]
    assert pooling.path is None and pooling.note
    assert [u for u in units if u.path is None] == [pooling]


def test_xception_unit_labels():
    m = meta_model("xception")
    labels = [u.label for u in registry.units("xception", m)]
    assert labels == [
        "conv1", "bn1", "act1", "conv2", "bn2", "act2",
        *[f"block{i}" for i in range(1, 13)],
        "conv3", "bn3", "act3", "conv4", "bn4", "act4", "global_pool", "fc",
    ]


def test_xception_min_side_is_the_smallest_size_that_runs():
    entry = registry.get("xception")
    assert entry.min_side == 7
    with pytest.raises(UserError, match="too small"):
        inputs.check_fits(inputs.resolve(None, "6x64"), entry.min_side, "xception")
    inputs.check_fits(inputs.resolve(None, "7x7"), entry.min_side, "xception")
    model = registry.build("xception")
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 7, 7)).shape == (1, 1000)
        with pytest.raises(RuntimeError):
            model(torch.randn(1, 3, 6, 6))


# --------------------------------------------------------------------------- inputs

@pytest.mark.parametrize("preset,shape", [
    ("cityscapes", (1, 3, 1024, 2048)),
    ("pascal", (1, 3, 500, 334)),
    ("imagenet", (1, 3, 224, 224)),
])
def test_preset_shapes(preset, shape):
    spec = inputs.resolve(preset, None)
    assert spec.shape == shape
    assert spec.tag == preset


def test_default_preset_is_cityscapes():
    assert inputs.resolve(None, None).shape == (1, 3, 1024, 2048)


def test_size_overrides_preset_and_batch_in_tag():
    spec = inputs.resolve("pascal", "32x48", batch=4)
    assert spec.shape == (4, 3, 32, 48)
    assert spec.tag == "32x48_b4"


@pytest.mark.parametrize("text,hw", [("64x64", (64, 64)), ("512X1024", (512, 1024)), (" 3 x 5 ", (3, 5))])
def test_parse_size_ok(text, hw):
    assert inputs.parse_size(text) == hw


@pytest.mark.parametrize("text", ["0x5", "-1x4", "abc", "5x0", "64", "64x", "1.5x2"])
def test_parse_size_errors(text):
    with pytest.raises(UserError):
        inputs.parse_size(text)


@pytest.mark.parametrize("kwargs", [dict(preset="mnist", size=None), dict(preset=None, size="8x8", batch=0)])
def test_resolve_errors(kwargs):
    with pytest.raises(UserError):
        inputs.resolve(**kwargs)


def test_seeded_input_is_identical_across_calls():
    spec = inputs.resolve(None, "16x24", batch=2)
    a = inputs.make(spec, "cpu")
    b = inputs.make(spec, "cpu")
    assert a.shape == (2, 3, 16, 24) and a.dtype == torch.float32
    assert torch.equal(a, b)
    torch.randn(10)  # the global RNG does not matter: the tensor has its own generator
    assert torch.equal(inputs.make(spec, "cpu"), a)
    assert a.std() > 0.5  # standard normal, not zeros


def test_vgg_units_are_named_as_in_the_paper():
    labels = [u.label for u in registry.units("vgg16", meta_model("vgg16"))]
    assert labels[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "conv5_3" in labels and "conv5_4" not in labels
    assert labels[-7:] == ["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]
    bn = [u.label for u in registry.units("vgg19_bn", meta_model("vgg19_bn"))]
    assert bn[:3] == ["conv1_1", "bn1_1", "relu1_1"] and "conv5_4" in bn
