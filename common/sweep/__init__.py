"""Sweeps: many requests as Dask tasks, one single run each, one task per device at a time.

    python -m common sweep --models backbone --inputs cityscapes pascal --modes eager fastest
    python -m common sweep --file sweep.yaml --scheduler tcp://host:8786
    python -m common sweep --slurm --queue gpu --account proj --walltime 02:00:00 --gpus-per-job 4 --jobs 2

Modules: ``plan`` (requests -> tasks, the record a task writes), ``task`` (worker
side: the worker's device, one task in its own process), ``cluster`` (local,
existing or Slurm cluster; the one-timing-per-device checks), ``runner`` (submit,
retry, progress, summary), ``cli`` (flags, the summary record). See docs/sweep.md.
"""
