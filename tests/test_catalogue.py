"""common.catalogue, the torch-free metadata the renderer reads, agrees with the registry
(which builds its entries from it), and a run stores the metadata in its record: the
record is saved by ``run.save`` alone and its .txt is rendered by the entry point."""
from __future__ import annotations

import json

import torch

from common import catalogue, inputs, registry
from common import run as runmod
from common.render import txt
from common.spec import Request
from common.zoo import reference


def test_the_registry_entries_are_the_catalogue_s() -> None:
    assert list(registry.REGISTRY) == list(catalogue.NAMES)
    assert registry.BACKBONES == catalogue.BACKBONES and registry.SEED004 == catalogue.SEED004
    for name, entry in registry.REGISTRY.items():
        assert (entry.family, entry.display, entry.block, entry.expected_params, entry.source) == (
            catalogue.family(name), catalogue.display(name), catalogue.block(name),
            catalogue.INFO[name].expected_params, catalogue.source(name))


def test_zoo_names_resolve_as_the_registry_resolves_them() -> None:
    for name in ("alexnet", "convnext_tiny", "legacy_seresnet50", "timm/resnet18", "deeplabv3_resnet50",
                 "deeplabv3_resnet50.backbone", "xception41"):
        entry = registry.get(name)
        assert (catalogue.family(name), catalogue.display(name), catalogue.source(name)) == (
            entry.family, entry.display, entry.source), name


def test_the_torchvision_reference_file_is_what_torchvision_states() -> None:
    assert catalogue.TORCHVISION_TOP1.read_text(encoding="utf-8") == reference.torchvision_table()


def test_a_run_saves_the_record_with_its_metadata_and_the_entry_point_renders_its_txt(tmp_path) -> None:
    req = Request("structure", "resnet18", inputs.resolve(None, "32x32", 1), "cpu", depth=1)
    session = runmod.Session(torch.device("cpu"), tmp_path)
    rec = runmod.measure(req, session)
    assert rec["model"] == registry.metadata(req)
    assert rec["model"]["family"] == "resnet" and rec["model"]["top1"]["top1"] > 60
    (path,) = runmod.save(rec, session)  # the record only: measuring never renders
    assert not list(tmp_path.rglob("*.txt"))
    from common import cli

    session.write_txt = cli.write_txt  # the entry point's renderer, run inside the record's write
    written = runmod.save(rec, session)
    assert written == [txt.path_for({**rec, "_path": str(path)}, tmp_path), path]
    assert written[0].read_text().startswith("# Model structure")
    assert json.loads(path.read_text())["model"]["display"] == "ResNet-18"
