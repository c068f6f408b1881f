"""params.yaml is the one home of default values: the typed params check them and never make one up."""

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


@pytest.mark.parametrize("text", ["", "merge:\n  min_context_chars: 20\n", "qa:\n"])
def test_an_empty_file_or_a_missing_section_says_what_to_add(tmp_path, text):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match="has no 'qa' section: add it"):
        load_params("qa", tmp_path / "params.yaml")


def test_default_params_overrides_keys_and_merges_nested_sections():
    base = default_params("base", model="some/model", tiny={"num_layers": 6})
    assert base.model == "some/model" and base.tiny.num_layers == 6
    assert base.tiny.hidden_size == default_params("base").tiny.hidden_size
    with pytest.raises(ValidationError, match="rows"):
        default_params("match", rows=0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        default_params("match", rowz=3)
