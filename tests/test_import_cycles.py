"""No import cycles between the modules of the service's packages (issue 16): a module
never imports, directly or through others, a module that imports it. Imports made only for
type checking do not count (they never run). grimp builds the graph import-linter uses."""

from __future__ import annotations

import grimp

PACKAGES = ("grader", "tasks", "sandbox", "store", "web")
# Cycles still standing: none. Never add one (the last, course-test proxies <-> tensors,
# was broken by handing proxies a tensor loader from the runner).
KNOWN_CYCLES: list[list[str]] = []


def cycles() -> list[list[str]]:
    """The strongly connected groups (of two or more modules) of the import graph."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(found)


def test_no_import_cycles_but_the_known_ones() -> None:
    assert cycles() == sorted(KNOWN_CYCLES)
