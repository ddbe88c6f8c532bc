"""The bad-input cases that need a prepared folder (scripts/bad_inputs.py): paths that
try to climb out (tags, symlinked folders, archive members, device tags), writes that
fail (a full or read-only disk, a file where a folder should be), the smaller cases,
and concurrent runs of one request. Also the folder snapshot every case is checked by.

A full or read-only disk is a small tmpfs when this process may mount one (root);
elsewhere the same run is made with the failing call simulated (``run`` below), and
the table says so.
"""
from __future__ import annotations

import errno
import io
import json
import os
import runpy
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "records" / "cpu-amd-epyc" / "timing" / "resnet18_pascal.json"
TAG = "bad-inputs"
SIMULATE = "simulate"  # marker file in a case's folder: no tmpfs here, the failing call is simulated


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every file and link under ``folder`` (an empty folder made on the way is no output):
    mode, size, modification time, link target."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.path.isdir(p) and not os.path.islink(p):
                continue
            st = os.lstat(p)
            out[os.path.relpath(p, folder)] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                               os.readlink(p) if os.path.islink(p) else None)
    return out


def changes(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _record(tag: str = TAG) -> dict:
    rec = json.loads(FIXTURE.read_text())
    rec["device_tag"] = tag
    return rec


def _archive(member: str, rec: dict) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / "repo" / "results" / "reference").mkdir(parents=True)
        (tmp / "repo" / "results" / "reference" / "seeds.json").write_text('{"tracked": true}\n')
        data = json.dumps(rec).encode()
        with tarfile.open(tmp / "run.tgz", "w:gz") as tar:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return setup


def _link(rel: str) -> Callable[[Path], None]:
    """``tmp/out/<rel>`` a symlink to ``tmp/elsewhere``: a folder outside the output folder."""
    def setup(tmp: Path) -> None:
        (tmp / "elsewhere").mkdir()
        (tmp / "out" / rel).parent.mkdir(parents=True)
        (tmp / "out" / rel).symlink_to(tmp / "elsewhere", target_is_directory=True)
    return setup


def _file_at(rel: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / "out" / rel).parent.mkdir(parents=True)
        (tmp / "out" / rel).write_text("a file where a folder should be\n")
    return setup


def _symlinked_member(tmp: Path) -> None:
    src = tmp / "src" / "results" / "records" / TAG / "timing"
    src.mkdir(parents=True)
    (tmp / "secret.json").write_text(json.dumps(_record()))
    (src / "resnet18_pascal.json").symlink_to(tmp / "secret.json")


def _earlier_run(small: list[str]) -> list[str]:
    return [sys.executable, "resnet_profiler/timer.py", "--model", "resnet18", *small, "--out-dir", "{tmp}/disk",
            "--tag", TAG]


def _disk(small: list[str], how: str) -> Callable[[Path], None]:
    """An earlier run on a 4 MiB tmpfs, which is then filled (``full``) or made read-only."""
    def setup(tmp: Path) -> None:
        disk = tmp / "disk"
        disk.mkdir()
        mounted = os.geteuid() == 0 and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode == 0
        argv = [a.replace("{tmp}", str(tmp)) for a in _earlier_run(small)]
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True,
                       env={**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"})
        if not mounted:
            (tmp / SIMULATE).write_text(how)
        elif how == "full":
            with open(disk / "filler", "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                except OSError:
                    pass
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    return setup


def release(tmp: Path) -> None:
    """Unmount a case's tmpfs (the temporary folder can then be removed)."""
    disk = tmp / "disk"
    if disk.is_dir() and os.path.ismount(disk):
        subprocess.run(["umount", str(disk)], capture_output=True)


def simulated(tmp: Path) -> bool:
    return (tmp / SIMULATE).exists()


def run(argv: list[str]) -> None:
    """``python -m scripts.bad_setups SCRIPT ARGS``: run SCRIPT as typed; in a case folder
    marked ``simulate`` (no tmpfs could be mounted), its disk fails as a full or a
    read-only one would."""
    out = Path(argv[argv.index("--out-dir") + 1])
    marker = out.parent / SIMULATE
    if marker.exists():
        import tempfile

        from common import records

        how = marker.read_text()
        real_mkstemp, real_write = tempfile.mkstemp, records.write_atomic

        def mkstemp(*a, dir=None, **k):  # noqa: A002 (tempfile's name)
            if how == "readonly" and dir is not None and str(out) in str(dir):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
            return real_mkstemp(*a, dir=dir, **k)

        def write_atomic(path, data):
            if how == "full" and str(out) in str(path):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return real_write(path, data)

        tempfile.mkstemp, records.write_atomic = mkstemp, write_atomic
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")


def path_cases(py: list[str], small: list[str]) -> list:
    from scripts.bad_inputs import Case

    imp = [sys.executable, "scripts/import_records.py", "{tmp}/run.tgz", "--results", "{tmp}/repo/results"]
    return [
        Case("--tag climbing out (../../escape)", [*py, *small, "--tag", "../../escape"]),
        Case("--tag an absolute path", [*py, *small, "--tag", "{tmp}/abs"]),
        Case("--tag .", [*py, *small, "--tag", "."]),
        Case("--tag ..", [*py, *small, "--tag", ".."]),
        Case("--tag a space", [*py, *small, "--tag", " "]),
        Case("--tag with a slash", [*py, *small, "--tag", "a/b"]),
        Case("mem.py --tag climbing out", [sys.executable, "resnet_profiler/mem.py", "--model", "resnet18",
                                          "--tag", "../x"]),
        Case("layer profiler --tag climbing out", [sys.executable, "layer_profiler/timer.py", "--device", "cpu",
                                                  "--tag", "../x"]),
        Case("zoo --tag climbing out", [sys.executable, "-m", "common", "zoo", "--device", "cpu", "--tag", "../x",
                                        "--out-dir", "{tmp}/out"]),
        Case("zoo --run-name climbing out", [sys.executable, "-m", "common", "zoo", "--device", "cpu", "--run-name",
                                             "../../x", "--out-dir", "{tmp}/out"]),
        Case("sweep --tag climbing out", [sys.executable, "-m", "common", "sweep", "--tag", "../x", "--out-dir",
                                          "{tmp}/out"]),
        Case("sweep --name climbing out", [sys.executable, "-m", "common", "sweep", "--name", "/etc/x", "--out-dir",
                                           "{tmp}/out"]),
        Case("record folder a symlink to elsewhere", [*py, *small], setup=_link(f"results/records/{TAG}")),
        Case(".txt folder a symlink to elsewhere", [*py, *small], setup=_link(f"resnet_profiler/resnet18_stats/{TAG}")),
        Case("import: member results/records/../../x.json", imp, own_out=True,
             setup=_archive("results/records/../../x.json", _record())),
        Case("import: member over a tracked file (records/../reference)", imp, own_out=True,
             setup=_archive("results/records/../reference/seeds.json", _record())),
        Case("import: an absolute member", imp, own_out=True,
             setup=_archive("/results/records/bad-inputs/timing/x.json", _record())),
        Case("import: a record whose device tag climbs out", imp, own_out=True,
             setup=_archive(f"results/records/{TAG}/timing/resnet18_pascal.json", _record("../../../escape"))),
        Case("import: a folder's member a symlink to elsewhere",
             [sys.executable, "scripts/import_records.py", "{tmp}/src", "--results", "{tmp}/repo/results"],
             own_out=True, setup=_symlinked_member),
    ]


def write_cases(py: list[str], small: list[str]) -> list:
    from scripts.bad_inputs import Case

    again = [sys.executable, "-m", "scripts.bad_setups", "resnet_profiler/timer.py", "--model", "resnet18", *small,
             "--out-dir", "{tmp}/disk", "--tag", TAG]
    return [
        Case("full disk while writing (a 4 MiB tmpfs, filled; an earlier run kept)", again, setup=_disk(small, "full")),
        Case("read-only output folder (a tmpfs remounted read-only; an earlier run kept)", again, setup=_disk(small, "readonly")),
        Case("record folder is a file", [*py, *small], setup=_file_at(f"results/records/{TAG}/timing")),
        Case(".txt folder is a file", [*py, *small], setup=_file_at("resnet_profiler/resnet18_stats")),
    ]


def _yaml(text: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / "sweep.yaml").write_text(text)
    return setup


def small_cases(py: list[str], small: list[str]) -> list:
    from scripts.bad_inputs import Case

    zoo = [sys.executable, "-m", "common", "zoo", "--device", "cpu", "--out-dir", "{tmp}/out"]
    sweep = [sys.executable, "-m", "common", "sweep", "--dry-run", "--file", "{tmp}/sweep.yaml"]
    return [
        Case("zoo: an unknown model", [*zoo, "--models", "no_such_model"]),
        Case("zoo: two unknown models among known ones", [*zoo, "--models", "resnet18", "resnet19", "mobilenet_v9"]),
        Case("sweep --slurm --memory lots", [sys.executable, "-m", "common", "sweep", "--slurm", "--memory", "lots"]),
        Case("--threads above the cores", [*py, *small, "--threads", "1000"]),
        Case("zoo --threads above the cores", [*zoo, "--models", "resnet18", "--threads", "1000"]),
        Case("sweep YAML request input: 0x0", sweep, setup=_yaml("requests:\n  - model: resnet18\n    input: 0x0\n")),
        Case("sweep YAML inputs: [0x0]", sweep, setup=_yaml("models: [resnet18]\ninputs: [0x0]\n")),
    ]


def _count(tmp: str, case: str, runs: int, codes: list[int], argv: list[str]) -> dict:
    folder = Path(tmp) / "results" / "records" / TAG / "timing"
    kept = [json.loads(p.read_text())["env"]["run_id"] for p in folder.rglob("*.json")]
    temps = [p for p in Path(tmp).rglob("*") if p.name.endswith((".tmp", ".bak"))]
    return {"case": case, "runs": runs, "codes": codes, "kept": len(kept), "distinct": len(set(kept)),
            "temps": len(temps), "txts": len(list(Path(tmp).rglob("*.txt"))),
            "command": " ".join(["python", *argv[1:-4], "--out-dir", "DIR", "--tag", TAG])}


def _timer(tmp: str) -> list[str]:
    return [sys.executable, "resnet_profiler/timer.py", "--model", "resnet18", "--device", "cpu", "--size", "32x32",
            "--iters", "2", "--warmup", "0", "--out-dir", tmp, "--tag", TAG]


ENV = {"TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}


def concurrent_runs(n: int = 7) -> list[dict]:
    """``n`` runs of one request started at once (real processes); then a run after a
    writer killed between keeping the earlier run in history and writing its own (the
    state it leaves: that run linked in history, a 0-byte temp file). Each: exit codes,
    the runs kept (the record and its history), each run id once, no temporary file left."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        argv = _timer(tmp)
        procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, **ENV}) for _ in range(n)]
        rows.append(_count(tmp, f"{n} runs of one request started at once", n, [p.wait() for p in procs], argv))
    with tempfile.TemporaryDirectory() as tmp:
        argv = _timer(tmp)
        first = subprocess.run(argv, cwd=ROOT, capture_output=True, env={**os.environ, **ENV}).returncode
        main = Path(tmp) / "results" / "records" / TAG / "timing" / "resnet18_32x32.json"
        hist = main.parent / "history" / main.stem
        hist.mkdir(parents=True)
        os.link(main, hist / "killed.json")  # what the killed writer had done
        (main.parent / f".{main.name}.k1ll3d00.tmp").write_bytes(b"")
        second = subprocess.run(argv, cwd=ROOT, capture_output=True, env={**os.environ, **ENV}).returncode
        rows.append(_count(tmp, "a run after a writer killed between the history link and its write", 2,
                           [first, second], argv))
    return rows


if __name__ == "__main__":
    run(sys.argv[1:])
