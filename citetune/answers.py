"""The assistant's answer formats, and reading them back.

- text (qa.answer_format: text): one line per cited work, '- <title> (<year>). DOI: <doi>', or the
  abstention line;
- json: an object that follows schemas/answer.schema.json, laid out one work per line so that each
  work is a whole line, as in text (grounded decoding allows whole lines only):
      {"works": [
      {"title": "...", "year": 2021, "doi": "10.…"},
      {"title": "...", "year": 2019, "doi": "10.…"}
      ]}
  or, abstaining, {"works": [], "abstention": "No verified work supports this claim."}.

One home for the formats, so that what qa teaches, what grounded decoding allows and what evaluation
and `ask` read agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from citetune.ids import extract_dois

FORMATS = ("text", "json")
# The answer when no verified work supports a claim: fixed, so that it can be taught and parsed.
ABSTAIN = "No verified work supports this claim."
# The published schema of JSON answers (not packaged, like params.yaml: the project's root).
ANSWER_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "answer.schema.json"
# A JSON answer's fixed text around its work lines: (opening line, after each work but the last, closing line).
JSON_FRAME = ('{"works": [', ",", "]}")
JSON_ABSTAIN = json.dumps({"works": [], "abstention": ABSTAIN})
# Beside an adapter's weights: the format it was taught (train writes it, evaluate and ask read it).
ADAPTER_FORMAT = "citetune_answer_format.json"
_WORK_LINE = re.compile(r"^\s*-\s*(?P<title>.*?)\s*\((?P<year>[^()]*)\)\.\s*DOI:\s*(?P<doi>\S+)\s*$")
_TITLE_BEFORE_DOI = re.compile(r"^\s*-?\s*(?P<title>.*?)\s*(?:\([^()]*\))?[.,;:]?\s*DOI:", re.I)


def _year(value) -> int | None:
    text = str(value if value is not None else "").strip()
    return int(text) if text.isdigit() else None


def work_line(work: dict, answer_format: str = "text") -> str:
    """A work {'title', 'year', 'doi'} as its answer line: '- <title> (<year>). DOI: <doi>' in text,
    one JSON object in json (without the separator that follows all but the last)."""
    if answer_format == "json":
        return json.dumps({"title": work["title"], "year": _year(work["year"]), "doi": work["doi"]},
                          ensure_ascii=False)
    return f"- {work['title']} ({work['year']}). DOI: {work['doi']}"


def abstention(answer_format: str = "text") -> str:
    """The whole answer that abstains."""
    return JSON_ABSTAIN if answer_format == "json" else ABSTAIN


def frame(answer_format: str = "text") -> tuple[str, str, str] | None:
    """The fixed text around the work lines (JSON_FRAME), or None when the lines stand alone (text)."""
    return JSON_FRAME if answer_format == "json" else None


def format_answer(works: list[dict], answer_format: str = "text") -> str:
    """The answer that cites `works`, or the abstention when there are none."""
    if not works:
        return abstention(answer_format)
    lines = [work_line(w, answer_format) for w in works]
    if answer_format == "json":
        opening, separator, closing = JSON_FRAME
        lines = [opening, *(line + separator for line in lines[:-1]), lines[-1], closing]
    return "\n".join(lines)


def answer_format_of(gold_answers: Iterable[str]) -> str:
    """The format of the answers qa wrote ('text' when there are none): a JSON answer is an object; a
    text one starts with '- ' or is the abstention line. ValueError when they mix formats."""
    found = {"json" if a.lstrip().startswith("{") else "text" for a in gold_answers}
    if len(found) > 1:
        raise ValueError("the answers mix the text and json formats: rerun the qa stage")
    return found.pop() if found else "text"


def adapter_format(adapter_dir: str | Path) -> str:
    """The answer format an adapter was taught (qa.answer_format); 'text' for one saved without it."""
    path = Path(adapter_dir) / ADAPTER_FORMAT
    return json.loads(path.read_text(encoding="utf-8"))["answer_format"] if path.exists() else "text"


@dataclass
class Cited:
    doi: str  # lower-case, as DOIs compare
    title: str  # as the answer printed it ('' when the line is not in the answer format)


@dataclass
class ParsedAnswer:
    cited: list[Cited] = field(default_factory=list)
    abstained: bool = False  # the abstention and no DOI
    truncated: bool = False  # generation stopped at the token budget: the last line was cut and dropped
    malformed: bool = False  # json: not JSON, or not the schema's shape (a DOI that is not one included)

    @property
    def dois(self) -> list[str]:
        return [c.doi for c in self.cited]


def _title_of(line: str) -> str:
    m = _WORK_LINE.match(line) or _TITLE_BEFORE_DOI.match(line)
    return m.group("title").strip() if m else ""


def _whole_lines(text: str, finished: bool) -> tuple[list[str], bool]:
    """(the non-blank lines, whether the last was cut by the budget and dropped)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # A cut right after a line break leaves every line whole.
    truncated = not finished and bool(lines) and not text.endswith("\n")
    return (lines[:-1] if truncated else lines), truncated


def _add(cited: list[Cited], doi: str, title: str) -> None:
    if all(c.doi != doi for c in cited):
        cited.append(Cited(doi, title))


def parse_answer(text: str, finished: bool = True, answer_format: str = "text") -> ParsedAnswer:
    """The DOIs an answer cites, each with the title printed beside it.

    An answer that did not finish (it ran out of tokens) loses its last line: a DOI cut short is not
    the DOI the model meant, and counting it either way would make the score depend on the budget.
    """
    text = text or ""
    if answer_format == "json":
        return _parse_json(text, finished)
    lines, truncated = _whole_lines(text, finished)
    cited: list[Cited] = []
    for line in lines:
        for doi in extract_dois(line):
            _add(cited, doi, _title_of(line))
    abstained = not cited and any(" ".join(ln.split()).lower() == ABSTAIN.lower() for ln in lines)
    return ParsedAnswer(cited, abstained, truncated)


@cache
def _validators():
    """(the answer's validator, a work's validator), from the published schema."""
    from jsonschema import Draft202012Validator

    schema = json.loads(ANSWER_SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema), Draft202012Validator(schema["$defs"]["work"])


def _json_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _parse_json(text: str, finished: bool) -> ParsedAnswer:
    answer, work = _validators()
    value = _json_value(text)
    if value is not None and answer.is_valid(value):
        cited: list[Cited] = []
        for w in value["works"]:
            _add(cited, w["doi"].lower(), w["title"])
        return ParsedAnswer(cited, abstained="abstention" in value)
    if value is None and not finished:
        # Cut by the budget: the whole work lines before the cut count, as in text; the rest is unread.
        lines, _ = _whole_lines(text, finished)
        cited = []
        for line in lines:
            w = _json_value(line.strip().removesuffix(JSON_FRAME[1]))
            if work.is_valid(w):
                _add(cited, w["doi"].lower(), w["title"])
        return ParsedAnswer(cited, truncated=True)
    # Malformed: not scored as an answer, but its DOIs are still checked, as fabrication is in any format.
    return ParsedAnswer(parse_answer(text, finished).cited, truncated=not finished, malformed=True)
