"""The command-line surface lives in one place (common.parsers): no other module of common/
or scripts/ builds a parser, every parser builds without torch or a measuring module, and the values
its help and choices show are those the measuring code uses."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, child_env

BUILDS = {"ArgumentParser", "add_argument", "add_parser", "add_argument_group", "add_mutually_exclusive_group",
          "add_subparsers"}


def builders(path: Path) -> list[str]:
    """Where ``path`` builds or extends an argparse parser: ``LINE what`` for each call, or
    class deriving from one."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if name in BUILDS:
                found.append(f"{node.lineno} {name}")
        elif isinstance(node, ast.ClassDef):
            found += [f"{node.lineno} class {node.name}" for b in node.bases if ast.unparse(b).endswith("ArgumentParser")]
    return sorted(found, key=lambda s: int(s.split()[0]))


def test_the_finder_sees_a_parser_built_anywhere(tmp_path):
    (tmp_path / "m.py").write_text("import argparse\nclass P(argparse.ArgumentParser):\n    pass\n"
                                   "def f(p):\n    p.add_argument('--x')\n")
    assert builders(tmp_path / "m.py") == ["2 class P", "5 add_argument"]


def test_only_common_parsers_builds_parsers():
    home = ROOT / "common" / "parsers"
    code = sorted((ROOT / "common").rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))
    elsewhere = [f"{p.relative_to(ROOT)}:{hit}" for p in code if home not in p.parents for hit in builders(p)]
    assert elsewhere == []
    assert len([hit for p in home.glob("*.py") for hit in builders(p)]) > 100


def test_every_parser_builds_without_torch_or_a_measuring_module():
    """Each verb's parser, built: what ``--help`` shows needs neither torch nor the code
    that measures (nor the drivers, the sweep, the zoo's loop or the renderer)."""
    code = """
import sys
from pathlib import Path
from common import parsers
from common.parsers import drivers, maintenance, tools
for tool in ("timer", "mem"):
    for family in (None, "resnet", "vgg", "zoo"):
        parsers.model(tool, family)
parsers.layer_sets()
drivers.drive("d", {"mem": "reports"}); drivers.drive_threads("p"); drivers.zoo(); drivers.sweep(); drivers.request()
tools.burden("p"); tools.check_timer("p", "d"); tools.choose("p", "d", ["median_ms"], Path("x")); tools.compact("d")
tools.runtimes("p", "d"); tools.peak("p", "d"); tools.listing("p list", "d"); tools.render("p", "d", 0.8)
tools.compare("d"); tools.reference("d")
maintenance.import_records("p", "d"); maintenance.bad_inputs("d"); maintenance.guard_table("d")
heavy = ("torch", "torchvision", "timm", "common.measure", "common.registry", "common.run", "common.cli",
         "common.drive", "common.sweep", "common.zoo.driver", "common.zoo.throughput", "common.render")
print(sorted(m for m in sys.modules if m.startswith(heavy)))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=child_env(),
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_values_parsers_show_are_the_measuring_codes():
    """The parsers read torch-free copies (common.catalogue, common.spec) of what the
    registry and the layer benchmarks define."""
    from common import parsers, registry, spec
    from common.measure import layerbench
    from common.parsers import drivers, tools

    assert tuple(layerbench.SETS) == spec.LAYER_SETS
    stats = drivers.drive("d", {})._subparsers._group_actions[0].choices["stats"]
    assert next(a for a in stats._actions if a.dest == "family").choices == registry.FAMILIES
    for family in (None, *registry.FAMILIES):
        text = next(a for a in parsers.model("timer", family)._actions if a.dest == "model").help
        named = text.removeprefix("model to profile: ").split(", any torchvision")[0].split(", ")
        assert named == (registry.family_models(family) if family else list(registry.REGISTRY))
    assert tools.check_timer("p", "d").parse_args([]).models == list(registry.BACKBONES)


@pytest.mark.parametrize("verb", ["time", "zoo", "sweep", "check-timer"])
def test_protocol_override_flags_are_one_group(verb, capsys):
    """--warmup, --iters, --max-seconds, --min-iters take and refuse the same values everywhere."""
    from common.__main__ import main as door

    for flag, bad, why in (("--warmup", "-1", "must be 0 or more"), ("--iters", "0", "must be greater than 0"),
                           ("--max-seconds", "inf", "is not a finite number"), ("--min-iters", "x", "is not a number")):
        with pytest.raises(SystemExit) as info:
            door([verb, "--model", "resnet18", flag, bad] if verb == "time" else [verb, flag, bad])
        assert info.value.code == 2
        assert f"argument {flag}: {bad!r} {why}" in capsys.readouterr().err
