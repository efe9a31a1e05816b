"""The package's layout: every module of ``utils/`` and ``bench/`` imports only modules below it, so no cycle.

The layers, lowest first. A module may import modules of lower layers (and of
its own layer only where listed as allowed); ``utils`` never imports ``bench``.
Imports are read from the source (top level and inside functions alike).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from utils import REPO_ROOT

LAYERS: list[tuple[str, ...]] = [
    ("utils",),                                                        # REPO_ROOT
    ("utils.memory", "utils.processes", "utils.readers", "utils.sparse"),
    ("utils.datasets", "utils.batching", "utils.plots", "utils.runtime"),
    ("utils.streaming", "utils.vectorize", "utils.feature_cache", "utils.results", "utils.shards"),
    ("utils.hashed_tfidf", "utils.tfdata", "utils.graindata", "utils.pydataset", "utils.models", "utils.vocabulary"),
    ("utils.sequence", "utils.callbacks", "utils.standins"),
    ("utils.resumable", "utils.multi_worker"),
    ("bench",),
    ("bench.memory_scaling", "bench.pipelines", "bench.vocabulary_growth", "bench.standins"),
    ("bench.peers",),
    ("bench.scaling", "bench.seed_scale", "bench.backends", "bench.route_profile", "bench.fast_route"),
]
LAYER_OF = {module: rank for rank, modules in enumerate(LAYERS) for module in modules}


def module_name(path: Path) -> str:
    """``utils/streaming.py`` -> ``utils.streaming``; ``utils/__init__.py`` -> ``utils``."""
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Return the modules of ``utils`` and ``bench`` that the file at ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # ``from utils import streaming`` imports the module utils.streaming.
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in LAYER_OF else node.module
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in ("utils", "bench"))
    return found


SOURCES = sorted([*REPO_ROOT.glob("utils/*.py"), *REPO_ROOT.glob("bench/*.py")])


def test_every_module_has_a_layer() -> None:
    assert sorted(module_name(p) for p in SOURCES) == sorted(LAYER_OF)


@pytest.mark.parametrize("path", SOURCES, ids=module_name)
def test_module_imports_only_lower_layers(path: Path) -> None:
    name = module_name(path)
    upward = {imported: LAYER_OF.get(imported) for imported in project_imports(path)
              if LAYER_OF.get(imported, len(LAYERS)) >= LAYER_OF[name]}
    assert not upward, f"{name} (layer {LAYER_OF[name]}) imports modules at its layer or above: {upward}"
