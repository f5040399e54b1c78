"""Prove events/ and worker/ have no import cycles, and count the imports written inside functions.

    python scripts/import_graph.py            # exits 1 on a cycle (run by `make check`)
    python scripts/import_graph.py --list     # also lists every import inside a function

A cycle is looked for twice: among module-level imports, and with the imports inside functions
counted as well. None in the second means no function-local import is hiding a cycle.
Only imports between our own modules count, as Python runs them: importing events.x.y runs
events/x/__init__.py first. `from package import name` counts as an import of package.name
when that is a module, else of the package itself, as Python resolves it. Imports under
`if TYPE_CHECKING:` are ignored (they never run).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("events", "worker")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, current: str, is_package: bool, modules: dict) -> set[str]:
    found: set[str] = set()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = current.split(".") if is_package else current.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
        ]
    own_packages = _packages_of(current)
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        # Importing events.x.y first runs events/x/__init__.py: an edge to that package too,
        # unless it is one of the importer's own (already running before the importer started).
        for target in (name, *_packages_of(name)):
            if target and target != current and target not in own_packages:
                found.add(target)
    return found


def _packages_of(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts))}


def scan(
    modules: dict[str, Path],
) -> tuple[dict[str, set[str]], dict[str, set[str]], list[tuple[str, int, str]]]:
    """(module-level graph, graph with function-local imports too, our function-local imports)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    full: dict[str, set[str]] = {name: set() for name in modules}
    local_imports: list[tuple[str, int, str]] = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        # (node, inside a function?) pairs still to look into
        todo: list[tuple[ast.AST, bool]] = [(ast.parse(path.read_text(), str(path)), False)]
        while todo:
            node, in_function = todo.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    continue
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    targets = _targets(child, name, is_package, modules)
                    full[name] |= targets
                    if not in_function:
                        graph[name] |= targets
                    elif targets:
                        local_imports.append((name, child.lineno, ast.unparse(child)))
                    continue
                function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                todo.append((child, in_function or function))
    return graph, full, local_imports


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
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

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def main(argv: list[str]) -> int:
    modules = our_modules()
    graph, full, local_imports = scan(modules)
    print(f"{len(modules)} modules, {sum(map(len, graph.values()))} module-level imports between them")
    print(f"{len(local_imports)} imports of our own modules inside functions")
    if "--list" in argv:
        for name, line, text in local_imports:
            print(f"  {name}:{line}: {text}")
    failed = False
    for label, edges in (("module-level imports", graph), ("all imports, inside functions too", full)):
        found = cycles(edges)
        print(f"cycles among {label}: {len(found)}")
        for component in found:
            print("  " + " <-> ".join(component))
        failed = failed or bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
