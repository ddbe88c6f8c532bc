"""python -m common list [--tag TAG]: the catalogue, one line per model."""
from __future__ import annotations

from common import registry
from common.parsers import tools


def main(argv: list[str] | None = None, prog: str = "python -m common list") -> int:
    """``argv``: ``list`` and its flags (the front door's verb ``list`` puts it first)."""
    p = tools.listing(prog, __doc__.splitlines()[0])
    args = p.parse_args(argv)
    chosen = registry.names(args.tag)
    if args.names:
        print(" ".join(chosen))
        return 0
    print(f"{'name':<16}{'family':<13}{'display':<14}{'depths':<8}{'params':>13}  tags")
    for n in chosen:
        e = registry.get(n)
        params = f"{e.expected_params:,}" if e.expected_params else "-"
        tags = ", ".join(sorted(e.tags)) + (f" (batch {e.train_batch})" if e.train_batch else "")
        print(f"{n:<16}{e.family:<13}{e.display:<14}{','.join(map(str, e.depths)):<8}{params:>13}  {tags}")
    return 0

