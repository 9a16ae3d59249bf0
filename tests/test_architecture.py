"""The house's rules that import-linter (``.importlinter``, run by scripts/test.sh) cannot state:

- no import circle between any two files of the project (lazy imports inside functions included);
- views and API modules take only writes (and the errors they raise) from ``actions``; reads come
  from ``queries``, and no actions module hands out a read.

docs/architecture.md describes the floors these tests keep.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("annotation", "inference", "evaluation", "mi_platform")
ACTIONS = ("annotation.actions", "inference.actions", "inference.recipe.actions", "inference.coders.actions",
           "evaluation.actions")
QUERIES = ("annotation.queries", "inference.queries", "inference.recipe.queries", "inference.coders.queries",
           "evaluation.queries")


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return found


def test_no_import_circle_between_files():
    cycles = _cycles(_graph())
    assert cycles == [], "import circles (each line: files that import each other):\n" + "\n".join(
        " ⇄ ".join(c) for c in cycles
    )


def test_the_circle_finder_finds_a_circle():
    class Graph:
        modules = {"a", "b", "c", "d"}

        @staticmethod
        def find_modules_directly_imported_by(module: str) -> set[str]:
            return {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}[module]

    assert _cycles(Graph()) == [["a", "b", "c"]]  # type: ignore[arg-type]


# --- views take writes from actions, reads from queries ------------------------------------------------


def _page_modules() -> list[str]:
    """Every views module and API module of the apps (the modules that answer requests)."""
    names = []
    for package in PACKAGES[:3]:
        for info in pkgutil.walk_packages([str(REPO / package)], prefix=f"{package}."):
            parts = info.name.split(".")
            if "views" in parts or parts[-1] == "api":
                names.append(info.name)
    return sorted(names)


def _actions_modules() -> list[str]:
    names = []
    for name in ACTIONS:
        module = importlib.import_module(name)
        names.append(name)
        if hasattr(module, "__path__"):
            names += [f"{name}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]
    return names


def _resolve(module_name: str, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import …`` written in ``module_name``."""
    if level == 0:
        return target or ""
    module = importlib.import_module(module_name)
    package = module_name if hasattr(module, "__path__") else module_name.rpartition(".")[0]
    return importlib.util.resolve_name("." * level + (target or ""), package)


def _taken_from_actions(module_name: str) -> list[tuple[str, str, int]]:
    """(actions module, name, line) for every name the module takes from an actions module:
    ``from x.actions import name`` and ``alias.name`` where ``alias`` is an actions module."""
    source = Path(importlib.import_module(module_name).__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    actions_modules = set(_actions_modules())
    aliases: dict[str, str] = {}
    taken: list[tuple[str, str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(module_name, node.level, node.module)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in actions_modules:
                    aliases[alias.asname or alias.name] = full
                elif base in actions_modules:
                    taken.append((base, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in actions_modules and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            taken.append((aliases[node.value.id], node.attr, node.lineno))
    return taken


def _is_write(value: object) -> bool:
    """Defined in an actions module — an action, or the result type it returns — or an error class
    an action raises (``ActionError`` lives on the ground floor, ``annotation.errors``)."""
    if inspect.isclass(value) and issubclass(value, Exception):
        return True
    return (inspect.isfunction(value) or inspect.isclass(value)) and any(
        value.__module__ == name or value.__module__.startswith(f"{name}.") for name in ACTIONS
    )


def test_the_page_modules_are_found():
    pages = _page_modules()
    assert {"annotation.views.coding", "annotation.api", "annotation.accounts.views", "inference.recipe.views",
            "evaluation.views", "evaluation.api"} <= set(pages)
    assert ("annotation.actions.coding", "save_code", 0) in {
        (m, n, 0) for m, n, _line in _taken_from_actions("annotation.views.coding")
    }


def test_views_take_only_writes_from_actions():
    wrong = []
    for module_name in _page_modules():
        for actions_module, name, line in _taken_from_actions(module_name):
            value = getattr(importlib.import_module(actions_module), name, None)
            if not _is_write(value):
                wrong.append(f"{module_name}:{line} takes {actions_module}.{name}")
    assert wrong == [], "reads belong in queries; views take only writes from actions:\n" + "\n".join(wrong)


def test_actions_hand_out_no_reads():
    """No actions module exports a query helper (``__all__``): actions may use reads, never offer them."""
    wrong = []
    for module_name in _actions_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            origin = getattr(getattr(module, name), "__module__", "") or ""
            if any(origin == q or origin.startswith(f"{q}.") for q in QUERIES):
                wrong.append(f"{module_name}.{name} (defined in {origin})")
    assert wrong == [], "reads exported by actions modules:\n" + "\n".join(wrong)
