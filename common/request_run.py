"""python -m common request: measure one serialised Request and save its record and .txt.

The Request travels whole, as JSON (``Request.to_dict()``): a sweep's task is one,
and each line of ``python -m common sweep --dry-run`` runs one through this verb,
so a request measured inside the sweep and alone is the same value, never a
command line rebuilt from flags. Only where its outputs go (``--out-dir``) is given
beside it: that is the caller's folder, not part of what is measured.
"""
from __future__ import annotations

import json
from pathlib import Path

from common import cli, inputs, registry
from common.errors import UserError
from common.parsers import drivers
from common.spec import Request


def parse(text: str) -> Request:
    """A Request from its JSON; one line naming what is wrong otherwise."""
    try:
        data = json.loads(text)
        return Request.from_dict(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UserError(f"not a serialised request (Request.to_dict() as JSON): {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}"[:300]) from None


def validate(req: Request) -> None:
    """What ``cli.request_from_args`` checks, of a request built elsewhere (a sweep's plan
    builds its requests unchecked: a request that cannot be made fails where it runs)."""
    inputs.check_fits(req.input, registry.get(req.model).min_side, req.model)
    if req.kind not in ("memory", "structure"):
        cli.check(req)
    registry.check_input(req)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from common import env as envmod
    from common import run

    parser = drivers.request()
    parser.prog = prog or parser.prog
    args = parser.parse_args(argv)
    state: dict = {}

    def work() -> list[Path]:
        state["req"] = req = parse(args.request)
        with envmod.cpu_threads(req.threads):
            device = envmod.resolve_device(req.device)
            validate(req)
            return cli.measure_and_save(req, run.Session(device, args.out_dir, req.tag))

    def what() -> str:
        req = state.get("req")
        return f"{req.model} input {req.input.tag} batch {req.input.batch}" if req else "this request"

    return cli.guarded(parser.prog, work, what,
                       lambda: cli.smaller_batch(state["req"]) if "req" in state else (None, []))
