"""The assistant's answer format: one line per cited work, or the abstention line; and reading it back.

One home for the format, so that what qa teaches, what grounded decoding allows and what evaluation
and `ask` read agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from citetune.ids import extract_dois

# The answer when no verified work supports a claim: fixed, so that it can be taught and parsed.
ABSTAIN = "No verified work supports this claim."
_WORK_LINE = re.compile(r"^\s*-\s*(?P<title>.*?)\s*\((?P<year>[^()]*)\)\.\s*DOI:\s*(?P<doi>\S+)\s*$")
_TITLE_BEFORE_DOI = re.compile(r"^\s*-?\s*(?P<title>.*?)\s*(?:\([^()]*\))?[.,;:]?\s*DOI:", re.I)


def work_line(work: dict) -> str:
    """'- <title> (<year>). DOI: <doi>' for a work {'title', 'year', 'doi'}."""
    return f"- {work['title']} ({work['year']}). DOI: {work['doi']}"


def format_answer(works: list[dict]) -> str:
    """The answer that cites `works`, or the abstention line when there are none."""
    return "\n".join(work_line(w) for w in works) if works else ABSTAIN


@dataclass
class Cited:
    doi: str  # lower-case, as DOIs compare
    title: str  # as the answer printed it ('' when the line is not in the answer format)


@dataclass
class ParsedAnswer:
    cited: list[Cited] = field(default_factory=list)
    abstained: bool = False  # the abstention line and no DOI
    truncated: bool = False  # generation stopped at the token budget: the last line was cut and dropped

    @property
    def dois(self) -> list[str]:
        return [c.doi for c in self.cited]


def _title_of(line: str) -> str:
    m = _WORK_LINE.match(line) or _TITLE_BEFORE_DOI.match(line)
    return m.group("title").strip() if m else ""


def parse_answer(text: str, finished: bool = True) -> ParsedAnswer:
    """The DOIs an answer cites, each with the title printed on its line.

    An answer that did not finish (it ran out of tokens) loses its last line: a DOI cut short is not
    the DOI the model meant, and counting it either way would make the score depend on the budget.
    """
    text = text or ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # A cut right after a line break leaves every line whole.
    truncated = not finished and bool(lines) and not text.endswith("\n")
    if truncated:
        lines = lines[:-1]
    cited, seen = [], set()
    for line in lines:
        for doi in extract_dois(line):
            if doi not in seen:
                seen.add(doi)
                cited.append(Cited(doi, _title_of(line)))
    abstained = not cited and any(" ".join(ln.split()).lower() == ABSTAIN.lower() for ln in lines)
    return ParsedAnswer(cited, abstained, truncated)
