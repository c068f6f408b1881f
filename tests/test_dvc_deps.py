"""dvc.yaml's code deps: each stage depends on every project module it imports, directly or not, and on no other.

The imports are read from the code (ast), from stages/<name>.py on: absolute and relative imports,
`from package import module`, and imports inside functions. A module missing from a stage's deps
would let an edit to it leave the stage's outputs stale; one listed but not imported reruns the
stage for nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from citetune.testing.imports import PACKAGES, import_closure

ROOT = Path(__file__).resolve().parents[1]
def _covers(dep: Path, module: Path) -> bool:
    return dep == module or dep in module.parents


def dep_problems(stage: str, deps: list[str], root: Path = ROOT) -> list[str]:
    """What is wrong with a stage's code deps: modules it imports and does not list, code it lists and does not import."""
    reached = import_closure(f"stages.{stage}", root)
    code = [Path(d) for d in deps if d.split("/")[0] in PACKAGES]
    problems = [f"stage {stage}: imports {m} but its deps do not cover it"
                for m in sorted(reached) if not any(_covers(d, m) for d in code)]
    for dep in code:
        files = [dep] if dep.suffix == ".py" else sorted(p.relative_to(root) for p in (root / dep).rglob("*.py"))
        problems += [f"stage {stage}: lists {dep} but does not import {f}" for f in files if f not in reached]
    return problems


def stage_deps(dvc_yaml: dict) -> dict[str, list[str]]:
    return {name: [str(d) for d in stage.get("deps", [])] for name, stage in dvc_yaml["stages"].items()}


DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


@pytest.mark.parametrize("stage", sorted(DVC["stages"]))
def test_each_stage_depends_on_exactly_the_modules_it_imports(stage):
    assert dep_problems(stage, stage_deps(DVC)[stage]) == []


def test_each_stage_runs_its_own_script():
    for name, stage in DVC["stages"].items():
        # train's launcher is a param: python, or accelerate launch for several processes
        launcher = "${train.launcher}" if name == "train" else "python"
        assert stage["cmd"].split()[:3] == [launcher, "-m", f"stages.{name}"], name


@pytest.mark.parametrize("stage", sorted(DVC["stages"]))
def test_any_module_removed_from_a_stages_deps_is_named(stage):
    """dvc.yaml, mutated: each code dep of the stage left out in turn."""
    deps = stage_deps(DVC)[stage]
    for dep in [d for d in deps if d.split("/")[0] in PACKAGES and Path(d).suffix in ("", ".py")]:  # code, not data
        problems = dep_problems(stage, [d for d in deps if d != dep])
        assert problems and all(p.startswith(f"stage {stage}: imports {dep}") for p in problems), (dep, problems)
        if dep.endswith(".py"):
            assert problems == [f"stage {stage}: imports {dep} but its deps do not cover it"]


def test_a_module_the_stage_does_not_import_is_named():
    deps = stage_deps(DVC)["parse"] + ["citetune/training.py"]
    assert dep_problems("parse", deps) == [
        "stage parse: lists citetune/training.py but does not import citetune/training.py"]


def test_a_folder_covers_its_modules_only_when_the_stage_imports_them_all():
    deps = [d for d in stage_deps(DVC)["parse"] if not d.startswith("citetune/")] + ["citetune"]
    problems = dep_problems("parse", deps)
    assert problems and all(p.startswith("stage parse: lists citetune but does not import citetune/") for p in problems)
    assert "stage parse: lists citetune but does not import citetune/training.py" in problems


def test_the_walk_follows_relative_lazy_and_package_imports(tmp_path):
    """On a small tree: each way of importing a module is followed, and only what runs counts."""
    files = {
        "stages/__init__.py": "",
        "stages/demo.py": "from citetune.pkg import a\n",
        "citetune/__init__.py": '"""The library."""\n__version__ = "1"\n',
        "citetune/pkg/__init__.py": "from .b import thing\n",
        "citetune/pkg/a.py": "def run():\n    from . import c\n    import citetune.d as d\n",
        "citetune/pkg/b.py": "from ..e import name\nthing = 1\n",
        "citetune/pkg/c.py": "from citetune import f\n",
        "citetune/d.py": "",
        "citetune/e.py": "name = 1\n",
        "citetune/f.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from citetune import g\n",
        "citetune/g.py": "",
        "citetune/unused.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    reached = {str(p) for p in import_closure("stages.demo", tmp_path)}
    assert reached == {"stages/demo.py", "citetune/pkg/__init__.py", "citetune/pkg/a.py", "citetune/pkg/b.py",
                       "citetune/pkg/c.py", "citetune/d.py", "citetune/e.py", "citetune/f.py"}


def test_the_extract_stage_depends_on_the_reference_model_it_reads():
    """The shipped model is data the code reads, not an import: a retrained model must rerun extract."""
    from citetune.refparse.crf import MODEL

    assert MODEL.relative_to(ROOT).as_posix() in stage_deps(DVC)["extract"]
