"""params.yaml is the one home of default values: the typed params check them and never make one up."""

import json
import subprocess
import sys

import pytest
import yaml
from pydantic import ValidationError

from citetune.params import (
    PROJECT_PARAMS,
    SECTIONS,
    ParamsError,
    default_params,
    load_params,
)


def test_the_project_params_file_sets_every_key_of_every_section():
    for section in SECTIONS:
        assert load_params(section, PROJECT_PARAMS) == default_params(section)


def test_a_missing_key_is_named_with_the_value_to_add(tmp_path):
    values = default_params("train").model_dump(mode="json")
    del values["quantization"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"train": values}))
    with pytest.raises(ParamsError, match=r"train\.quantization: missing; add it to .*params\.yaml "
                                          r"\(the project's params\.yaml: \"none\"\)"):
        load_params("train", path)


def test_a_missing_nested_key_is_named_with_its_path(tmp_path):
    values = default_params("base").model_dump(mode="json")
    del values["tiny"]["num_layers"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"base": values}))
    with pytest.raises(ParamsError, match=r"base\.tiny\.num_layers: missing; .*params\.yaml: 2\)"):
        load_params("base", tmp_path / "params.yaml")


@pytest.mark.parametrize("text, expected", [
    ("merge:\n  min_context_chars: 20\n", "has no 'qa' section: add it"),
    ("qa:\n", "the 'qa' section is null, not a mapping: give it every key"),
    ("", "is empty: it must set the sections"),
])
def test_an_empty_file_or_a_missing_section_says_what_to_add(tmp_path, text, expected):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=expected):
        load_params("qa", tmp_path / "params.yaml")


def test_default_params_overrides_keys_and_merges_nested_sections():
    base = default_params("base", model="some/model", tiny={"num_layers": 6})
    assert base.model == "some/model" and base.tiny.num_layers == 6
    assert base.tiny.hidden_size == default_params("base").tiny.hidden_size
    with pytest.raises(ValidationError, match="rows"):
        default_params("match", rows=0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        default_params("match", rowz=3)


def _write_with(tmp_path, section: str, key: str, value):
    """The project's params.yaml with section.key (dotted for nested keys) set to value."""
    data = yaml.safe_load(PROJECT_PARAMS.read_text())
    owner = data[section]
    *parents, last = key.split(".")
    for part in parents:
        owner = owner[part]
    owner[last] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("section, key, value, expected", [
    ("train", "batch_size", 0, "greater than or equal to 1"),
    ("train", "gradient_accumulation_steps", 0, "greater than or equal to 1"),
    ("train", "max_length", 0, "greater than or equal to 1"),
    ("train", "lora_r", 0, "greater than or equal to 1"),
    ("train", "epochs", -3, "greater than 0"),
    ("train", "epochs", 0, "greater than 0"),
    ("train", "learning_rate", 0, "greater than 0"),
    ("train", "lora_dropout", 1.0, "less than 1"),
    ("evaluate", "batch_size", 0, "greater than or equal to 1"),
    ("evaluate", "max_new_tokens", -1, "greater than or equal to 0"),
    ("evaluate", "splits", [], "at least 1 item"),
    ("qa", "test_fraction", -0.5, "greater than or equal to 0"),
    ("qa", "validation_fraction", -0.9, "greater than or equal to 0"),
    ("qa", "test_fraction", 1.0, "less than 1"),
    ("qa", "validation_fraction", 0.85, r"validation_fraction \+ test_fraction must be below 1 \(got 0.85 \+ 0.15\)"),
    ("extract", "timeout_seconds", -1, "greater than 0"),
    ("extract", "timeout_seconds", 0, "greater than 0"),
    ("base", "tiny.hidden_size", 0, "greater than or equal to 1"),
    ("base", "tiny.num_heads", 0, "greater than or equal to 1"),
    ("base", "tiny.pretrain_lr", -1, "greater than 0"),
    ("parse", "min_sentence_chars", -1, "greater than or equal to 0"),
])
def test_a_value_out_of_bounds_is_refused_naming_the_key(tmp_path, section, key, value, expected):
    path = _write_with(tmp_path, section, key, value)
    # A check across keys is reported on the section, one on a single value on its key.
    with pytest.raises(ParamsError, match=rf"({section}\.{key}|{section}):.*{expected}"):
        load_params(section, path)


@pytest.mark.parametrize("section, key, value", [
    ("evaluate", "max_new_tokens", 0),  # 0: the budget is the longest gold answer
    ("base", "tiny.pretrain_epochs", 0),  # 0: a base with random weights
    ("qa", "test_fraction", 0.0),
    ("train", "max_grad_norm", 0),  # 0: not clipped
])
def test_a_bound_value_that_means_something_is_accepted(tmp_path, section, key, value):
    load_params(section, _write_with(tmp_path, section, key, value))


@pytest.mark.parametrize("content, expected", [
    (b"42\n", r"not a mapping of sections .* \(it holds a int\)"),
    (b"- train\n", r"not a mapping of sections .* \(it holds a list\)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file"),
    (b"train: null\n", "the 'train' section is null, not a mapping"),
    (b"train: 3\n", "the 'train' section is 3, not a mapping"),
    (b"train:\n  epochs: 1\n  seed: 2\n  epochs: 5\n", r"(?s)key 'epochs' is given twice \(first on line 2\).*line 4"),
    (b"", "is empty: it must set the sections download, curate"),
    (b"? [a, b]\n: 1\n", r"(?s)is not valid YAML: .*found unhashable key"),
    (b"1: x\ntrian: 3\n", r"unknown section\(s\) '1', 'trian' \(did you mean 'train'\?\)"),
])
def test_a_file_that_is_not_a_params_mapping_is_refused(tmp_path, content, expected):
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    with pytest.raises(ParamsError, match=expected):
        load_params("train", path)


def test_merge_keys_are_yaml_and_a_key_given_twice_beside_them_is_still_refused(tmp_path):
    values = default_params("train").model_dump(mode="json")
    path = tmp_path / "params.yaml"
    text = f"train:\n  <<: &defaults {json.dumps(values)}\n  epochs: 7\n"  # the defaults, one key overridden
    path.write_text(text)
    assert load_params("train", path) == default_params("train", epochs=7)
    assert load_params("train", path).model_dump(mode="json") == yaml.safe_load(text)["train"]
    path.write_text(text + "  epochs: 8\n")
    with pytest.raises(ParamsError, match=r"key 'epochs' is given twice \(first on line 3\)"):
        load_params("train", path)


def test_a_duplicated_section_is_refused_with_its_line(tmp_path):
    text = PROJECT_PARAMS.read_text() + "\ntrain:\n  epochs: 3\n"
    (tmp_path / "params.yaml").write_text(text)
    first = 1 + text.splitlines().index("train:")
    with pytest.raises(ParamsError, match=rf"key 'train' is given twice \(first on line {first}\)"):
        load_params("merge", tmp_path / "params.yaml")


def test_a_stage_given_an_empty_params_file_fails_naming_the_sections(tmp_path):
    """No stage falls back on values of its own: an empty --params file ends the stage, exit code 1."""
    (tmp_path / "empty.yaml").write_text("")
    run = subprocess.run([sys.executable, "-m", "stages.merge", "--params", str(tmp_path / "empty.yaml"),
                          "--csv-dir", str(tmp_path), "--out", str(tmp_path / "c.csv"), "--dropped",
                          str(tmp_path / "d.csv"), "--metrics", str(tmp_path / "m.json")],
                         cwd=PROJECT_PARAMS.parent, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "empty.yaml is empty: it must set the sections download, curate, extract, parse, merge" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "c.csv").exists()
