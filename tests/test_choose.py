"""python -m common choose: bounds, the Pareto marking and order, --mode, and one-line errors."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import choose  # noqa: E402
from common.render import data  # noqa: E402

# (model, mode, median ms, top-1, peak MiB, params M): a small dataset whose answers are known.
ROWS = [("fast_weak", "eager fp32", 2.0, 70.0, 100.0, 5.0),
        ("fast_weak", "bf16 channels-last", 1.0, 70.0, 100.0, 5.0),
        ("mid", "eager fp32", 5.0, 80.0, 300.0, 20.0),
        ("dominated", "eager fp32", 6.0, 79.0, 200.0, 10.0),
        ("slow_strong", "eager fp32", 9.0, 85.0, 900.0, 80.0),
        ("slow_strong", "bf16 channels-last", 4.0, 85.0, 900.0, 80.0),
        ("too_slow", "eager fp32", 20.0, 88.0, 500.0, 60.0),
        ("no_top1", "eager fp32", 1.5, None, None, 3.0)]


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    rows = [{"model": m, "input": "cityscapes", "height": 1024, "width": 2048, "device": "gpu-a", "device_name": "GPU A",
             "device_type": "cuda", "mode": mode, "runtime": "torch", "median_ms": ms, "p90_ms": ms * 1.01, "top1": t,
             "peak_mib": peak, "params_m": p, "record": f"results/records/gpu-a/timing/{m}_{i}.json"}
            for i, (m, mode, ms, t, peak, p) in enumerate(ROWS)]
    rows.append({**rows[0], "input": "pascal"})
    rows.append({**rows[0], "device": "cpu-b", "device_name": "CPU B"})
    path = tmp_path / "measurements.csv"
    path.write_text(data.to_csv(data.MEASUREMENT_COLUMNS, rows))
    return path


def _run(csv_path: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[list[str]], str]:
    rc = choose.main(["--data", str(csv_path), "--device", "gpu-a", "--input", "cityscapes", *args])
    out = capsys.readouterr()
    rows = [line.split() for line in out.out.splitlines()[2:] if line.strip() and not line.startswith("Memory")]
    return rc, rows, out.out + out.err


def _models(rows: list[list[str]]) -> list[tuple[bool, str]]:
    return [(r[0] == "*", r[1] if r[0] == "*" else r[0]) for r in rows]


def test_bounds_leave_exactly_the_rows_that_meet_them(csv_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, rows, out = _run(csv_path, capsys, "--max-ms", "8", "--min-top1", "75")
    assert rc == 0
    assert {m for _, m in _models(rows)} == {"mid", "dominated"}  # eager fp32 by default
    assert "2 of 6 models meet median <= 8 ms, top-1 >= 75 %" in out
    _, rows, _ = _run(csv_path, capsys, "--max-peak-mib", "250")
    assert {m for _, m in _models(rows)} == {"fast_weak", "dominated"}  # no_top1 has no peak: left out
    _, rows, _ = _run(csv_path, capsys, "--max-params-m", "4")
    assert _models(rows) == [(False, "no_top1")]  # nothing to compare its accuracy with: not Pareto


def test_pareto_rows_come_first_and_marked(csv_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, rows, _ = _run(csv_path, capsys)
    assert rc == 0
    assert _models(rows) == [(True, "fast_weak"), (True, "mid"), (True, "slow_strong"), (True, "too_slow"),
                             (False, "no_top1"), (False, "dominated")]
    for r in rows:  # each row shows the numbers it was judged on and its record
        assert re.fullmatch(r"results/records/gpu-a/timing/\w+\.json", r[-1])
    _, rows, _ = _run(csv_path, capsys, "--sort", "top1")
    assert _models(rows)[:4] == [(True, "too_slow"), (True, "slow_strong"), (True, "mid"), (True, "fast_weak")]


def test_fastest_mode_takes_each_models_fastest_row(csv_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, rows, out = _run(csv_path, capsys, "--mode", "fastest", "--max-ms", "8")
    assert rc == 0
    got = {(r[1] if r[0] == "*" else r[0]): r for r in rows}
    assert set(got) == {"fast_weak", "slow_strong", "mid", "dominated", "no_top1"}
    assert "bf16" in " ".join(got["slow_strong"])  # 4 ms in bf16, not 9 ms eager: under the bound
    assert _models(rows)[:3] == [(True, "fast_weak"), (True, "slow_strong"), (False, "no_top1")]
    assert "measured in eager fp32" in out  # the memory column's mode, said once
    _, rows, _ = _run(csv_path, capsys, "--mode", "all")
    assert len(rows) == len(ROWS)


@pytest.mark.parametrize("args, words", [
    (["--device", "gpu-x"], ["device 'gpu-x'", "did you mean gpu-a", "gpu-a, cpu-b"]),
    (["--device", "gpu-a", "--input", "imagenet"], ["input 'imagenet' on gpu-a", "cityscapes, pascal"]),
    (["--device", "gpu-a", "--input", "cityscape"], ["did you mean cityscapes"]),
    (["--device", "gpu-a", "--input", "cityscapes", "--mode", "fp8"], ["mode 'fp8'", "bf16 channels-last"]),
])
def test_unknown_device_input_or_mode_is_one_line(csv_path: Path, capsys: pytest.CaptureFixture,
                                                   args: list[str], words: list[str]) -> None:
    argv = ["--data", str(csv_path), *args]
    if "--input" not in argv:
        argv += ["--input", "cityscapes"]
    assert choose.main(argv) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and out.err.startswith("python -m common choose: error: ")
    for w in words:
        assert w in out.err


def test_a_missing_dataset_says_how_to_make_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert choose.main(["--data", str(tmp_path / "none.csv"), "--device", "a", "--input", "b"]) == 2
    assert "run python -m common.render" in capsys.readouterr().err


def test_the_issue_example_is_answered_from_the_committed_dataset(capsys: pytest.CaptureFixture) -> None:
    assert choose.main(["--device", "nvidia-h200", "--input", "cityscapes", "--max-ms", "10", "--min-top1", "80",
                        "--mode", "fastest"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    rows = [ln.split() for ln in lines[2:] if not ln.startswith("Memory")]
    assert rows
    for r in rows:
        cells = r[1:] if r[0] == "*" else r
        nums = cells[-7:-1]  # median, p90, top-1, peak, params, GMACs
        assert float(nums[0]) <= 10 and float(nums[2]) >= 80, r
        assert Path(choose.DATA).parents[2].joinpath(cells[-1]).is_file()
    assert header[:1] == ["model"]
