"""The package's layers point one way: core < schemas < method < data < engine, detect < app.

Every ``import`` in awing (also the ones inside functions) is read with ``ast``; a module may import
from its own layer or a lower one, never from a higher one, and no two modules import each other in a
cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "awing"

# The first folder under awing/ (or the module's own name) -> its layer. Higher numbers sit on top.
LAYERS = {
    "__init__": 0, "core": 0,
    "schemas": 1, "pretrained": 1,
    "method": 2,
    "data": 3,
    "engine": 4, "detect": 4,
    "app": 5, "__main__": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def awing_imports(path: Path) -> set[str]:
    """The awing modules ``path`` imports (``from awing.x import y`` counts ``awing.x.y`` if it is a module)."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "awing"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "awing":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


# The one allowed exception: the package root re-exports FaceAligner lazily (PEP 562 ``__getattr__``), so
# ``import awing`` (for ``awing.__version__``) loads nothing of the layers above.
FACADE = {("awing", "awing.app.api")}

FILES = sorted(p for p in PACKAGE.rglob("*.py"))
MODULES = {module_name(p): p for p in FILES}


def test_every_folder_has_a_layer():
    assert {m.split(".")[1] if "." in m else "__init__" for m in MODULES} <= set(LAYERS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path):
    me = module_name(path)
    upward = [m for m in awing_imports(path) if m != "awing" and layer_of(m) > layer_of(me) and (me, m) not in FACADE]
    assert not upward, f"{me} (layer {layer_of(me)}) imports {upward} from a higher layer"


def test_no_import_cycles_between_modules():
    graph = {m: {i for i in awing_imports(p) if i in MODULES and i != m and (m, i) not in FACADE}
             for m, p in MODULES.items()}
    # a package's __init__ re-exporting its own submodules is not a cycle of the architecture
    for m in graph:
        graph[m] = {i for i in graph[m] if not (i.startswith(m + ".") or m.startswith(i + "."))}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
