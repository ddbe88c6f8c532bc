"""README as a newcomer reads it: at most 200 lines, the set-up commands first,
every usage line run as printed (in process, with the repository's outputs
redirected to a temporary folder), every top-level folder named in Layout."""
from __future__ import annotations

import shlex
import subprocess

import pytest

from common import records
from common.__main__ import main as door
from conftest import ROOT

README = ROOT / "README.md"


def usage_lines() -> list[str]:
    block = README.read_text().split("## Usage", 1)[1].split("```", 2)[1]
    lines = [line.split("  #")[0].strip() for line in block.strip().splitlines()]
    return [line for line in lines if line]


def test_readme_is_short_and_opens_with_the_two_set_up_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"
    first_block = README.read_text().split("```", 2)[1].split()
    assert first_block[:1] == ["./profile.sh"] and "./test.sh" in first_block


def test_layout_names_every_top_level_folder():
    layout = README.read_text().split("## Layout", 1)[1].split("```", 2)[1]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folders = {p.split("/", 1)[0] for p in tracked.splitlines() if "/" in p}
    named = {line.split()[0].rstrip("/") for line in layout.splitlines() if line and not line.startswith(" ")}
    assert folders <= named, f"not in README's Layout: {sorted(folders - named)}"


def test_every_usage_line_is_a_front_door_verb():
    assert usage_lines(), "README has no usage block"
    for line in usage_lines():
        assert shlex.split(line)[:3] == ["python", "-m", "common"], line


@pytest.fixture
def brief(monkeypatch, tmp_path):
    """Outputs go to a temporary root (``--out-dir``'s default), and the slow parts are
    cut short: the CPU's fresh-process memory peak (tested in test_structure_memory)."""
    from common.measure import memory

    monkeypatch.setattr(records, "ROOT", tmp_path)
    monkeypatch.setattr(records, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(memory, "cpu_peak", lambda req, train=False: {
        "method": "not measured in this test", f"peak_{'train_step' if train else 'inference'}_mib": 1.0})
    return tmp_path


@pytest.mark.parametrize("line", usage_lines())
def test_readme_usage_line_runs_as_printed(line, brief, capsys):
    words = shlex.split(line)[3:]
    if words[:1] == ["render"]:
        # As printed it checks the committed repository: test_tables runs that very pass
        # (the whole catalogue of records); here the verb and its flag must parse.
        words = [*words, "--help"]
    try:
        code = door(words)
    except SystemExit as exc:  # --help
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert out.strip(), f"{line}: printed nothing"
    assert not [p for p in ROOT.joinpath("results", "records").rglob("*.json") if p.stat().st_mtime > START], line


START = max(p.stat().st_mtime for p in (ROOT / "results" / "records").rglob("*.json"))
