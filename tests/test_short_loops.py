"""Records whose timed loop stopped on its --max-seconds budget before --iters having
timed less than 80% of it (the warm-up left work queued on the GPU) say so in their
.txt and table rows, and ``python -m common.render --short-loops`` lists them."""
from __future__ import annotations

from common import records
from common.render import __main__ as render_main
from common.render import evidence, select, txt
from test_publishing import main_path, timing


def budgeted(samples: list[float], budget: float, stopped: bool = True, repeat_runs: list | None = None) -> dict:
    rec = timing("2026-12-01T10:00:00+00:00", 25, len(samples))
    rec["request"].update(max_seconds=budget, iters=300)
    rec["result"]["timing"].update(samples_ms=samples, requested_iters=300, stopped_early=stopped)
    if repeat_runs is not None:
        rec["result"]["repeats"] = {"runs": repeat_runs}
    return rec


def test_a_loop_that_timed_little_of_its_budget_is_named_with_its_share():
    rec = budgeted([43.0] * 10, 1.0)  # 430 ms of a 1 s budget
    assert evidence.budget_text(rec) == "timed 43% of a 1 s budget"
    assert "# SHORT TIMED LOOP: timed 43% of a 1 s budget" in txt.text_for({**rec, "_path": "x/timing/a.json"})
    assert "timed 43% of a 1 s budget" in select.to_row({**rec, "_path": "x/timing/a.json"}).flags


def test_loops_that_timed_their_budget_or_ran_every_iteration_are_not_marked():
    assert evidence.budget_timed(budgeted([90.0] * 10, 1.0)) is None  # 90% of the budget
    assert evidence.budget_timed(budgeted([10.0] * 10, 1.0, stopped=False)) is None  # reached --iters
    assert evidence.budget_timed(timing("2026-12-01T10:00:00+00:00", 1, 3)) is None  # no budget
    assert "SHORT" not in txt.text_for({**budgeted([90.0] * 10, 1.0), "_path": "x/timing/a.json"})


def test_the_least_timed_repeat_decides():
    short = {"samples_ms": [10.0] * 5, "stopped_early": True}
    rec = budgeted([100.0] * 9, 1.0, repeat_runs=[{"samples_ms": [100.0] * 9, "stopped_early": True}, short])
    assert evidence.budget_text(rec) == "timed 5% of a 1 s budget"


def test_render_lists_the_short_loops(tmp_path, capsys):
    records.write_record(main_path(tmp_path), budgeted([30.0] * 10, 0.5))
    assert render_main.main(["--results", str(tmp_path), "--short-loops"]) == 0
    out = capsys.readouterr()
    assert "timing/resnet18_pascal.json: timed 60% of a 0.5 s budget" in out.out
    assert "1 of 1 records" in out.err
