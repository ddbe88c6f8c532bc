"""Shared helpers for the CPU test suite.

Everything here runs on the CPU with tiny inputs; model-wide checks (parameter
counts, unit coverage, MACs) run on the ``meta`` device, which costs no memory
and no compute. End-to-end tests run the real entry points in a subprocess and
write under pytest's ``tmp_path``, never into the repository.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# torch (and the modules of common that import it) is imported where it is used: pytest-xdist's
# controller process loads this file too, and never runs a test.


def _share_the_cores() -> None:
    """Under pytest-xdist the workers share the machine's cores: each takes its share of
    PyTorch's intra-op threads, and so do the processes it starts. With one thread per
    core in every worker the cores were oversubscribed, and OpenMP's spinning threads
    waited on each other: the in-process runs took twice the CPU time."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = max(1, cores // workers)
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)


_share_the_cores()

# How ./test.sh spreads the suite over its two workers (pytest-xdist, --dist loadgroup
# --no-loadscope-reorder): the tests of a module in GROUPED share an expensive
# module-scoped fixture or cache (a Dask cluster, the rendered fixture records, the
# export cache, a browser, the timer runs) and run on one worker, as one unit; every
# other test is a unit of its own. Units go out in collection order to whichever worker
# is free, so the longest go first (LONGEST_FIRST, by module): a long unit started last
# would leave the other worker idle until it ends.
GROUPED = {"test_sweep.py", "test_tables.py", "test_runtimes.py", "test_page_browser.py", "test_burden.py",
           "test_cli.py"}
LONGEST_FIRST = ["test_sweep.py", "test_sweep_signals.py", "test_tables.py", "test_guard.py", "test_cli.py",
                 "test_zoo.py", "test_newcomer.py", "test_structure_memory.py", "test_burden.py", "test_runtimes.py",
                 "test_repeats.py", "test_entry_train_modes.py", "test_drive.py", "test_readme.py"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.path.name in GROUPED:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order

# Small and fast: every end-to-end run uses these.
FAST = ["--device", "cpu", "--size", "64x64", "--iters", "3", "--warmup", "1", "--warmup-seconds", "0"]

FAMILY_DIR = {f: f"{f}_profiler" for f in ("resnet", "mobilenetv2", "xception", "vgg")}


def script(model: str, tool: str) -> Path:
    """The entry point (timer.py / mem.py) of ``model``'s family."""
    from common import registry

    return ROOT / FAMILY_DIR[registry.get(model).family] / f"{tool}.py"


def child_env() -> dict:
    """Environment of child processes. One intra-op thread per child: the suite
    runs on small shared CPU machines, where the OpenMP threads of concurrent
    processes oversubscribe the cores."""
    return dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")


def run_py(args: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` (this interpreter: the project's venv) in ``cwd``."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=child_env())


def run_tool(model: str, tool: str, extra: list, cwd: Path) -> subprocess.CompletedProcess:
    return run_py([script(model, tool), "--model", model, *extra], cwd)


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def tmp_leftovers(folder: Path) -> list[str]:
    return [str(p) for p in Path(folder).rglob("*.tmp")]


@pytest.fixture(scope="session")
def cpu_tag() -> str:
    """The device folder name a CPU run derives when no --tag is given."""
    import torch

    from common import env as envmod

    return envmod.device_tag(envmod.collect(torch.device("cpu")))


@pytest.fixture
def keep_threads():
    """In-process runs with --threads change torch's global thread count: restore it."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def meta_model(name: str) -> torch.nn.Module:  # noqa: F821 - torch is imported below
    import torch

    from common import registry

    with torch.device("meta"):
        return registry.get(name).builder().eval()
