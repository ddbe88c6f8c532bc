"""Preloaded by every local sweep worker (Dask ``preload``): a terminal's Ctrl-C
reaches the whole process group, workers included. The sweep's own process
answers it (stops handing out tasks, closes the cluster, writes the summary);
a worker that took the signal too would die mid-task with a traceback of its own.
"""
from __future__ import annotations

import signal
import threading


def dask_setup(worker: object) -> None:  # noqa: ARG001 - Dask's preload hook
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
