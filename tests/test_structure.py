"""The library's layering: no import circles between search, runs and networks (all imports,
also the ones inside functions, count: a lazy import still ties the modules together)."""

import ast
from pathlib import Path

import uboost

ROOT = Path(uboost.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps |= {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_no_import_circle_through_the_run_library():
    graph = _graph()
    for name in ("uboost.search", "uboost.runs", "uboost.networks", "uboost.retrain", "uboost.io", "uboost.tables",
                 "uboost.catalog", "uboost.data", "uboost.plots"):
        assert name not in _reachable(graph, name), f"{name} imports itself through a circle"


def test_runs_is_the_bottom_layer():
    graph = _graph()
    below = _reachable(graph, "uboost.runs")
    for upper in ("uboost.search", "uboost.networks", "uboost.retrain", "uboost.cli"):
        assert upper not in below, f"uboost.runs reaches {upper}"
    assert not any(m.startswith("uboost.cli") for m in _reachable(graph, "uboost.search") | below)
