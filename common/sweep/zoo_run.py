"""The zoo-run record of a sweep with kind ``zoo``: its tasks (one model each) run in
parallel with ``--no-run-record``, so the sweep's one client keeps the record that
``results/zoo.md`` lists its models from, rewritten after every finished task (an
interrupted sweep leaves it current)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from common import env as envmod
from common import records
from common.parsers import drivers
from common.sweep import plan
from common.zoo import driver


class ZooRun:
    """``on_result`` hook for ``runner.run``: one zoo-run record per device tag."""

    def __init__(self, tasks: list[plan.Task], out_dir: str | None, name: str) -> None:
        self.tasks = [t for t in tasks if t.tool == "zoo"]
        self.args = {t.label: drivers.zoo().parse_args([*t.zoo_argv(), "--device", "cpu"]) for t in self.tasks}
        self.models = list(dict.fromkeys(m for a in self.args.values() for m in a.models))
        self.presets = list(dict.fromkeys(p for a in self.args.values() for p in a.inputs))
        self.steps = {label: len(a.inputs) * len(a.what) for label, a in self.args.items()}
        self.results = (Path(out_dir) if out_dir else records.ROOT) / "results"
        self.name = name
        self.start = time.monotonic()
        self.before: dict[str, dict] = {}  # per device tag: the record's result before this sweep
        self.steps_done: dict[str, int] = {}
        self.env: dict | None = None

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def __call__(self, outcome: dict) -> None:
        args = self.args.get(outcome["label"])
        tag = outcome.get("tag")
        if args is None or not tag or outcome["status"] == "not started":
            return
        if tag not in self.before:
            self.before[tag] = driver.previous_run(self.results, tag, driver.RUN_NAME)
        self.env = self.env or envmod.collect(torch.device("cpu"))
        self.steps_done[tag] = self.steps_done.get(tag, 0) + self.steps[outcome["label"]]
        gpu = outcome.get("gpu_index") is not None
        driver.write_run_record(self.results, tag, self.env, driver.RUN_NAME, self.before[tag], self.models,
                                self.presets, list(args.what), driver.protocol_text(args, gpu),
                                time.monotonic() - self.start, steps=sum(self.steps.values()),
                                steps_done=self.steps_done[tag], via=f"Dask sweep {self.name}")
