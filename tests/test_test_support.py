"""citetune.testing serves tests and benches: the library and the stage scripts never import it."""

from pathlib import Path

from citetune.testing.imports import imported_names

ROOT = Path(__file__).resolve().parents[1]


def test_the_library_never_imports_its_test_support():
    sources = [p for p in [*(ROOT / "citetune").rglob("*.py"), *(ROOT / "stages").rglob("*.py")]
               if "testing" not in p.relative_to(ROOT).parts]
    assert len(sources) > 20
    offenders = {}
    for path in sources:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found = sorted(n for n in imported_names(path, module) if n.split(".")[:2] == ["citetune", "testing"])
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}
