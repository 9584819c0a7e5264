"""The layers of docs/architecture.md, enforced: what may import what, and no import cycles.

Every ``import`` and ``from ... import`` in ``src/semseg`` counts, including the ones inside
functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "semseg"

REPORT_MAY_IMPORT = {
    "constants", "errors", "precision", "config", "models", "data", "metrics", "inference", "engine", "api", "viz", "bench",
}  # fmt: skip

# The layer of a module is its first name under semseg (a subpackage or a top-level module).
# Each layer may import itself and the layers listed here, nothing else of semseg.
ALLOWED: dict[str, set[str]] = {
    "constants": set(),
    "errors": set(),
    "precision": {"constants", "errors"},
    "viz": {"constants", "errors"},
    "models": {"constants", "errors"},
    "data": {"constants", "errors"},
    "metrics": {"constants", "errors"},
    "losses": {"constants", "errors"},
    "config": {"constants", "errors"},
    "bench": {"constants", "errors", "precision"},
    "inference": {"constants", "errors", "precision", "models", "metrics", "data"},
    "engine": {"constants", "errors", "precision", "config", "models", "data", "losses", "metrics", "inference", "viz"},
    # Shipped trained models (the package's own weights files) and foreign-checkpoint conversion.
    "pretrained": {"constants", "errors", "models", "engine"},
    "convert": {"constants", "errors", "models", "engine"},
    "api": {"constants", "errors", "models", "data", "inference", "engine", "pretrained", "convert"},
    # ONNX / torch.export and the web demo sit beside the commands, above api.
    "export": {"constants", "errors", "precision", "models", "inference", "engine", "pretrained", "api"},
    "serve": REPORT_MAY_IMPORT - {"config", "bench"} | {"pretrained"},
    # `predict` on a video file: frames through the predictor into an overlay video (PyAV).
    "video": {"constants", "errors", "inference", "viz", "engine"},
    "commands": REPORT_MAY_IMPORT | {"report", "summary", "pretrained", "convert", "export", "serve", "video"},
    # Reports may use what commands may, except cli, commands itself and the summary.
    "report": REPORT_MAY_IMPORT,
    "summary": {"constants", "errors", "models"},
    "cli": {"constants", "errors", "commands"},
    "__init__": {"api", "models"},  # lazily, on first attribute access
    "__main__": {"cli"},
}


def _modules() -> dict[str, Path]:
    return {
        ".".join(("semseg", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }


def _imports(module: str, path: Path) -> set[str]:
    """The semseg modules ``module`` imports anywhere in its file."""
    modules = _modules()
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # ``from semseg import commands`` imports the module semseg.commands, not semseg.
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in modules and name != module}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {module: _imports(module, path) for module, path in _modules().items()}


def test_every_layer_is_known() -> None:
    assert {_layer(m) for m in GRAPH} <= set(ALLOWED)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_follow_the_layers(module: str) -> None:
    layer = _layer(module)
    bad = sorted(m for m in GRAPH[module] if _layer(m) != layer and _layer(m) not in ALLOWED[layer])
    assert not bad, f"{module} ({layer}) imports {bad}; {layer} may import {sorted(ALLOWED[layer])}"


def test_the_rules_the_issue_names() -> None:
    """Models never import engine, cli or data; data and metrics never import models; nothing imports cli."""
    for module, imported in GRAPH.items():
        layers = {_layer(m) for m in imported}
        if _layer(module) == "models":
            assert not layers & {"engine", "cli", "data"}, module
        if _layer(module) in ("data", "metrics"):
            assert "models" not in layers, module
        if _layer(module) not in ("__main__",):
            assert "cli" not in layers or _layer(module) == "cli", module


# Registration: a registry imports its builders lazily, on first lookup, and the builders import
# the decorator from the registry. That cycle is the pattern, not an accident.
REGISTRATION = {("semseg.models.registry", "semseg.models.zoo")}


def test_no_import_cycles() -> None:
    edges = {m: {i for i in imported if (m, i) not in REGISTRATION} for m, imported in GRAPH.items()}
    # A package's __init__ re-exports its modules; importing one of them from inside the package
    # is not a cycle of meaning, so edges into a package's own __init__ from its members are kept
    # out, as are edges from an __init__ to its members.
    for module in edges:
        edges[module] = {i for i in edges[module] if not (module.startswith(i + ".") or i.startswith(module + "."))}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_layers_have_no_cycles() -> None:
    """Between layers the graph is a strict order: no two layers import each other."""
    pairs = {(_layer(m), _layer(i)) for m, imported in GRAPH.items() for i in imported if _layer(m) != _layer(i)}
    both_ways = sorted((a, b) for a, b in pairs if (b, a) in pairs and a < b)
    assert not both_ways, both_ways
