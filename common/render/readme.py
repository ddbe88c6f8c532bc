"""README's generated block (between ``<!-- results:begin -->`` and
``<!-- results:end -->``): one compact headline table per preset (rows: model;
columns: median ms per device, then the seeds' figures; the full rows are in
``results/latency.md``, ``common.render.headline``), each device's protocol, and
links to the results pages and figures. Every number in it comes from the records
or from ``results/reference/seeds.json``."""
from __future__ import annotations

import os
from pathlib import Path

from common import bootstrap, records
from common.errors import UserError
from common.render import figures as figs
from common.render import headline, pages, tables
from common.render.markdown import PRESETS, distinct, preset_title
from common.render.select import Results

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def protocols(res: Results, seeds: tables.Seeds) -> str:
    """One line per device: clock, warm-up and timed iterations of the rows above, dates."""
    lines = []
    for dev in res.devices_with("timing"):
        rows = res.of("timing", dev.tag)
        f = lambda key: distinct([r.facts[key] for r in rows])  # noqa: E731
        lines.append(f"- {dev.name} (`{dev.tag}`): clock {f('clock')}, warm-up {f('warmup')}, timed iterations "
                     f"{f('iters')}; measured {tables.dates(rows)}")
    seed_lines = [f"- {s['short']} (seed): {s['name']}, clock {s['clock']}, warm-up "
                  f"{s['warmup'] if s['warmup'] is not None else 'none'}, {s['iters']} iterations"
                  for s in seeds.devices.values()]
    return "\n".join(lines + seed_lines) + "\n"


def trust_line(res: Results, results_prefix: str) -> str:
    """Per device, generated: the range of per-unit coverage (span, kernel) and GPU busy over every mode."""
    lines = []
    for dev in res.devices:
        ev = [e for (tag, _, _), e in res.evidence.items() if tag == dev.tag]
        pick = lambda f: [mv for e in ev for mv in e[f]]  # noqa: E731
        parts = [f"{what} {tables.value_range(pick(f), fmt)}" for what, f, fmt in
                 (("per-unit coverage (event spans)", "span", ".3f"), ("(kernel time)", "kernel", ".3f"),
                  ("GPU busy", "busy", ".0%")) if pick(f)]
        if parts:
            lines.append(f"- {dev.short}: " + ", ".join(parts))
    anchor = pages.COVERAGE_TITLE.lower().replace(" ", "-").replace(":", "").replace(",", "")
    return ("Over every mode and preset measured (per device and mode in "
            f"[latency.md]({results_prefix}/latency.md#{anchor})):\n\n" + "\n".join(lines) + "\n") if lines else ""


def block(res: Results, seeds: tables.Seeds, results_prefix: str, plan: list[figs.Figure],
          results_dir: Path | None = None) -> str:
    """The generated block; ``results_prefix`` is the results folder relative to README."""
    out = [pages.GENERATED.format(what=pages.DEFAULT), headline.COMPACT_NOTE, tables.protocol_line()]
    out += [f"#### {preset_title(p)}\n\n{headline.compact_table(res, seeds, p)}" for p in PRESETS]
    out.append("Protocol of the rows:\n\n" + protocols(res, seeds))
    out.append(trust_line(res, results_prefix))
    if results_dir is not None:
        out.append(job_lines(results_dir))
    links = ", ".join(f"[{title.lower()}]({results_prefix}/{name}.md)" for name, title in pages.PAGES.items())
    out.append(f"More tables: {links}, [model-zoo burden]({results_prefix}/burden.md), "
               f"[model zoo: latency, throughput, accuracy]({results_prefix}/zoo.md), "
               f"[segmentation-ready variants (output stride)]({results_prefix}/segmentation.md), "
               f"[timer cross-checks]({results_prefix}/timer_check.md), "
               f"[Dask sweeps]({results_prefix}/sweeps.md). "
               f"Figures:\n\n{figs.links(res, plan, results_prefix + '/figures')}")
    return "\n".join(out)


def job_lines(results_dir: Path) -> str:
    """How long ``./profile.sh``'s measuring took, per device and protocol, from the
    job records (set-up and rendering not included); then the first set-up's cost."""
    recs, _ = records.load_records(results_dir)
    jobs = sorted((r for r in recs if r["kind"] == "job"), key=lambda r: r["device_tag"])
    if not jobs:
        return setup_line(recs)
    lines = [f"- {r['env'].get('device_name', r['device_tag'])}, {r['request']['protocol']} protocol: "
             f"{r['result']['wall_s'] / 60:.1f} min for {r['result']['steps']} steps "
             f"({len(r['request']['models'])} models{', seed 004 included' if _with_seed004(r['request']) else ''}"
             f"; measured {r['env']['date'][:10]})" for r in jobs]
    return "Time `./profile.sh` spent measuring (from its job records; the first set-up of .venv comes on top):\n\n" \
        + "\n".join(lines) + "\n\n" + setup_line(recs)


def setup_line(recs: list[dict]) -> str:
    """The first set-up's disk size and install time, from the newest job record that
    carries ``scripts/setup_venv.sh``'s stamp (``common.bootstrap``); says so when none does."""
    def stamp(r: dict) -> dict | None:
        return bootstrap.checked_stamp(r["result"].get("setup")) if r["kind"] == "job" else None

    def newest_with(ok) -> dict | None:  # noqa: ANN001
        found = [r for r in recs if stamp(r) and ok(stamp(r))]
        return max(found, key=lambda r: (r["env"].get("date", ""), r["_path"])) if found else None

    timed = newest_with(lambda s: isinstance(s.get("first_install_s"), (int, float)))
    sized = newest_with(lambda s: True)
    if sized is None:
        return ("First set-up: its disk size and install time are not measured yet (`scripts/setup_venv.sh` stamps "
                "them in `.venv/.setup.json` when it creates .venv; the next `./profile.sh` job record carries them "
                "and this sentence states them).\n")
    size = stamp(sized)["venv_bytes"] / 2**30
    where = lambda r: f"{r['env'].get('host_cpu') or r['device_tag']}, {stamp(r)['date'][:10]}"  # noqa: E731
    text = f"First set-up (`scripts/setup_venv.sh`, from the job records): .venv takes {size:.1f} GiB on disk ({where(sized)})"
    if timed is None:
        return text + "; the time of a first install is not measured yet (that .venv predates the stamp).\n"
    return text + f"; creating it took {stamp(timed)['first_install_s'] / 60:.1f} min ({where(timed)}).\n"


def _with_seed004(request: dict) -> bool:
    """Whether a profile job ran seed 004 (the quick CPU protocol leaves it out)."""
    if "seed004" in request:
        return request["seed004"]
    return not request.get("no_seed004") and (request["protocol"] == "full" or request["device"].startswith("cuda"))


def replace_section(readme: str, section: str, name: str = "README.md") -> str:
    """README with the text between the markers replaced; every other byte kept."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise UserError(f"{name} needs exactly one '{BEGIN}' line followed by one '{END}' line")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{section}{END}{tail}"


def read(path: Path) -> str:
    """Exact text: no newline translation, so untouched README bytes stay identical."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None


def relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def output(res: Results, seeds: tables.Seeds, readme: Path, results_dir: Path,
           plan: list[figs.Figure]) -> dict[Path, str]:
    section = block(res, seeds, relative(results_dir, readme.parent), plan, results_dir)
    return {readme: replace_section(read(readme), section, str(readme))}
