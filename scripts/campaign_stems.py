"""Move the runtimes driver's PyTorch records made before they had stems of their own
(``request.campaign``) to those stems, and give the plain stem back to its catalogue run.

    python scripts/campaign_stems.py [--results DIR] [--dry-run]

Before ``Request.campaign``, the driver (``python -m common runtimes``) wrote its PyTorch
baselines under the catalogue's and the zoo's stems (``resnet50_pascal.json``): a driver run
replaced the catalogue's record, or a catalogue run pushed the baseline into ``history/``.
For every such record, current or in history (``env.driver == "runtimes"``, runtime torch, no
campaign), this writes it with ``campaign = "runtimes"`` (nothing else changed) at its own stem
through ``records.write_record`` (oldest first: the newest stays current, earlier runs go to
that stem's history) and removes it from the plain stem; where that leaves a plain stem with
no current record, the newest run its history keeps becomes current again. Records merged in
later (another branch, an import) are moved by running it again; a second run changes nothing.
Then render (``python -m common.render``): the .txt files follow the records.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import records  # noqa: E402
from common.parsers import maintenance  # noqa: E402
from common.render import txt  # noqa: E402
from common.spec import Request  # noqa: E402

DRIVER = "runtimes"  # common.deploy.DRIVER (not imported: the driver imports torch)


def _driver_baseline(rec: object) -> bool:
    if not isinstance(rec, dict) or not isinstance(rec.get("request"), dict) or not isinstance(rec.get("env"), dict):
        return False
    req = rec["request"]
    return rec["env"].get("driver") == DRIVER and req.get("runtime", "torch") == "torch" and not req.get("campaign")


def _with_campaign(rec: dict) -> dict:
    """The record with ``request.campaign`` beside ``request.runtime`` (where a new record has it)."""
    req: dict = {}
    for key, value in rec["request"].items():
        req[key] = value
        if key == "runtime":
            req["campaign"] = DRIVER
    req.setdefault("campaign", DRIVER)
    return {**rec, "request": req}


def _current_of(path: Path) -> Path:
    """The main path of the request of ``path`` (itself, or the one its history folder belongs to)."""
    return path.parent.parent.parent / f"{path.parent.name}.json" if records.is_history(path) else path


def move(results: Path, dry_run: bool = False) -> list[tuple[Path, Path]]:
    """(from, to) of every record moved; with ``dry_run`` nothing is written."""
    found = []
    for path in sorted(Path(results, "records").glob("*/*/**/*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a record: load_records names it
        if _driver_baseline(rec):
            found.append((path, _with_campaign(rec)))
    moved, emptied, texts = [], set(), []
    for path, rec in sorted(found, key=lambda f: (_when(f[1]), str(f[0]))):  # oldest first: the newest ends current
        folder = _current_of(path).parent
        target = folder / f"{Request.from_dict(rec['request']).stem}.json"
        moved.append((path, target))
        if dry_run:
            continue
        records.write_record(target, rec)
        path.unlink()
        emptied.add(_current_of(path))
        if not records.is_history(path):
            root = Path(results).parent
            texts.append((path, txt.path_for({**rec, "_path": str(path)}, root),
                          txt.path_for({**rec, "_path": str(target)}, root)))
    for plain in sorted(emptied):
        _restore(plain)
    for plain, old, new in texts:  # a restored catalogue run keeps its .txt (re-rendered); else it follows
        if old.exists() and not plain.exists():
            os.unlink(old) if new.exists() else os.replace(old, new)
    return moved


def _when(rec: dict) -> float:
    when = records.run_when(rec)
    return when.timestamp() if when is not None else float("-inf")


def _restore(plain: Path) -> None:
    """The newest run kept in ``plain``'s history as its current record, when it has none."""
    folder = records.history_dir(plain)
    kept = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not plain.exists() and kept:
        newest = max(kept, key=lambda p: (_when(json.loads(p.read_text(encoding="utf-8"))), p.name))
        os.replace(newest, plain)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    args = maintenance.campaign_stems(__doc__.splitlines()[0]).parse_args(argv)
    moved = move(args.results, args.dry_run)
    for src, dst in moved:
        print(f"{'would move' if args.dry_run else 'moved'}: {src} -> {dst.name}")
    print(f"{len(moved)} record(s) {'to move' if args.dry_run else 'moved'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
