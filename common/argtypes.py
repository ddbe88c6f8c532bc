"""argparse value types shared by every command line of the project."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def positive(kind: type) -> Callable[[str], int | float]:
    """``type=positive(int)``: a finite number greater than 0, or one clear error."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
        return v

    return parse


def threads(text: str) -> int:
    """``--threads`` of a process that runs them here: positive, at most the cores it may
    use (``env.too_many_threads``), refused while parsing so every command says it in one line."""
    from common import env  # standard library only at import: the parsers load no torch

    n = positive(int)(text)
    why = env.too_many_threads(n)
    if why:
        raise argparse.ArgumentTypeError(why)
    return n


def non_negative(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return v


def shard(text: str) -> tuple[int, int]:
    """``--shard I/N``: every N-th item from the I-th."""
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (e.g. 0/2)") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= I < N")
    return i, n


def scales(text: str) -> tuple[float, ...]:
    """``--scales 0.5,1,2``: positive finite numbers, comma-separated."""
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not vals or any(not math.isfinite(v) or v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: scales must be positive numbers, e.g. 0.5,1,2")
    return vals


def memory_amount(text: str) -> str:
    """``--memory``: an amount Slurm and Dask both read (64GB, 500MB, 1.5TiB)."""
    from dask.utils import parse_bytes  # only when the flag is given: dask is the sweep's

    try:
        if parse_bytes(text) <= 0:
            raise ValueError
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of memory (e.g. 64GB, 500MB)") from None
    return text
