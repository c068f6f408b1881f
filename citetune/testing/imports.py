"""What the project's code imports, read with ast: shared by the tests of dvc.yaml's deps and of what the
library may import. Absolute and relative imports, `from package import module`, imports inside
functions; imports under `if TYPE_CHECKING:` never run and do not count."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGES = ("citetune", "stages")


def module_file(name: str, root: Path) -> Path | None:
    """The file a project module's code is in (a package's __init__.py), or None if it is not a module here."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _runtime_nodes(tree: ast.AST):
    """Every node, except inside `if TYPE_CHECKING:`, whose imports never run."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_names(path: Path, module: str) -> set[str]:
    """Dotted names of what `module` (in `path`) imports: `import X` as X, `from X import name` as X.name."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..y import z
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def _inert(path: Path) -> bool:
    """A package __init__.py that only holds a docstring and constants: running it changes nothing."""
    for stmt in ast.parse(path.read_text()).body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            continue
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
            continue
        return False
    return True


@functools.cache  # the code does not change during a test run
def import_closure(start: str, root: Path) -> set[Path]:
    """The files of every project module that importing `start` runs, as paths relative to root."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        path = module_file(name, root)
        if path is None:  # X.name where name is not a module: X's code defines it
            name = name.rpartition(".")[0]
            path = module_file(name, root)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(imported_names(path, name))
        # Importing a.b runs a/__init__.py first; one that does nothing is no dependency.
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            init = module_file(parent, root)
            if init is not None and init.name == "__init__.py" and not _inert(init):
                todo.append(parent)
    return {p.relative_to(root) for p in seen}
