"""README's usage lines, as printed, each run with a small size (in process:
the shell drivers are thin `exec python -m common.drive ...` lines, read here)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from common import cli, drive
from common.registry.__main__ import main as registry_main
from conftest import ROOT

SMALL = ["--device", "cpu", "--size", "32x32", "--iters", "1", "--warmup", "0", "--warmup-seconds", "0", "--tag", "t"]


def usage_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Usage", 1)[1].split("```", 2)[1]
    lines = [line.split("  #")[0].strip() for line in block.strip().splitlines()]
    return [line for line in lines if line]


def _driver_argv(script: str) -> tuple[str, list[str]]:
    """What a thin driver runs: the module and its fixed arguments."""
    text = (ROOT / script).read_text()
    m = re.search(r'-m common\.(drive|cli) (.*?) "\$@"', text)
    assert m, f"{script} is not a thin driver"
    return m.group(1), shlex.split(m.group(2))


def run_line(line: str, out: Path) -> int:
    words = [w.strip("[]") for w in shlex.split(line)]
    small = [*SMALL, "--out-dir", str(out)]
    if words[0] == "sh" and words[1] == "layer_profiler/stats.sh":
        return max(cli.main_layers(["--set", s, "--device", "cpu", "--iters", "1", "--warmup", "0", "--tag", "t",
                                    "--out-dir", str(out)]) for s in ("seed004", "large"))
    if words[0] == "sh":
        module, fixed = _driver_argv(words[1])
        assert module == "drive"
        struct = "--struct" in fixed or "mem" in fixed
        extra = ["--size", "32x32", "--out-dir", str(out)] if struct else small
        return drive.main([*fixed, *words[2:], *extra])
    if words[:3] == ["python", "-m", "common.registry"]:
        return registry_main(words[3:])
    if words[:3] == ["python", "-m", "common.render"]:
        # As printed it re-renders the repository: test_tables runs that same pass (--check) on
        # the committed repo; here the command line itself.
        from common.render.__main__ import main as render_main
        with pytest.raises(SystemExit) as info:
            render_main(["--help"])
        return info.value.code
    if words[0] == "python" and words[1].endswith(("timer.py", "mem.py")):
        family = Path(words[1]).parent.name.removesuffix("_profiler")
        tool = Path(words[1]).stem
        extra = small if tool == "timer" else ["--device", "cpu", "--size", "32x32", "--tag", "t", "--out-dir", str(out)]
        if "--pass" in words:
            extra += ["--batch", "2"]  # batch norm needs two values per channel in a training step
        return cli.main(tool, family, [*words[2:], *extra])
    raise AssertionError(f"README usage line not covered by this test: {line}")


LINES = [line for line in usage_lines() if not line.startswith("./test.sh")]


@pytest.fixture
def brief(monkeypatch):
    """Keep the heavy parts brief: the mode search looks at each mode for a moment, and
    the fresh-process peak (tested on its own in test_structure_memory) is not re-run
    once per model here."""
    from common import registry
    from common.measure import execution, layerbench, memory

    monkeypatch.setattr(execution, "SEARCH_WARMUP", 1)
    monkeypatch.setattr(execution, "SEARCH_SECONDS", 0.01)
    # Compiling takes tens of seconds on a CPU (tests/test_gpu.py compiles on the GPU).
    monkeypatch.setattr(execution, "FASTEST_CANDIDATES", tuple(c for c in execution.FASTEST_CANDIDATES
                                                               if not c.get("compile")))
    # The layer sets cut to two layers each (the whole seed set runs in test_entry_train_modes;
    # the large set's shapes are made to load a modern GPU).
    monkeypatch.setattr(layerbench, "SETS", {"seed004": layerbench.SETS["seed004"][:2],
                                             "large": layerbench.SETS["seed004"][2:4]})
    monkeypatch.setattr(memory, "cpu_peak", lambda req, train=False: {
        "method": "not measured in this test", f"peak_{'train_step' if train else 'inference'}_mib": 1.0})


@pytest.mark.parametrize("line", LINES)
def test_readme_usage_line_runs_as_printed(line, tmp_path, capsys, brief, monkeypatch):
    if "seed004.sh" in line:  # seed 004's list as the catalogue gives it, cut to one VGG and one ResNet
        from common import registry

        monkeypatch.setattr(registry, "SEED004", {"vgg16": 2, "resnet18": 2})
    code = run_line(line, tmp_path)
    err = capsys.readouterr().err
    if "--cuda-graph" in line:  # a GPU mode: on this CPU machine, one clear line
        assert code == 2 and "needs a CUDA device" in err
    else:
        assert code == 0, err[-2000:]


def test_every_usage_line_names_a_file_that_exists():
    for line in usage_lines():
        words = shlex.split(line)
        target = words[1] if words[0] in ("sh", "python") and words[1] != "-m" else words[0]
        if words[1:2] == ["-m"]:
            assert (ROOT / words[2].replace(".", "/")).exists(), line
        else:
            assert (ROOT / target).exists(), line
