"""Per-unit timing for any model (issue 22, item 8): blocks a forward iterates over
in a container it never calls become units; a heavy functional unit with no
parameters and no MACs is flagged in the record and the .txt; parameters no forward
reads (auxiliary heads in eval()) are counted apart. CPU, meta builds, small sizes."""
from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from common import cli, derive, registry
from common.measure import structure
from common.registry import generic
from common.registry import unit_trace as unit_rules
from common.render import txt

ROOT = Path(__file__).resolve().parent.parent
ZOO_TIMER = ["--layers", "--warmup", "0", "--iters", "2", "--warmup-seconds", "0", "--device", "cpu"]


def _cost(name: str, depth: int, size: int = 224) -> tuple[list, structure.Cost]:
    model = registry.build(name, "meta")
    units = registry.units(name, model, depth)
    return units, structure.analyze(model, torch.empty(1, 3, size, size, device="meta"), units)


class Containers(nn.Module):
    """Blocks in a ModuleList, a ModuleDict and a Sequential, none of them called
    itself; the forward runs the dict's blocks in another order than declared."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1) for _ in range(2)])
        self.branches = nn.ModuleDict({"a": nn.Conv2d(4, 4, 1), "b": nn.Conv2d(4, 4, 1)})
        self.tail = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 1))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = self.stem(x)
        for blk in self.blocks:
            x = blk(x) + x
        x = self.branches["b"](x)
        x = self.branches["a"](x)
        for layer in self.tail:
            x = layer(x)
        return self.head(x.mean((2, 3)))


def test_blocks_of_containers_the_forward_never_calls_become_units_in_call_order():
    model = Containers().eval()
    tr = unit_rules.trace(model, torch.randn(1, 3, 8, 8))
    paths = [u.path for u in unit_rules.units_from_trace(model, tr, 1) if u.path]
    assert paths == ["stem", "blocks.0", "blocks.1", "branches.b", "branches.a", "tail.0", "tail.1", "head"]
    cost = structure.analyze(model, torch.randn(1, 3, 8, 8), unit_rules.units_from_trace(model, tr, 1))
    assert cost.params_in_units == cost.params and cost.params_unused == 0


def test_coat_lite_tiny_blocks_are_units_holding_its_parameters():
    units, cost = _cost("coat_lite_tiny", 1)
    paths = [u.path for u in units if u.path]
    blocks = [p for p in paths if p.startswith("serial_blocks")]
    assert blocks == [f"serial_blocks{s}.{b}" for s in range(1, 5) for b in range(2)]
    assert paths.index("patch_embed2") < paths.index("serial_blocks2.0") < paths.index("patch_embed3")
    # The four stages' blocks used to run inside functional units (14% of the parameters in units).
    assert cost.params_unused == 0 and cost.params_in_units / cost.params > 0.99
    # The shared convolutional position encodings run between depth-2 units: the note names them
    # and the functional unit counts their MACs and parameters.
    units2, cost2 = _cost("coat_lite_tiny", 2)
    first = next(c for u, c in zip(units2, cost2.units) if u.path is None and "cpe1" in u.note)
    assert "cpe1 x2 shared" in next(u.note for u in units2 if u.label == first.label)
    coat = registry.build("coat_lite_tiny", "meta")
    # ... and the stage's class token, concatenated by the model's forward in the same gap
    assert first.macs > 0 and first.params == sum(p.numel() for p in coat.cpe1.parameters()) + coat.cls_token1.numel()


def test_googlenet_auxiliary_heads_are_counted_apart():
    units, cost = _cost("googlenet", 1, 64)
    model = registry.build("googlenet", "meta")
    aux = sum(p.numel() for p in [*model.aux1.parameters(), *model.aux2.parameters()])
    assert cost.params == sum(p.numel() for p in model.parameters())  # the model's count, unchanged
    assert cost.params_unused == aux > 6_000_000 and cost.unused == ["aux1", "aux2"]
    assert cost.params_in_units == cost.params - aux
    d = cost.to_dict()
    assert d["params_unused"] == aux and d["unused"] == ["aux1", "aux2"]


class HiddenStep(nn.Module):
    """A tiny convolution, then heavy parameter-free work in the forward itself; an
    auxiliary head that the forward never runs."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)
        self.aux = nn.Linear(4, 3)

    def forward(self, x):
        y = F.interpolate(self.stem(x), scale_factor=8)
        for _ in range(30):
            y = torch.tanh(y) * 0.5 + y.sin()
        return self.head(y.mean((2, 3)))


@pytest.fixture
def hidden_step(monkeypatch):
    entry = generic.ZooEntry(name="hidden_step", family="zoo", display="hidden_step",
                             builder=lambda: HiddenStep().eval(), units=lambda m, d: [], depths=(1, 2),
                             native_size=(16, 16))
    entry = replace(entry, units=functools.partial(generic.generic_units, entry))
    monkeypatch.setitem(registry.REGISTRY, "hidden_step", entry)
    return entry


def test_heavy_parameter_free_functional_unit_is_flagged_and_unused_parameters_apart(hidden_step, tmp_path, capsys):
    code = cli.main("timer", "zoo", ["--model", "hidden_step", "--size", "16x16", *ZOO_TIMER, "--out-dir",
                                     str(tmp_path)], prog="zoo_profiler/timer.py")
    assert code == 0, capsys.readouterr().err
    rec = json.loads(next((tmp_path / "results" / "records").rglob("layers/*.json")).read_text())
    r = rec["result"]
    assert [u["label"] for u in r["units"]] == ["stem", "functional1", "head"]
    flags = r["functional_flags"]
    assert [f["label"] for f in flags["flagged"]] == ["functional1"]
    assert flags["threshold"] == derive.FLAG_SHARE and flags["flagged"][0]["share"] > 0.5
    assert "tanh x30" in flags["flagged"][0]["note"]
    text = next((tmp_path / "zoo_profiler").rglob("layers/*.txt")).read_text()
    row = next(line for line in text.splitlines() if line.startswith("functional1"))
    assert row.endswith("FLAGGED")
    assert "FLAGGED functional1:" in text and "with no parameters and no MACs" in text
    # the head the forward never runs: counted in the model's parameters, reported apart
    assert r["cost"]["params"] == 112 + 10 + 15 and r["cost"]["params_unused"] == 15 and r["cost"]["unused"] == ["aux"]
    assert "Parameters: 137; read by the forward 122, held by the units 122 (100.0%); 15 never read by the forward " \
           "(aux)" in text


def test_flags_need_the_share_and_neither_parameters_nor_macs():
    def unit(label, path, ms):
        return {"label": label, "path": path, "note": "", "stats": {"mean_ms": ms}}

    units = [unit("a", "a", 8.0), unit("f1", None, 1.0), unit("f2", None, 0.4), unit("f3", None, 0.6)]
    costs = [{"label": "f1", "params": 0, "macs": 0}, {"label": "f2", "params": 0, "macs": 0},
             {"label": "f3", "params": 0, "macs": 10}]
    got = derive.functional_flags(units, costs)
    assert [f["label"] for f in got["flagged"]] == ["f1"]  # f2: 4% of the time, f3: has MACs
    assert got["functional_share"] == pytest.approx(0.2)
    assert derive.functional_flags(units, costs, threshold=0.2)["flagged"] == []


def test_catalogue_units_match_their_committed_per_unit_records():
    """The committed per-unit records of the catalogue models have exactly the units the rules give now."""
    seen: dict[tuple[str, int], list[str]] = {}
    for path in sorted((ROOT / "results" / "records").glob("*/layers/*.json")):
        req = json.loads(path.read_text())["request"]
        if req["model"] not in registry.REGISTRY or req.get("features") or req.get("output_stride", 32) != 32:
            continue
        key = (req["model"], req["depth"])
        if key not in seen:
            seen[key] = [u.label for u in registry.units(req["model"], registry.build(req["model"], "meta"),
                                                         req["depth"])]
        assert [u["label"] for u in json.loads(path.read_text())["result"]["units"]] == seen[key], path.name
    assert len({m for m, _ in seen}) >= 8


def test_structure_and_memory_txt_name_never_read_parameters(hidden_step, tmp_path, capsys):
    args = ["--model", "hidden_step", "--size", "16x16", "--device", "cpu", "--struct", "--out-dir", str(tmp_path)]
    assert cli.main("mem", "zoo", args, prog="zoo_profiler/mem.py") == 0, capsys.readouterr().err
    line = "  of which 15 never read by the forward (aux)\n"
    assert line in next((tmp_path / "zoo_profiler").rglob("*.txt")).read_text()
    # A memory record measures its peak in a child process (which cannot see this test's model): its
    # .txt is rendered here from a committed record with the toy's cost; without the new fields, unchanged.
    rec = json.loads((ROOT / "tests/fixtures/records/nvidia-h100-80gb-hbm3/memory/resnet18_pascal.json").read_text())
    assert "never read" not in txt.memory_txt(rec)
    rec["result"]["cost"] = structure.analyze(HiddenStep().eval(), torch.randn(1, 3, 16, 16)).to_dict()
    assert line in txt.memory_txt(rec)


def test_per_unit_txt_never_cuts_two_unit_labels_to_one():
    """Generic units are module paths: serial_blocks1.0 and serial_blocks1.1 were both shown as 'serial_blocks1.'."""
    rec = json.loads((ROOT / "tests/fixtures/records/cpu-amd-epyc/layers/mobilenet_v2_cityscapes.json").read_text())
    before = txt.layers_txt(rec)
    for u in rec["result"]["units"][1:3]:
        u["label"] = "serial_blocks1." + u["label"][-1]
    rows = [line.split()[0] for line in txt.layers_txt(rec).splitlines() if line.startswith("serial_blocks1.")]
    assert rows == ["serial_blocks1.1", "serial_blocks1.2"] * 2  # the timing table and the roofline table
    assert max(len(line) for line in txt.layers_txt(rec).splitlines()) <= txt.WIDTH
    assert "\nstem            features.0 (" in before  # short labels: the column as before
