"""Typed access to params.yaml: one model per stage section, unknown keys rejected with a hint.

The models hold types and constraints only; every value, and what it means, is in params.yaml.
"""

from __future__ import annotations

import difflib
import io
import json
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The project's own params file: the one place every default value is written.
PROJECT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


class ParamsError(ValueError):
    """params.yaml is missing, malformed or has a wrong key/value; the message says what to fix."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DownloadParams(Section):
    source: Literal["sample", "arxiv"]
    query: str
    keywords: list[str]
    categories: list[str]
    authors: list[str]
    submitted_from: date | None
    submitted_to: date | None
    id_list: list[str]
    max_results: int = Field(ge=1)
    sort_by: Literal["relevance", "submitted_date", "last_updated_date"]
    sort_order: Literal["descending", "ascending"]
    update_versions: bool
    api_url: str
    delay_seconds: float = Field(ge=0)
    pdf_delay_seconds: float = Field(ge=0)
    contact: str
    page_size: int = Field(ge=1, le=2000)
    num_retries: int = Field(ge=0)
    backoff_seconds: float = Field(ge=0)
    max_retry_after_seconds: float = Field(gt=0)
    timeout_seconds: float = Field(gt=0)
    max_failed_fraction: float = Field(ge=0, le=1)
    sample_limit: int = Field(ge=0)


class CurateParams(Section):
    file: str


class ExtractParams(Section):
    engine: Literal["auto", "builtin", "cermine"]
    cermine_jar: str
    java_heap: str
    timeout_seconds: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    workers: int = Field(ge=0)


class ParseParams(Section):
    min_sentence_chars: int = Field(ge=0)


class MergeParams(Section):
    min_context_chars: int = Field(ge=0)


class MatchParams(Section):
    backend: Literal["local", "crossref"]
    records: str
    mailto: str
    api_url: str
    rows: int = Field(ge=1, le=100)
    min_relevance: float = Field(ge=0)
    min_title_similarity: float = Field(ge=0, le=100)
    year_tolerance: int = Field(ge=0)
    min_author_similarity: float = Field(ge=0, le=100)
    prefer_published: bool
    search_rate: float = Field(ge=0)
    search_concurrency: int = Field(ge=0)
    lookup_rate: float = Field(ge=0)
    lookup_concurrency: int = Field(ge=0)
    timeout_seconds: float = Field(gt=0)
    max_attempts: int = Field(ge=1)
    backoff_seconds: float = Field(ge=0)
    max_retry_after_seconds: float = Field(gt=0)


class WriterParams(Section):
    base_url: str
    model: str
    api_key_env: str
    turns: int = Field(ge=1, le=5)
    temperature: float = Field(ge=0, le=2)
    max_tokens: int = Field(ge=16)
    max_chars: int = Field(ge=20)
    requests_per_second: float = Field(gt=0)
    workers: int = Field(ge=1)
    timeout_seconds: float = Field(gt=0)
    attempts: int = Field(ge=1)
    deadline_seconds: float = Field(gt=0)


class QaParams(Section):
    seed: int
    validation_fraction: float = Field(ge=0, lt=1)
    test_fraction: float = Field(ge=0, lt=1)
    system_prompt: str
    require_all_matched: bool
    holdout_works: float = Field(ge=0, lt=1)
    modes: list[Literal["closed_book", "retrieval"]] = Field(min_length=1)
    candidates: int = Field(ge=1)
    drop_gold_fraction: float = Field(ge=0, le=1)
    writer: Literal["template", "llm"]
    llm: WriterParams
    push_to_hub: str
    hub_private: bool
    answer_format: Literal["text", "json"]

    @model_validator(mode="after")
    def _train_split_not_empty(self):
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(f"validation_fraction + test_fraction must be below 1 (got {self.validation_fraction} + "
                             f"{self.test_fraction}): what is left is the train split")
        return self


class TinyModelParams(Section):
    vocab_size: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    max_length: int = Field(ge=1)
    pretrain_epochs: int = Field(ge=0)
    pretrain_lr: float = Field(gt=0)
    seed: int


class BaseParams(Section):
    model: str
    revision: str
    chat_template: str
    tiny: TinyModelParams


class TrainParams(Section):
    task: Literal["causal", "seq2seq"]
    peft: Literal["lora", "full"]
    loop: Literal["trl", "manual"]
    quantization: Literal["4bit", "none"]
    epochs: float = Field(gt=0)
    learning_rate: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    gradient_accumulation_steps: int = Field(ge=1)
    max_grad_norm: float = Field(ge=0)
    max_length: int = Field(ge=1)
    lora_r: int = Field(ge=1)
    lora_alpha: int = Field(ge=1)
    lora_dropout: float = Field(ge=0, lt=1)
    target_modules: str | list[str]
    seed: int
    save_steps: int = Field(ge=0)
    packing: bool
    launcher: str = Field(min_length=1)
    dataset: str

    @model_validator(mode="after")
    def _full_fine_tuning_fits(self):
        if self.peft == "full" and self.task != "seq2seq":
            raise ValueError("peft: full is for task: seq2seq; a causal model trains LoRA (peft: lora)")
        if self.peft == "full" and self.quantization == "4bit":
            raise ValueError("peft: full cannot train 4-bit weights: set quantization: none, or peft: lora")
        if self.loop == "manual" and (self.packing or self.task == "seq2seq"):
            raise ValueError("loop: manual trains a causal model on unpacked rows: set loop: trl for "
                             "packing or task: seq2seq")
        if self.task == "seq2seq" and self.packing:
            raise ValueError("packing is for causal models: set packing: false with task: seq2seq")
        return self


class JudgeParams(Section):
    enabled: bool
    base_url: str
    model: str
    api_key_env: str
    workers: int = Field(ge=1)
    timeout_seconds: float = Field(gt=0)
    deadline_seconds: float = Field(gt=0)


class SimilarityParams(Section):
    embedding: bool
    embedding_model: str
    cross_encoder: str


class EvaluateParams(Section):
    splits: list[Literal["train", "validation", "test"]] = Field(min_length=1)
    max_new_tokens: int = Field(ge=0)
    batch_size: int = Field(ge=1)
    repetition_penalty: float = Field(gt=0)
    grounded: bool
    judge: JudgeParams
    similarity: SimilarityParams


SECTIONS: dict[str, type[Section]] = {
    "download": DownloadParams,
    "curate": CurateParams,
    "extract": ExtractParams,
    "parse": ParseParams,
    "merge": MergeParams,
    "match": MatchParams,
    "qa": QaParams,
    "base": BaseParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
}


def _project_default(section: str, loc: tuple) -> str:
    """' (the project's params.yaml: VALUE)' for a key the project's own params.yaml sets, else ''."""
    try:
        value = yaml.safe_load(PROJECT_PARAMS.read_text())[section]
        for part in loc:
            value = value[part]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return ""
    return f" (the project's params.yaml: {json.dumps(value, default=str)})"


def _explain(section: str, model: type[Section], err: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid '{section}' section:"]
    for e in err.errors():
        where = ".".join(str(p) for p in (section, *e["loc"]))
        if e["type"] == "extra_forbidden":
            # Suggest the closest valid key: a typo in params.yaml must not pass silently.
            owner: type[BaseModel] = model
            for part in e["loc"][:-1]:
                field = owner.model_fields.get(str(part))
                if field is None or not isinstance(field.annotation, type):
                    break
                owner = field.annotation
            close = difflib.get_close_matches(str(e["loc"][-1]), list(owner.model_fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(owner.model_fields)}"
            lines.append(f"  {where}: unknown key{hint}")
        elif e["type"] == "missing":
            # No value is made up for a missing key: params.yaml is where every value is set.
            lines.append(f"  {where}: missing; add it to {path}{_project_default(section, e['loc'])}")
        elif not e["loc"]:  # a check across keys: its message names them
            lines.append(f"  {where}: {e['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  {where}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping: YAML would keep the last one silently."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` brings in keys that the mapping's own keys may override
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader refuses an unhashable key with where it is
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice (first on line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _read(path: Path) -> dict:
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the project root or pass --params FILE")
    try:
        text = io.StringIO(path.read_text(encoding="utf-8"))
        text.name = str(path)  # YAML's messages then name the file, not "<unicode string>"
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path} is not a text file (byte {e.start} is not UTF-8): a params file is YAML") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path} is not valid YAML: {e}") from None
    if data is None:
        raise ParamsError(f"{path} is empty: it must set the sections {', '.join(SECTIONS)}, as the project's "
                          f"params.yaml does")
    if not isinstance(data, dict):
        raise ParamsError(f"{path} is not a mapping of sections like the project's params.yaml "
                          f"(it holds a {type(data).__name__})")
    unknown = sorted(str(k) for k in data if k not in SECTIONS)  # a key may be a number, a date, null
    if unknown:
        hints = [
            f"'{k}'" + (f" (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(k, SECTIONS, n=1)) else "")
            for k in unknown
        ]
        raise ParamsError(f"{path}: unknown section(s) {', '.join(hints)}; valid: {', '.join(SECTIONS)}")
    return data


def load_params(section: str, path: str | Path = "params.yaml"):
    """Return the typed params of one stage section, or raise ParamsError that says what to fix."""
    path = Path(path)
    data = _read(path)
    if section not in data:
        raise ParamsError(f"{path} has no '{section}' section: add it, with every key of the project's params.yaml")
    if not isinstance(data[section], dict):
        raise ParamsError(f"{path}: the '{section}' section is {json.dumps(data[section], default=str)}, not a mapping: "
                          f"give it every key of the project's params.yaml")
    model = SECTIONS[section]
    try:
        return model.model_validate(data[section])
    except ValidationError as e:
        raise ParamsError(_explain(section, model, e, path)) from None


def _merged(values: dict, overrides: dict) -> dict:
    out = dict(values)
    for key, value in overrides.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def default_params(section: str, **overrides):
    """The section as the project's params.yaml sets it, with `overrides` (nested sections merged key by key).

    For code that runs without a params file of its own, such as tests and benches; a bad override
    raises pydantic's ValidationError.
    """
    return SECTIONS[section].model_validate(_merged(load_params(section, PROJECT_PARAMS).model_dump(), overrides))
