"""The source tree follows the data: each stage imports only the stages before it.

docs/design/layout.md draws the stages; these tests hold the code to that picture.
They read the imports as written (ast), so nothing here runs the modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src" / "coop100"
# The stages, each a sub-package, and the stages each may import besides itself.
STAGES: dict[str, set[str]] = {
    "rules": set(),
    "read": {"rules"},
    "versions": {"rules"},
    "write": {"rules", "versions"},
    "verify": {"rules", "write"},
    "load": {"rules"},
    "site": {"load", "versions", "write"},
}
# Modules at the top that every stage may use; they import none of the stages.
SHARED = {"settings", "problems", "background", "serving", "report"}
# The commands and the build: they run the stages, so they may import any of them.
ORCHESTRATION = {"cli", "pipeline", "__main__", "__init__"}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


MODULES = dict(_modules())


def _imports(path: Path) -> Iterator[tuple[ast.ImportFrom | ast.Import, bool]]:
    """Every import of coop100 in the file, and whether it is at the module's top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            yield node, id(node) in top or _in_type_checking(tree, node)


def _in_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    return any(
        isinstance(block, ast.If)
        and "TYPE_CHECKING" in ast.unparse(block.test)
        and node in list(ast.walk(block))
        for block in tree.body
    )


def _targets(module: str, node: ast.ImportFrom | ast.Import) -> list[tuple[str, list[str]]]:
    """The coop100 modules a node imports, each with the names it takes from it."""
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names if a.name.startswith("coop100")]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if not MODULES[module].name == "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    if not base.startswith("coop100"):
        return []
    found = []
    for alias in node.names:
        if f"{base}.{alias.name}" in MODULES:  # from coop100.load import judge
            found.append((f"{base}.{alias.name}", []))
        else:
            found.append((base, [alias.name]))
    return found


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "coop100"


def _edges() -> list[tuple[str, str, list[str], bool, int]]:
    return [
        (module, target, names, top, node.lineno)
        for module, path in MODULES.items()
        for node, top in _imports(path)
        for target, names in _targets(module, node)
    ]


def test_each_stage_imports_only_the_stages_before_it() -> None:
    wrong = []
    for module, target, _, _, line in _edges():
        stage, other = _stage(module), _stage(target)
        if stage == other or other in SHARED or other == "coop100":
            continue
        if stage in ORCHESTRATION:
            continue
        if stage in SHARED or other in ORCHESTRATION or other not in STAGES.get(stage, set()):
            wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} -> {target}")
    assert wrong == []


def test_no_module_imports_another_modules_private_names() -> None:
    wrong = [
        f"{MODULES[module].relative_to(ROOT)}:{line}: {name} from {target}"
        for module, target, names, _, line in _edges()
        for name in names
        if name.startswith("_") and target != module
    ]
    assert wrong == []


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, target, _, top, _ in _edges():
        if top and target in graph and target != module:
            graph[module].add(target)
    # A package's __init__ is imported with any of its modules: never a cycle of its own.
    seen: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module, [module])
    assert cycles == []


def test_imports_inside_functions_say_why() -> None:
    """Only deliberate lazy imports (for start-up time) sit inside a function, with a
    comment on the line or just above it saying why."""
    silent = []
    for path in MODULES.values():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node, top in _imports(path):
            if top:
                continue
            here = lines[node.lineno - 1]
            # A run of imports shares the comment above its first.
            first = node.lineno - 1
            while first > 0 and lines[first - 1].strip().startswith(("from ", "import ")):
                first -= 1
            above = lines[first - 1].strip() if first > 0 else ""
            if "#" not in here and not above.startswith("#"):
                silent.append(f"{path.relative_to(ROOT)}:{node.lineno}: {here.strip()}")
    assert silent == []


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_is_a_package_that_says_what_it_does(stage: str) -> None:
    init = SRC / stage / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert stage in (ROOT / "docs" / "design" / "layout.md").read_text(encoding="utf-8")
