"""Imports go one way: no cycle between modules (the imports inside functions included), each
layer imports only the layers below it, dataset_preprocess never imports recbole_sdmtmp, and
neither package imports the paper's studies (``studies/``, above the plugin)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dataset_preprocess", "recbole_sdmtmp", "studies")

# Lowest first; a module may import its own layer and the layers below it, never one above.
LAYERS = (
    ("dataset_preprocess",),
    ("recbole_sdmtmp", "recbole_sdmtmp.compat", "recbole_sdmtmp.console", "recbole_sdmtmp.distributed",
     "recbole_sdmtmp.evaluation", "recbole_sdmtmp.provenance"),
    ("recbole_sdmtmp.data",),
    ("recbole_sdmtmp.model",),
    ("recbole_sdmtmp.registry",),
    ("recbole_sdmtmp.config", "recbole_sdmtmp.plugin", "recbole_sdmtmp.settings"),
    ("recbole_sdmtmp.runner", "recbole_sdmtmp.checkpoints"),
    ("recbole_sdmtmp.explain", "recbole_sdmtmp.recommend", "recbole_sdmtmp.quick_start", "recbole_sdmtmp.leak_audit",
     "recbole_sdmtmp.experiments"),
    ("recbole_sdmtmp.cli", "recbole_sdmtmp.compare", "recbole_sdmtmp.tune", "recbole_sdmtmp.__main__"),
    ("studies",),
)

IMPORT_ALL = """
import importlib, json, pkgutil, sys
import dataset_preprocess
names = sorted(m.name for m in pkgutil.walk_packages(dataset_preprocess.__path__, "dataset_preprocess."))
for name in names:
    if not name.endswith("__main__"):
        importlib.import_module(name)
print(json.dumps({"modules": names,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in
                                   ("recbole_sdmtmp", "recbole"))}))
"""


def module_names(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every module of the two packages, by dotted name (a package by its ``__init__``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def import_graph(root: Path = REPO_ROOT) -> dict[str, set[str]]:
    """module -> the project's modules it imports, wherever the import statement is (module
    level, inside a function, under TYPE_CHECKING). ``from a import b`` is an edge to module
    ``a.b`` where that is a module, else to ``a``."""
    modules = module_names(root)
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:  # 'a.b.c' of a package 'a.b': the deepest module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int:
    if module == "recbole_sdmtmp":  # the package's __init__: the public facade, the plugin's top layer
        return len(LAYERS) - 2
    matches = [(len(prefix), rank) for rank, prefixes in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer of LAYERS"
    return max(matches)[1]


def test_no_import_cycle_between_modules() -> None:
    graph = import_graph()
    assert {"dataset_preprocess.pipeline", "recbole_sdmtmp.registry", "recbole_sdmtmp.experiments.cells",
            "studies.paper_claim"} <= set(graph)
    assert cycles(graph) == []


def test_cycle_finder_finds_a_function_local_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_import_goes_down_the_layers() -> None:
    # ``import recbole_sdmtmp`` below the facade adds nothing: the package's __init__ runs before
    # any of its modules anyway
    upward = [f"{module} -> {target}" for module, targets in import_graph().items() for target in targets
              if target != "recbole_sdmtmp" and layer_of(target) > layer_of(module)]
    assert upward == []


def test_importing_every_dataset_preprocess_module_loads_no_recbole() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"dataset_preprocess.readers.amazon", "dataset_preprocess.cli", "dataset_preprocess.pipeline",
            "dataset_preprocess.registry", "dataset_preprocess.topics.files",
            "dataset_preprocess.topics.fit"} <= set(found["modules"])
    assert found["loaded"] == []
