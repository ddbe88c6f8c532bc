"""Rewrite records in the current on-disk form (``records.dumps``: raw samples to 1 ns,
lists of numbers on one line), in place and atomically; history runs too. A record's
content is otherwise unchanged and no history entry is made.

    python -m common compact [RESULTS_DIR]   (default: results/)
"""
from __future__ import annotations

import json
import sys

from common import records
from common.measure.timing import SAMPLE_DECIMALS
from common.parsers import tools


def rounded_samples(value: object, key: str = "") -> object:
    """Every list of float samples (keys ``samples*``) to 1 ns, as the clocks now keep them."""
    if isinstance(value, dict):
        return {k: rounded_samples(v, k) for k, v in value.items()}
    if isinstance(value, list):
        if key.startswith("samples") and value and all(isinstance(v, float) for v in value):
            return [round(v, SAMPLE_DECIMALS) for v in value]
        return [rounded_samples(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    root = tools.compact(__doc__.splitlines()[0]).parse_args(argv).results
    changed = saved = 0
    for path in sorted((root / "records").rglob("*.json")):
        text = path.read_text()
        try:
            new = records.dumps(rounded_samples(json.loads(text)))
        except ValueError as exc:
            sys.stderr.write(f"python -m common compact: {path}: left as it is ({exc})\n")
            continue
        if new != text:
            records.write_atomic(path, new)
            changed += 1
            saved += len(text) - len(new)
    print(f"{changed} record(s) rewritten, {saved / 2**20:.1f} MiB smaller")
    return 0

