"""Preloaded by every local sweep worker (Dask ``preload``): a terminal's Ctrl-C
reaches the whole process group, workers included. The sweep's own process
answers it (stops handing out tasks, closes the cluster, writes the summary);
a worker that took the signal too would die mid-task with a traceback of its own.
While the sweep closes the cluster, a worker may still be reading from it and log the
closed connection with a traceback (seen once in a serial test run on a loaded machine):
local workers log nothing below CRITICAL, since the sweep records every task's outcome
and reason itself.
"""
from __future__ import annotations

import logging
import signal
import threading


def dask_setup(worker: object) -> None:  # noqa: ARG001 - Dask's preload hook
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
