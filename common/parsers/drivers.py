"""The drivers' command lines: stats, reports, seed004, layer-sets, profile (``common.drive``),
the zoo (``common.zoo.driver``), the sweep (``common.sweep.cli``) and one serialised request."""
from __future__ import annotations

from pathlib import Path

from common import catalogue, paths, records
from common import protocol as protocols
from common.argtypes import memory_amount, positive, shard, threads
from common.parsers import Parser, device_flag, device_options, flag, protocol_overrides
from common.spec import LAYER_SETS
from common.zoo.runrecord import SLOTS

SWEEP_KINDS = ("timing", "layers", "memory", "zoo")  # what one sweep task measures (common.sweep.plan)
ZOO_RUN = "zoo"  # the zoo-run record's default name


def drive(description: str, verb_of: dict[str, str]) -> Parser:
    """The drivers' subcommands; each one's prog names the front door's verb (``verb_of``)."""
    families = tuple(dict.fromkeys(i.family for i in catalogue.CATALOGUE))
    p = Parser(prog="python -m common", description=description)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="stats|mem|seed004|layer-sets|profile")
    s = sub.add_parser("stats", help="models: both presets, whole model and per unit")
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", nargs="+", metavar="NAME", help="catalogue model(s)")
    who.add_argument("--family", choices=families, metavar="FAMILY", help="every model of a family")
    s.add_argument("--no-layers", action="store_true", help="whole-model latency only (no per-unit runs)")
    m = sub.add_parser("mem", help="memory reports (or --struct structures) of a family")
    who = m.add_mutually_exclusive_group(required=True)
    who.add_argument("--family", choices=families, metavar="FAMILY", help="every model of a family")
    who.add_argument("--model", nargs="+", metavar="NAME", help="these models (any the registry knows)")
    sub.add_parser("seed004", help="seed 004's training steps and layer sets")
    ls = sub.add_parser("layer-sets", help="seed 004's single-layer benchmarks")
    ls.add_argument("--set", dest="layer_sets", nargs="+", default=list(LAYER_SETS), choices=LAYER_SETS,
                    metavar="SET", help="seed004: seed 004's shapes; large: the set that loads a modern GPU "
                                        "(default: both)")
    pr = sub.add_parser("profile", help="everything ./profile.sh runs")
    device_flag(pr)
    pr.add_argument("--tag", type=paths.tag_arg, metavar="NAME",
                    help="device folder name for every output (default: from the device)")
    pr.add_argument("--full", action="store_true",
                    help="the seeds' full protocol (25 warm-up + 300 iterations, every depth, seed 004 "
                         f"included) instead of the quick one (GPU: {protocols.preset('quick', 'cuda').text}; CPU: "
                         f"{protocols.preset('quick', 'cpu').text}; per unit at depth 1 only at Cityscapes, "
                         "no seed 004)".replace("%", "%%"))
    pr.add_argument("--models", nargs="+", metavar="NAME", help="only these catalogue models (default: all)")
    pr.add_argument("--no-seed004", action="store_true", help="leave out seed 004's training steps and layer sets")
    pr.add_argument("--out-dir", type=Path, metavar="DIR", help="root for every output (default: the repository)")
    pr.add_argument("--size", metavar="HxW", help="one custom input size instead of both presets (a quick try)")
    for s_ in sub.choices.values():
        verb = s_.prog.rsplit(" ", 1)[-1]
        s_.prog = f"{p.prog} {verb_of.get(verb, verb)}"
        s_.add_argument("--dry-run", action="store_true",
                        help="print the plan (one Request a line, JSON) and measure nothing")
    return p


def drive_threads(prog: str) -> Parser:
    """The one flag a driver reads from the flags it hands to every step: --threads."""
    p = Parser(prog=prog, add_help=False)
    p.add_argument("--threads", type=threads)
    return p


def zoo() -> Parser:
    p = Parser(prog="python -m common zoo",
               description="The zoo sweep: many models, each in its own steps, failures recorded and the sweep goes on.")
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="models or catalogue tags (zoo, backbone, ...); default on a GPU: the burden zoo's "
                        f"classification + timm models; on the CPU: {' '.join(catalogue.ZOO_CPU_MODELS)}")
    p.add_argument("--inputs", nargs="+", default=None, metavar="IN",
                   help="input presets or HxW sizes (default: imagenet cityscapes on a GPU, imagenet on the CPU)")
    p.add_argument("--what", nargs="+", choices=SLOTS, metavar="SLOT",
                   help=f"slots per model and input: {' '.join(SLOTS)} (throughput at the first input only; "
                        "default: all on a GPU, all but throughput on the CPU)")
    protocol_overrides(p, tuple(f"override the protocol's {what}" for what in
                                ("warm-up", "iterations", "bound per timed loop", "fewest iterations")))
    p.add_argument("--search-compile", action="store_true",
                   help="include torch.compile(max-autotune) in the fastest search (minutes per model)")
    p.add_argument("--throughput-cap", type=positive(int), metavar="N",
                   help="largest batch the throughput search tries on a GPU (default: none, doubling until a "
                        "step runs out of memory; a model that fits the cap is shown '(cap)')")
    flag(p, "--force", "re-measure zoo-family models whose records exist")
    flag(p, "--force-catalogue", "also re-measure catalogue backbones' existing records (their full-protocol "
                                 "records would be replaced by the zoo's bounded protocol)")
    p.add_argument("--budget-s", type=positive(float), metavar="S",
                   help="start no new model after S seconds (a later call resumes: existing records are skipped)")
    p.add_argument("--shard", type=shard, metavar="I/N", help="every N-th model from the I-th (one GPU each)")
    p.add_argument("--run-name", type=paths.tag_arg, default=ZOO_RUN, metavar="NAME",
                   help="name of the zoo-run record (default: zoo)")
    p.add_argument("--no-run-record", dest="run_record", action="store_false",
                   help="leave the zoo-run record to the caller (a Dask sweep of kind zoo writes it: its tasks "
                        "run in parallel)")
    flag(p, "--list", "print the models and exit")
    flag(p, "--dry-run", "print the plan (one Request a line, JSON; a step that cannot be made: one line on stderr) "
                         "and measure nothing")
    device_options(p, "zoo_profiler/")
    return p


def sweep() -> Parser:
    p = Parser(prog="python -m common sweep", description="Run many requests (models x inputs x modes x kinds) as "
               "Dask tasks: each task is one single run of a verb (time, memory, zoo) in its own process, one task "
               "per device at a time; a re-run skips every request with a valid record. See docs/sweep.md.")
    w = p.add_argument_group("what")
    w.add_argument("--models", nargs="+", metavar="NAME", help="model names (catalogue, torchvision, timm) or "
                   "tags (backbone, catalogue, train-bench, zoo) (default: backbone)")
    w.add_argument("--inputs", nargs="+", metavar="IN", help="presets or HxW sizes (default: cityscapes pascal)")
    w.add_argument("--modes", nargs="+", metavar="MODE", help="eager (fp32), fastest (the mode search) or the timer's "
                   "options, quoted, e.g. '--precision bf16 --channels-last', read into each request's fields "
                   "(default: eager)")
    w.add_argument("--kinds", nargs="+", metavar="KIND", help=f"{' | '.join(SWEEP_KINDS)} (default: timing); zoo: "
                   "one task per model running python -m common zoo's steps at every input (eager/fastest as "
                   "--modes says, and memory) with the zoo's bounded protocol, which --warmup, --iters, "
                   "--max-seconds, --min-iters and --threads override; the sweep writes the zoo-run record")
    w.add_argument("--file", type=Path, metavar="F", help="JSON or YAML file with the same keys (models, inputs, "
                   "modes, kinds, protocol keys) and/or a 'requests' list; flags win")
    protocol_overrides(w, ("timer --warmup (default: the timer's, 25)", "timer --iters (default: the timer's, 300)",
                           "timer --max-seconds", "timer --min-iters"))
    w.add_argument("--warmup-seconds", type=float, metavar="S", help="timer --warmup-seconds (default: the timer's)")
    w.add_argument("--repeats", type=positive(int), metavar="N", help="timer --repeats (default: 3 on a GPU, 1 on the CPU)")
    w.add_argument("--batch", type=positive(int), metavar="N", help="batch size (default: 1)")
    w.add_argument("--threads", type=positive(int), metavar="N", help="CPU threads of each run")
    w.add_argument("--no-search-compile", dest="search_compile", action="store_const", const=False,
                   help="fastest mode without the torch.compile(max-autotune) candidate")
    w.add_argument("--out-dir", type=Path, metavar="DIR", help="root of the outputs (default: the repository; "
                   "on a cluster it must be a path every worker can write)")
    w.add_argument("--tag", type=paths.tag_arg, metavar="NAME", help="device folder name (default: each worker's device)")
    w.add_argument("--name", type=paths.tag_arg, metavar="NAME", help="name of the sweep's summary record (default: from the tasks)")
    w.add_argument("--dry-run", action="store_true", help="print each task's command line and exit: python -m "
                   "common request with the task's serialised request (or python -m common zoo for kind zoo); the "
                   "lines run as printed, so piping them to a shell runs the same requests alone, outside Dask")
    w.add_argument("--plan", action="store_true", help="print each task as JSON (its serialised request, or a zoo "
                   "task's model, inputs, steps and protocol values), one a line, and exit")
    where = p.add_argument_group("where (default: a local cluster, one worker per visible GPU)")
    where.add_argument("--device", choices=("auto", "cpu"), default="auto",
                       help="auto: one worker per visible GPU, CPU workers when there is none; cpu: CPU workers")
    where.add_argument("--workers", type=positive(int), default=1, metavar="N",
                       help="CPU workers (default: 1). Timing runs must not share cores: more than one CPU worker "
                            "on one machine disturbs every timing (give each --threads and cores to spare)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="join an existing Dask cluster (tcp://host:8786); "
                       "its workers need --nthreads 1 and this repository on PYTHONPATH")
    where.add_argument("--slurm", action="store_true", help="start workers with dask_jobqueue.SLURMCluster")
    where.add_argument("--queue", metavar="Q", help="Slurm partition")
    where.add_argument("--account", metavar="A", help="Slurm account")
    where.add_argument("--walltime", default="01:00:00", metavar="T", help="Slurm job time limit (default: 01:00:00)")
    where.add_argument("--gpus-per-job", type=int, default=1, metavar="G", help="GPUs (= workers) per job (default: 1)")
    where.add_argument("--cpus-per-gpu", type=positive(int), default=8, metavar="C", help="cores per GPU (default: 8)")
    where.add_argument("--memory", type=memory_amount, default="64GB", metavar="M", help="memory per job (default: 64GB)")
    where.add_argument("--jobs", type=positive(int), default=1, metavar="J", help="Slurm jobs to start (default: 1)")
    where.add_argument("--print-job-script", action="store_true", help="with --slurm: print the job script, exit")
    where.add_argument("--task-timeout", type=positive(float), metavar="S", help="kill a run after S seconds")
    where.add_argument("--budget-s", type=float, metavar="S", help="start no task after S seconds (the running "
                       "ones finish; the same command later resumes with the rest) (default: no limit)")
    where.add_argument("--no-dashboard", dest="dashboard", action="store_false", help="no Dask dashboard")
    return p


def request() -> Parser:
    p = Parser(prog="python -m common request",
               description="Measure one serialised Request (JSON of Request.to_dict(), as a sweep task or a line "
                           "of 'python -m common sweep --dry-run' holds it) and save its record and .txt.")
    p.add_argument("--json", dest="request", required=True, metavar="JSON", help="the request, as JSON")
    p.add_argument("--out-dir", type=Path, default=records.ROOT, metavar="DIR",
                   help="root for the family folders and results/ outputs (default: the repository)")
    return p
