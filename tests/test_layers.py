"""The layers of common/ import downwards only: the import graph (from the code's own
import statements, function-level ones included) has no cycle, measuring never imports
rendering, and rendering loads no torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMON = ROOT / "common"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(COMMON.rglob("*.py"))}


def imports(path: Path, known: set[str], root: Path = ROOT) -> set[str]:
    """The common.* modules ``path`` imports anywhere in its code (top level or in a
    function): ``from common.x import y`` counts ``common.x.y`` when that is a module."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its modules in order), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_finder_sees_a_function_level_cycle(tmp_path: Path) -> None:
    """The check would catch the cycle that run -> render.txt -> ... -> run was."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    pkg = tmp_path / "common"
    pkg.mkdir()
    (pkg / "a.py").write_text("def f():\n    from common import b\n")
    assert imports(pkg / "a.py", {"common", "common.a", "common.b"}, tmp_path) == {"common", "common.b"}


def test_common_has_no_import_cycle() -> None:
    edges = graph()
    edges = {m: {d for d in deps if d != "common"} for m, deps in edges.items()}  # the empty package itself
    assert len(edges) > 50 and "common.render.txt" in edges["common.render.__main__"]
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_measuring_never_imports_rendering() -> None:
    edges = graph()
    measuring = [m for m in edges if m.startswith(("common.measure", "common.registry", "common.run"))]
    assert "common.run" in measuring and "common.run_kernels" in measuring and "common.measure.timing" in measuring
    offenders = {m: sorted(d for d in edges[m] if d.startswith("common.render")) for m in measuring}
    assert not any(offenders.values()), offenders


def test_rendering_imports_no_measuring_driver_or_sweep_module() -> None:
    edges = graph()
    below = ("common.measure", "common.run", "common.drive", "common.cli", "common.zoo", "common.registry",
             "common.burden.profile", "common.burden.analysis", "common.burden.cli", "common.sweep.plan",
             "common.sweep.runner", "common.sweep.cli", "common.env", "common.guard")
    offenders = {m: sorted(d for d in deps if d.startswith(below))
                 for m, deps in edges.items() if m.startswith("common.render")}
    assert not any(offenders.values()), offenders


def test_importing_the_renderer_loads_no_torch() -> None:
    code = ("import sys, importlib, pkgutil, common.render, common.render.__main__\n"
            "for m in pkgutil.iter_modules(common.render.__path__):\n"
            "    importlib.import_module('common.render.' + m.name)\n"
            "print('torch' in sys.modules, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
