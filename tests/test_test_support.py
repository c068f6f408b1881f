"""citetune.testing serves tests and benches: the library and the stage scripts never import it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of the modules a file imports ('from . import x' resolved against its package)."""
    package = ".".join(path.relative_to(root).parent.parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_library_never_imports_its_test_support():
    sources = [p for p in [*(ROOT / "citetune").rglob("*.py"), *(ROOT / "stages").rglob("*.py")]
               if "testing" not in p.relative_to(ROOT).parts]
    assert len(sources) > 20
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.startswith("citetune.testing"))
                 for p in sources}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_imports_are_resolved_to_absolute_names(tmp_path):
    module = tmp_path / "citetune" / "engines" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("import os\nfrom citetune import testing\nfrom ..testing import crossref_server\n"
                      "from . import builtin\n")
    assert imported_modules(module, tmp_path) == {"os", "citetune.testing", "citetune.testing.crossref_server",
                                        "citetune.engines.builtin"}
