"""curate: the curation list applied to a manifest, and the errors a hand-edited file can cause."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citetune.curation import apply_curation, load_curation
from citetune.errors import StageError
from citetune.io import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def manifest() -> list[dict]:
    def row(i, pid, v, title):
        return {"id": i, "paper_id": pid, "version": v, "title": title, "authors": ["A. Author"], "sha256": "0" * 64}

    return [
        row("2106.09685", "2106.09685", 2, "LoRA"),
        row("2106.10000", "2106.10000", 1, "A paper whose id YAML would read as 2106.1"),
        row("hep-th/9901001", "hep-th_9901001", 1, "Old style"),
        row("2305.14314", "2305.14314", 1, "QLoRA"),
    ]


def curate(tmp_path: Path, text: str | None):
    path = tmp_path / "curation.yaml"
    if text is not None:
        path.write_text(text)
    return apply_curation(manifest(), load_curation(path))


def test_exclude_with_reason_by_any_id_form(tmp_path):
    kept, excluded, unknown = curate(tmp_path, """
exclude:
  - id: 2106.09685v2          # with version
    reason: off-topic
  - id: hep-th_9901001        # by paper_id
    reason: scanned PDF, no text layer
  - {id: 2106.10000, reason: duplicate of 2106.09685}   # unquoted: must not become 2106.1
""")
    assert [r["id"] for r in kept] == ["2305.14314"] and kept[0] == manifest()[3]
    assert excluded == [
        {"id": "2106.09685", "paper_id": "2106.09685", "title": "LoRA", "reason": "off-topic"},
        {"id": "2106.10000", "paper_id": "2106.10000", "title": "A paper whose id YAML would read as 2106.1",
         "reason": "duplicate of 2106.09685"},
        {"id": "hep-th/9901001", "paper_id": "hep-th_9901001", "title": "Old style",
         "reason": "scanned PDF, no text layer"},
    ]
    assert unknown == []


def test_keep_only_and_exclusion_together(tmp_path):
    kept, excluded, _ = curate(tmp_path, """
keep_only: [hep-th/9901001v1, 2305.14314, '2106.09685']
exclude:
  - id: 2305.14314
    reason: retracted
""")
    assert [r["id"] for r in kept] == ["2106.09685", "hep-th/9901001"]
    assert {e["id"]: e["reason"] for e in excluded} == {"2106.10000": "not in keep_only", "2305.14314": "retracted"}


@pytest.mark.parametrize("text", [None, "", "# only comments\n", "exclude: []\nkeep_only: []\n", "exclude:\nkeep_only:\n"])
def test_missing_or_empty_file_keeps_everything(tmp_path, text):
    kept, excluded, unknown = curate(tmp_path, text)
    assert kept == manifest() and excluded == [] and unknown == []


def test_unknown_id_is_a_warning_not_a_crash(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="citetune.curation"):
        kept, excluded, unknown = curate(tmp_path, """
exclude:
  - {id: 2106.09865, reason: typo of 2106.09685}
keep_only: [2106.09685, 2399.99999]
""")
    assert unknown == ["2106.09865", "2399.99999"]
    assert "'2106.09865' matches no paper" in caplog.text and "'2399.99999'" in caplog.text
    assert [r["id"] for r in kept] == ["2106.09685"] and len(excluded) == 3


@pytest.mark.parametrize("text, message", [
    ("exclude: [\n  {id: 1\n", r"curation.yaml:\d+: not valid YAML"),
    ("exclude:\n  - id: 2106.09685\n    reason: ok\n  - id: 2305.14314\n", r"curation.yaml:4: 'exclude' entry 2305.14314 has no reason"),
    ("exclude:\n  - id: 2106.09685\n    reason: ''\n", r"curation.yaml:2: 'exclude' entry 2106.09685 has no reason"),
    ("exclude:\n  - 2106.09685\n", r"curation.yaml:2: each 'exclude' entry needs an id and a reason"),
    ("exclude:\n  - reason: off-topic\n", r"curation.yaml:2: an 'exclude' entry has no id"),
    ("exclude:\n  - {id: 2106.09685, reason: x, note: y}\n", r"curation.yaml:2: unknown key 'note'"),
    ("exclude: 2106.09685\n", r"curation.yaml:1: 'exclude' must be a list"),
    ("keep_only: 2106.09685\n", r"curation.yaml:1: 'keep_only' must be a list"),
    ("keep_only:\n  - [2106.09685]\n", r"curation.yaml:2: keep_only id must be an arXiv id"),
    ("keep-only: [2106.09685]\n", r"curation.yaml:1: unknown key 'keep-only'; did you mean 'keep_only'\?"),
    ("- 2106.09685\n", r"curation.yaml:1: the file must be a mapping"),
])
def test_malformed_file_says_what_to_fix(tmp_path, text, message):
    with pytest.raises(StageError, match=message):
        curate(tmp_path, text)


def run_stage(tmp_path: Path, curation: str | None) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"curate": {"file": str(tmp_path / "curation.yaml")}}))
    if curation is not None:
        (tmp_path / "curation.yaml").write_text(curation)
    cmd = [sys.executable, "-m", "stages.curate", "--params", str(params),
           "--manifest", str(tmp_path / "raw" / "manifest.jsonl"), "--out-dir", str(tmp_path / "curated")]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_stage_script(tmp_path):
    proc = run_stage(tmp_path, None)
    assert proc.returncode == 1 and "run the download stage first" in proc.stderr

    write_jsonl(tmp_path / "raw" / "manifest.jsonl", manifest())
    proc = run_stage(tmp_path, "exclude:\n  - {id: 2305.14314, reason: retracted}\n  - {id: 1234.56789, reason: x}\n")
    assert proc.returncode == 0, proc.stderr
    assert "'1234.56789' matches no paper" in proc.stderr
    assert read_jsonl(tmp_path / "curated" / "manifest.jsonl") == manifest()[:3]
    assert read_jsonl(tmp_path / "curated" / "excluded.jsonl") == [
        {"id": "2305.14314", "paper_id": "2305.14314", "title": "QLoRA", "reason": "retracted"}]

    proc = run_stage(tmp_path, "exclude:\n  - id: 2305.14314\n")
    assert proc.returncode == 1 and "has no reason" in proc.stderr and "Traceback" not in proc.stderr

    proc = run_stage(tmp_path, "keep_only: [9999.99999]\n")
    assert proc.returncode == 1 and "leaves no paper" in proc.stderr


def test_a_paper_id_on_two_rows_is_refused_naming_both(tmp_path):
    rows = manifest()
    twice = [*rows, {**rows[0], "id": "2106.09685v1", "version": 1, "title": "LoRA, an older copy"}]
    write_jsonl(tmp_path / "raw" / "manifest.jsonl", twice)
    proc = run_stage(tmp_path, None)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert "rows 1 (id 2106.09685, version 2) and 5 (id 2106.09685v1, version 1) have the same paper_id " \
           "'2106.09685'" in proc.stderr
    assert not (tmp_path / "curated").exists()

    write_jsonl(tmp_path / "raw" / "manifest.jsonl", [*rows, {"id": "2401.00001", "title": "no paper_id"}])
    proc = run_stage(tmp_path, None)
    assert proc.returncode == 1 and "row 5 has no paper_id" in proc.stderr and "Traceback" not in proc.stderr
