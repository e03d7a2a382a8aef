"""The import graph of darknet_py/ (module-level and function-level imports, read with `ast`): no circles,
and no import from a lower layer up to a higher one. The layers are docs/architecture.md's; a new top-level
module or package must be given its place in LAYERS."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "darknet_py"

# lowest first; a module may import from its own layer or any layer below it
LAYERS = (
    ("(root)", "errors", "faults", "stopping", "process", "flavor", "device", "atomic_write", "outputs", "json_text", "http_stream"),
    ("config",),
    ("weights", "weights_check"),
    ("layers",),
    ("memory", "network"),
    ("data",),
    ("eval",),
    ("train",),
    ("check", "export", "dataset"),
    ("detector",),
    ("commands",),
    ("cli", "__main__"),
)


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under ``root`` (a package is named by its __init__)."""
    names = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        names[name.removesuffix(".__init__")] = path
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the darknet_py modules it imports anywhere in it (inside functions too). ``from pkg import
    name`` imports ``pkg.name`` when that is a module, else ``pkg``."""
    modules = module_names(root)

    def owner(target: str) -> str:
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        return target if target in modules else ""

    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(owner(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(package, node)
                targets.update(owner(f"{source}.{alias.name}") if f"{source}.{alias.name}" in modules
                               else owner(source) for alias in node.names)
        graph[name] = {t for t in targets if t and t != name}
    return graph


def _absolute(package: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    return ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def layer_of(module: str) -> int:
    for level, names in enumerate(LAYERS):
        if top(module) in names:
            return level
    raise AssertionError(f"{module}: {top(module)!r} has no place in LAYERS (tests/packaging/test_import_layers.py) "
                         f"and docs/architecture.md")


def upward_edges(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def test_the_import_graph_has_no_circles():
    assert cycles(import_graph(PACKAGE)) == []


def test_no_module_imports_from_a_higher_layer():
    assert upward_edges(import_graph(PACKAGE)) == []


def test_the_checks_find_a_circle_and_an_upward_edge():
    graph = {"darknet_py.config.cfg": {"darknet_py.layers"}, "darknet_py.layers": {"darknet_py.config.cfg"}}
    assert cycles(graph) == [["darknet_py.config.cfg", "darknet_py.layers"]]
    assert upward_edges(graph) == ["darknet_py.config.cfg -> darknet_py.layers"]


def test_function_level_imports_count(tmp_path):
    package = tmp_path / "darknet_py"
    (package / "config").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "config" / "__init__.py").write_text("")
    (package / "config" / "cfg.py").write_text("def f():\n    from ..layers import SECTION_KINDS\n")
    (package / "layers.py").write_text("from .config import cfg\n")
    graph = import_graph(package)
    assert graph["darknet_py.config.cfg"] == {"darknet_py.layers"}
    assert graph["darknet_py.layers"] == {"darknet_py.config.cfg"}
