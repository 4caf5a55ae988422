"""The layers hold: imports point down, there are no cycles, and module names are unambiguous."""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "prompts", "storage")
# What each layer may import of the project; handlers/ is the top (its cli.py wires everything).
ALLOWED = {
    "handlers": {"handlers", "bot", "prompts", "storage"},
    "bot": {"bot", "prompts", "storage"},
    "storage": {"storage"},
    "prompts": {"prompts"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project's modules that ``name`` imports, anywhere in its body (function-level imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from package import module" depends on the module; "from module import name" on the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known}
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, set(known)) for name, path in known.items()}


def test_each_layer_imports_only_what_lies_below_it():
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in targets
        if target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    ]
    assert wrong == []


def test_bot_and_storage_never_import_slack():
    for name, path in modules().items():
        if name.split(".")[0] in ("bot", "storage", "prompts"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not any(n.startswith(("slack_bolt", "slack_sdk")) for n in names), name


def test_there_is_no_import_cycle():
    edges = graph()
    # A package's __init__ importing its own submodules is how it re-exports; a submodule importing
    # back its package is the cycle that counts, and shows up as an edge in the other direction.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target):], target] if target in trail else [node, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_no_module_shares_its_name_with_the_standard_library_or_another_package():
    names = [name.rpartition(".")[2] for name in modules() if not name.endswith(PACKAGES) or "." in name]
    leaves = [n for n in names if n not in PACKAGES]
    assert [n for n in leaves if n in sys.stdlib_module_names] == []
    assert [n for n, count in Counter(leaves).items() if count > 1] == []
