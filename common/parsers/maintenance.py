"""The command lines of the maintainers' scripts under scripts/: import_records.py (bring a
run made elsewhere), bad_inputs.py (the bad-input matrix), guard_table.py (the CPU memory
guard against measured peaks) and campaign_stems.py (driver runs to their own stems). Each takes its script's docstring as ``description``."""
from __future__ import annotations

import argparse
from pathlib import Path

from common import records
from common.parsers import flag


def import_records(prog: str, description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("sources", nargs="+", type=Path, metavar="RUN.tgz|DIR", help="archives or folders, oldest first")
    ap.add_argument("--results", type=Path, default=records.RESULTS, metavar="DIR",
                    help="results folder to import into (default: the repository's results/)")
    flag(ap, "--dry-run", "count what would change; write nothing")
    return ap


def bad_inputs(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="scripts/bad_inputs.py", description=description)
    flag(ap, "--print", "print the table instead of writing docs/bad_inputs.md")
    ap.add_argument("--only", metavar="SUBSTRING", help="only the cases whose name contains SUBSTRING")
    return ap


def guard_table(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/guard_table.py", description=description)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--models", nargs="+")
    m.add_argument("--input", default="cityscapes")
    m.add_argument("--budget-gib", type=float, default=12.0)
    sub.add_parser("render").add_argument("--check", action="store_true")
    return p


def campaign_stems(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="scripts/campaign_stems.py", description=description)
    ap.add_argument("--results", type=Path, default=records.RESULTS, metavar="DIR")
    flag(ap, "--dry-run", "list the moves, write nothing")
    return ap
