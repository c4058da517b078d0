"""The architecture holds: apps depend one way, and nothing hides a cycle in a function body.

connectors, mappings and common know nothing of the hub; dlq builds on hub, never the reverse
(only the project's settings and root URLconf, which compose every app, name dlq).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"common", "connectors", "mappings", "hub", "dlq"}
MAY_IMPORT = {
    "common": {"common"},
    "connectors": {"connectors", "common"},
    "mappings": {"mappings", "common"},
    "hub": {"hub", "connectors", "mappings", "common"},
    "dlq": {"dlq", "hub", "connectors", "mappings", "common"},
}
COMPOSITION_ROOT = {"hub/settings.py", "hub/urls.py"}


def source_files():
    for app in sorted(OURS):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def imported_apps(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module]
    else:
        return set()
    return {name.split(".")[0] for name in names} & OURS


def type_checking_blocks(tree: ast.AST) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` blocks (imports for annotations only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                if hasattr(child, "lineno"):
                    lines.add(child.lineno)
    return lines


def test_each_app_imports_only_what_it_may():
    wrong = []
    for path in source_files():
        relative = path.relative_to(ROOT).as_posix()
        app = relative.split("/")[0]
        if relative in COMPOSITION_ROOT:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            for imported in imported_apps(node) - MAY_IMPORT[app]:
                wrong.append(f"{relative}:{node.lineno} imports {imported}")
    assert wrong == []


@pytest.mark.parametrize("app", sorted(OURS))
def test_no_function_imports_our_own_code_to_dodge_a_cycle(app):
    """Only AppConfig.ready() (which must wait for the app registry) imports inside a function."""
    hidden = []
    for path in (p for p in source_files() if p.relative_to(ROOT).parts[0] == app):
        if path.name == "apps.py":
            continue
        tree = ast.parse(path.read_text())
        typing_only = type_checking_blocks(tree)
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if imported_apps(node) and node.lineno not in typing_only:
                    hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} in {func.name}()")
    assert hidden == []


def test_the_sandbox_systems_use_only_the_standard_library_and_themselves():
    for path in sorted((ROOT / "connectors" / "sandbox").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            for imported in imported_apps(node):
                assert imported == "connectors", f"{path}: imports {imported}"
