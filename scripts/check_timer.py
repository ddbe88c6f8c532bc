"""Cross-check our whole-model timer against torch.utils.benchmark.

For each backbone and preset: our loop (CUDA events, the seeds' 25 + 300
protocol) and ``Timer(...).blocked_autorange()`` on the same model instance and
input; prints both medians and their ratio, writes results/checks/<tag>_timer_check.json.
The per-layer coverage ratios are read from the committed 'layers' records.
Not a test: it needs a GPU and reports, it does not assert.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils import benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import env as envmod  # noqa: E402
from common import inputs, registry, records  # noqa: E402
from common.measure import timing  # noqa: E402
from common.measure import execution
from common.spec import RunSpec  # noqa: E402

AGREEMENT = 0.03  # the target: medians within 3%
MIN_RUN_TIME_S = 1.0  # blocked_autorange measures for at least this long


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-seconds", type=float, metavar="S",
                    help="bound our timed loop per model/preset, as timer.py does (default: none)")
    args = ap.parse_args(argv)
    device = envmod.resolve_device("auto")
    env = envmod.collect(device)
    tag = envmod.device_tag(env)
    rows = []
    for name in registry.BACKBONES:
        for preset in ("cityscapes", "pascal"):
            spec = RunSpec(name, inputs.resolve(preset, None), str(device),
                           clock="cuda-event" if device.type == "cuda" else "perf_counter")
            model = registry.build(name, device)
            x = inputs.make(spec.input, device)
            with torch.inference_mode(), execution.backend_flags(spec):
                ours = timing.run_loop(lambda: model(x), timing.make_clock(spec.clock, device),
                                       spec.warmup, spec.iters, max_seconds=args.max_seconds,
                                       desc=f"{name} {preset}").stats
                t = benchmark.Timer("model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads())
                ref = t.blocked_autorange(min_run_time=MIN_RUN_TIME_S)
            layers = records.RESULTS / "records" / tag / "layers" / f"{name}_{preset}.json"
            coverage = json.loads(layers.read_text())["result"]["coverage"] if layers.exists() else None
            ratio = ours.median_ms / (ref.median * 1e3)
            rows.append({"model": name, "preset": preset, "ours_median_ms": ours.median_ms,
                         "benchmark_median_ms": ref.median * 1e3, "ratio": ratio,
                         "agrees": abs(ratio - 1) <= AGREEMENT, "layers_coverage": coverage})
            print(f"{name:<14}{preset:<12}ours {ours.median_ms:9.3f} ms  benchmark {ref.median * 1e3:9.3f} ms  "
                  f"ratio {ratio:6.3f}  coverage {coverage if coverage is None else round(coverage, 3)}", flush=True)
            del model, x
            if device.type == "cuda":
                torch.cuda.empty_cache()
    out = records.RESULTS / "checks" / f"{tag}_timer_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    records.write_atomic(out, json.dumps({"env": env, "agreement": AGREEMENT, "rows": rows}, indent=1) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
