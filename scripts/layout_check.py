"""Check the package layout: imports between layerwise's folders go one way, and no module import cycles.

    python scripts/layout_check.py          # prints the folder graph, cycles and rule breaks; exit 1 on any

Every `import` counts, including those inside functions: a lazy import still ties two modules together.
"""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "layerwise"

# What each folder may import (besides itself). "top" is the entry points beside the folders:
# cli, cli_support, cli_views, api, predict, __main__, __init__. errors.py is importable from everywhere.
ALLOWED = {
    "top": {"views", "run", "sweep", "export", "config", "data", "nn", "optim", "util"},
    "sweep": {"run", "views", "config", "data", "util"},
    "export": {"run", "nn", "data", "util"},
    "views": {"run", "nn", "optim", "data", "config", "util"},
    "run": {"nn", "optim", "data", "config", "util"},
    "config": {"util"},
    "data": {"util"},
    "optim": {"util"},
    "nn": {"util"},
    "util": set(),
}
MAX_LINES = 450  # "one concept per module, <= ~400 lines"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def folder(module):
    """'layerwise.run.fit' -> 'run'; 'layerwise.cli' -> 'top'; 'layerwise.errors' -> 'errors'."""
    parts = module.split(".")
    if len(parts) >= 2 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "errors" if parts[1:] == ["errors"] else "top"


def imports_of(path, name, modules):
    """The layerwise modules `path` imports (resolving relative imports and `from pkg import module`)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import layerwise.nn.linear.Linear` -> the module
                target = target.rpartition(".")[0]
            if target.startswith("layerwise") and target != name:
                found.add(target)
    return found


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                result.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def check():
    """(graph, cycles, rule breaks, long modules) of the package as it is on disk."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: imports_of(path, name, paths) for name, path in paths.items()}
    # A package's __init__ importing its own modules is the package, not an edge between folders.
    breaks = []
    for name, targets in sorted(graph.items()):
        src = folder(name)
        for target in sorted(targets):
            dst = folder(target)
            if dst in (src, "errors") or target == "layerwise":
                continue
            if dst not in ALLOWED.get(src, set()):
                breaks.append(f"{name} imports {target} ({src}/ may not import {dst}/)")
    # `layerwise/__init__` re-exports the API, and every submodule import runs it first: leave it out
    # of the cycle search, as Python's own import order does not make it part of one.
    inner = {n: {t for t in ts if t != "layerwise"} for n, ts in graph.items() if n != "layerwise"}
    long = [(module_name(p), n) for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    return graph, cycles(inner), breaks, long


def main():
    graph, found, breaks, long = check()
    edges = {}
    for name, targets in graph.items():
        for target in targets:
            src, dst = folder(name), folder(target)
            if src != dst and target != "layerwise":
                edges.setdefault(src, set()).add(dst)
    print(f"{len(graph)} modules in {len({folder(n) for n in graph})} folders")
    for src in sorted(edges):
        print(f"  {src:<7} -> {', '.join(sorted(edges[src]))}")
    print(f"{len(found)} import cycles")
    for component in found:
        print("  cycle: " + " <-> ".join(component))
    print(f"{len(breaks)} imports against the one-way rule")
    for line in breaks:
        print("  " + line)
    print(f"{len(long)} modules over {MAX_LINES} lines")
    for name, n in long:
        print(f"  {name}: {n} lines")
    return 1 if found or breaks else 0


if __name__ == "__main__":
    sys.exit(main())
