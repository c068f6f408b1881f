"""Typed access to params.yaml: one model per stage section, unknown keys rejected with a hint."""

from __future__ import annotations

import difflib
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ParamsError(ValueError):
    """params.yaml is missing, malformed or has a wrong key/value; the message says what to fix."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DownloadParams(Section):
    source: Literal["sample", "arxiv"] = "sample"
    # What to search for: a raw arXiv query and/or structured fields, all combined with AND (the
    # values inside one field with OR), or a fixed list of arXiv ids.
    query: str = ""
    keywords: list[str] = []  # each in the title or the abstract
    categories: list[str] = []  # e.g. cs.CL
    authors: list[str] = []
    submitted_from: date | None = None  # YYYY-MM-DD
    submitted_to: date | None = None
    id_list: list[str] = []
    max_results: int = Field(20, ge=1)
    sort_by: Literal["relevance", "submitted_date", "last_updated_date"] = "relevance"
    sort_order: Literal["descending", "ascending"] = "descending"
    update_versions: bool = False  # download a newer arXiv version of a paper already here
    # Politeness and robustness.
    api_url: str = "https://export.arxiv.org/api/query"
    delay_seconds: float = Field(3.0, ge=0)  # between API calls; never below 3 s for arXiv itself
    pdf_delay_seconds: float = Field(1.0, ge=0)  # between PDF downloads
    contact: str = ""  # e-mail for the User-Agent (or env CITETUNE_CONTACT)
    page_size: int = Field(100, ge=1, le=2000)
    num_retries: int = Field(4, ge=0)  # per API page and per PDF, with exponential backoff
    backoff_seconds: float = Field(3.0, ge=0)  # first pause before a retry (doubling; Retry-After wins)
    timeout_seconds: float = Field(60.0, gt=0)  # per HTTP read
    max_failed_fraction: float = Field(1.0, ge=0, le=1)  # fail the stage when more papers than this failed
    sample_limit: int = Field(0, ge=0)


class CurateParams(Section):
    file: str = "data/curation.yaml"


class ExtractParams(Section):
    engine: Literal["auto", "builtin", "cermine"] = "auto"
    cermine_jar: str = "tools/cermine/cermine-impl-1.13-jar-with-dependencies.jar"
    java_heap: str = "2g"
    timeout_seconds: float = 300
    batch_size: int = Field(50, ge=1)  # PDFs per CERMINE run (one JVM start for many papers)
    workers: int = Field(0, ge=0)  # processes (built-in) or JVMs (CERMINE) at a time; 0: one per core, at most 4


class ParseParams(Section):
    min_sentence_chars: int = 20


class MergeParams(Section):
    min_sentence_chars: int = 20


class MatchParams(Section):
    backend: Literal["local", "crossref"] = "local"
    records: str = "data/sample/crossref.jsonl"  # local: Crossref-format records (file or folder)
    mailto: str = ""  # crossref: the polite pool's contact (or env CROSSREF_MAILTO)
    api_url: str = "https://api.crossref.org"
    rows: int = Field(5, ge=1, le=100)  # candidates per search
    min_relevance: float = Field(0.0, ge=0)  # Crossref's score / the reference's length; 0: every candidate validated
    # Validation, as Crossref's search-based matching does it.
    min_title_similarity: float = Field(85, ge=0, le=100)
    year_tolerance: int = Field(1, ge=0)
    min_author_similarity: float = Field(85, ge=0, le=100)
    prefer_published: bool = False  # for a printed arXiv id, the published version's DOI when one validates
    # Crossref's limits: 0 = its published ones for the pool (polite with a mailto, else public).
    search_rate: float = Field(0, ge=0)  # requests per second
    search_concurrency: int = Field(0, ge=0)  # requests in flight
    lookup_rate: float = Field(0, ge=0)
    lookup_concurrency: int = Field(0, ge=0)
    timeout_seconds: float = Field(30, gt=0)
    max_attempts: int = Field(5, ge=1)
    backoff_seconds: float = Field(2.0, ge=0)  # first pause before a retry, doubling; Retry-After wins


class QaParams(Section):
    seed: int = 13
    validation_fraction: float = 0.1
    test_fraction: float = 0.15
    system_prompt: str = "You are a research assistant."
    require_all_matched: bool = False


class TinyModelParams(Section):
    vocab_size: int = 3000
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    max_length: int = 512
    pretrain_epochs: int = 20
    pretrain_lr: float = 2e-3
    seed: int = 0


class BaseParams(Section):
    model: str = "tiny"
    revision: str = "main"
    tiny: TinyModelParams = TinyModelParams()


class TrainParams(Section):
    quantization: Literal["4bit", "none"] = "4bit"
    epochs: float = 20
    learning_rate: float = 3e-3
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 256
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    seed: int = 42


class EvaluateParams(Section):
    splits: list[Literal["train", "validation", "test"]] = ["test", "train"]
    max_new_tokens: int = 96
    batch_size: int = 16


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
        else:
            lines.append(f"  {where}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def load_params(section: str, path: str | Path = "params.yaml"):
    """Return the typed params of one stage section, or raise ParamsError that says what to fix."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the project root or pass --params FILE")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path} is not valid YAML: {e}") from e
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        hints = [
            f"'{k}'" + (f" (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(k, SECTIONS, n=1)) else "")
            for k in unknown
        ]
        raise ParamsError(f"{path}: unknown section(s) {', '.join(hints)}; valid: {', '.join(SECTIONS)}")
    model = SECTIONS[section]
    try:
        return model.model_validate(data.get(section) or {})
    except ValidationError as e:
        raise ParamsError(_explain(section, model, e, path)) from None
