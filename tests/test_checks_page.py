"""results/timer_check.md: both kinds of timer cross-check, rendered from their records."""
from common.render import checks


def _rec(rows, fresh=None, tag="gpu", path="/r/a.json"):
    req = {"kind": "timer-check", "warmup": 5, "iters": 30, "max_seconds": None, "clock": "perf_counter",
           "min_run_time_s": 3.0, "threads": 2, "fresh_process_rounds": fresh}
    return {"kind": "timer-check", "device_tag": tag, "request": req, "superseded": None, "_path": path,
            "env": {"date": "2026-12-01T00:00:00+00:00", "device_name": "Box"}, "code_version": {"commit": "abc1234"},
            "result": {"agreement": 0.03, "rows": rows}}


def test_same_process_and_fresh_process_checks_each_get_their_table():
    same = _rec([{"model": "resnet18", "input": "pascal", "ours_median_ms": 100.0, "benchmark_median_ms": 95.0,
                  "ratio": 100 / 95, "agrees": False, "layers_coverage": None}])
    fresh = _rec([{"model": "resnet50", "input": "pascal", "rounds": 4, "ours_median_ms": 200.0,
                   "benchmark_median_ms": 199.0, "ratio": 200 / 199, "agrees": True, "ours_spread": 0.05,
                   "benchmark_spread": 0.07, "paired_ratios": [0.98, 1.02, 1.0, 1.01]}], fresh=4, path="/r/b.json")
    text = checks.markdown([same, fresh, {**fresh, "_history": True}])
    assert text.count("## gpu: same process") == 1 and text.count("## gpu: fresh processes") == 1
    assert "1.053" in text and "NO" in text  # the same-process ratio, outside 3%
    assert "1.005" in text and "0.980 - 1.020" in text and "2 threads" in text


def test_sweeps_page_rows_per_call_workers_and_failures():
    from common.render import sweeps

    def rec(date, counts, history=False, failed=()):
        tasks = [{"label": f, "status": "failed", "worker": "h GPU 1", "attempts": 2, "reason": "killed by SIGKILL"}
                 for f in failed]
        return {"kind": "sweep", "device_tag": "gpu", "env": {"date": date}, "code_version": {"commit": "abcdef123"},
                "request": {"name": "zoo", "where": "local cluster"}, "_path": "x", **({"_history": True} if history else {}),
                "result": {"counts": counts, "wall_s": 100.0, "task_seconds": 180.0, "speedup": 1.8, "tasks": tasks,
                           "workers": [{"worker": "h GPU 0", "gpu_index": 0, "gpu_uuid": "GPU-a", "runs": 3, "done": 3,
                                        "skipped": 0, "failed": 0, "busy_s": 90.0}]}}

    text = sweeps.markdown([rec("2026-12-01T05:00:00", {"done": 3, "failed": 1}, failed=["vgg16 cityscapes"]),
                            rec("2026-12-01T04:00:00", {"done": 1, "not_started": 3}, history=True)])
    table = text.split("## gpu")[1]
    assert table.index("2026-12-01 04:00") < table.index("2026-12-01 05:00")  # one row per call, oldest first
    assert "1.80x" in table and "abcdef1" in table
    assert text.count("### zoo: workers") == 1 and "GPU-a" in text  # workers of the current record only
    assert "vgg16 cityscapes (h GPU 1, 2 attempt(s)): killed by SIGKILL" in text
    assert "No sweep records yet" in sweeps.markdown([])


def test_sweeps_page_counts_and_names_the_tasks_a_signal_stopped():
    from common.render import sweeps

    tasks = [{"label": "resnet18 pascal", "status": "done", "worker": "h GPU 0", "attempts": 1, "reason": None},
             *({"label": f"vgg{n} pascal", "status": "stopped", "worker": None, "attempts": 1,
                "reason": "the sweep was stopped (SIGTERM) while it ran"} for n in (16, 19)),
             {"label": "xception pascal", "status": "not started", "worker": None, "attempts": 0, "reason": "x"}]
    rec = {"kind": "sweep", "device_tag": "gpu", "env": {"date": "2026-12-01T05:00:00"}, "code_version": {},
           "request": {"name": "cat", "where": "local"}, "_path": "x",
           "result": {"stopped": "SIGTERM", "counts": {"done": 1, "stopped": 2, "not_started": 1}, "wall_s": 10.0,
                      "task_seconds": 9.0, "speedup": 0.9, "tasks": tasks, "workers": []}}
    text = sweeps.markdown([rec])
    header, _, row = text.split("## gpu")[1].strip().splitlines()[:3]
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")]))
    assert (cells["tasks"], cells["done"], cells["stopped"], cells["not started"]) == ("4", "1", "2 (SIGTERM)", "1")
    assert "Stopped (SIGTERM) while running: vgg16 pascal, vgg19 pascal." in text


def test_sweeps_page_compares_evidence_folders_per_input(tmp_path):
    """The comparisons under results/evidence: a row per request both folders hold, and per
    input a sentence whose bounds hold for every row it covers; a request whose protocol
    differs is named, never compared."""
    import json

    from common import records
    from common.render import sweeps

    def put(folder, stem, inp, median, kernel, uuid, max_seconds=0.5):
        path = tmp_path / "evidence" / folder / "results" / "records" / "gpu" / "timing" / f"{stem}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        rec = {"schema": records.SCHEMA, "kind": "timing", "device_tag": "gpu", "code_version": {},
               "request": {"model": stem.split("_")[0], "input": {"name": inp}, "max_seconds": max_seconds,
                           "device": "cuda:0" if folder == "h200-sweep" else "cuda"},
               "env": {"host": "h", "gpu_index": 0, "gpu_uuid": uuid},
               "result": {"timing": {"stats": {"median_ms": median, "iqr_ms": median / 100}},
                          "kernels": {"kernel_ms": kernel, "busy": kernel / median, "launch_bound": kernel / median < 0.8}}}
        path.write_text(json.dumps(rec))

    put("h200-sweep", "resnet50_cityscapes", "cityscapes", 10.0, 9.8, "GPU-aaaa")
    put("h200-alone", "resnet50_cityscapes", "cityscapes", 10.1, 9.8, "GPU-bbbb")  # 1% apart, on another GPU
    put("h200-sweep", "resnet50_pascal", "pascal", 2.0, 1.0, "GPU-aaaa")
    put("h200-alone", "resnet50_pascal", "pascal", 3.0, 1.01, "GPU-aaaa")  # the host: +50%, kernels +1%
    put("h200-sweep", "vgg16_pascal", "pascal", 4.0, 3.9, "GPU-aaaa")
    put("h200-alone", "vgg16_pascal", "pascal", 4.0, 3.9, "GPU-aaaa", max_seconds=2.0)
    put("h200-sweep", "only_here_pascal", "pascal", 1.0, 1.0, "GPU-aaaa")  # in one folder: no row
    text = sweeps.outputs(tmp_path, [])[tmp_path / sweeps.PAGE]
    section = text.split("### Inside the sweep (A) and alone (B)")[1]
    assert ("`cityscapes` (1 requests; 1 measured on two different GPUs): medians at most 1.00% apart" in section)
    assert "`pascal` (1 requests; 0 measured on two different GPUs): medians at most 50.00% apart" in section
    assert "kernel time at most 1.00% apart; launch-bound (GPU busy below 0.8) on either side: 1." in section
    assert "1 request(s) differ in mode or protocol and are not compared: vgg16_pascal (max_seconds)." in section
    assert "only_here" not in section and "h:0/aaaa vs h:0/bbbb" in section
    assert "Alone (A) and alone again" not in text  # no such folders: no section
