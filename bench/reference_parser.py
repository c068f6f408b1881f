"""The learned reference parser against the rules, on the same strings: first author's surname and year
of each reference, read by the built-in engine's rules (citetune/engines/references.py) and by the CRF
(citetune/refparse), on

- strings rendered through CSL styles the CRF never saw, from records it never saw, and
- the gold set's references (bench/gold: 21 papers typeset with LaTeX, their printed entries).

    .venv/bin/python -m bench.reference_parser [--model models/refparse/references.crfsuite] [--styles 100]

The model is trained first (tools/train_reference_parser.py, its defaults) when --model does not exist.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from citetune.engines.references import field_spans
from citetune.io import read_jsonl
from citetune.refparse.crf import ReferenceTagger, first_run
from citetune.refparse.render import (
    held_out,
    held_out_record,
    independent_styles,
    labelled,
)
from citetune.refparse.tokens import tokenize
from citetune.text import split_label
from citetune.words import comparable_text

ROOT = Path(__file__).resolve().parents[1]


def by_rules(raw: str) -> tuple[str, str]:
    """(first surname, year) as the rules read them ('' where they found none)."""
    _, text = split_label(raw)
    surname = year = ""
    for span in field_spans(text):
        if not surname and span.tag == "string-name":
            surname = next((text[p.start:p.end] for p in span.parts if p.tag == "surname"), "")
        if not year and span.tag == "year":
            year = text[span.start:span.end]
    return surname, year


def by_crf(tagger: ReferenceTagger, raw: str) -> tuple[str, str]:
    _, text = split_label(raw)
    tagged = tagger.tag(text)
    return first_run(tagged, "family"), first_run(tagged, "year")


def _same(a: str, b: str) -> bool:
    return comparable_text(a) == comparable_text(b) and bool(comparable_text(b))


def rendered_cases(styles: int, seed: int) -> list[tuple[str, str, str]]:
    """(string, first surname, year) rendered through held-out styles from held-out records."""
    rng = random.Random(seed)
    records = [r for r in read_jsonl(ROOT / "data/sample/crossref.jsonl") if held_out_record(r)]
    cases = []
    for style in rng.sample([s for s in independent_styles() if held_out(s)], styles):
        for record in records:
            if (example := labelled(record, style)) is None:
                continue
            text, labels = example
            gold = list(zip((text[s:e] for s, e in tokenize(text)), labels))
            cases.append((text, first_run(gold, "family"), first_run(gold, "year")))
    return cases


def gold_cases() -> list[tuple[str, str, str]]:
    cases = []
    for path in sorted((ROOT / "bench/gold").glob("p*.json")):
        for ref in json.loads(path.read_text(encoding="utf-8"))["references"]:
            cases.append((ref["raw"], ref.get("first_author") or "", str(ref.get("year") or "")))
    return cases


def accuracy(cases, read) -> dict:
    surname = sum(_same(read(raw)[0], want) for raw, want, _ in cases)
    with_year = [(raw, y) for raw, _, y in cases if y]
    year = sum(read(raw)[1].rstrip("abcdefgh") == y for raw, y in with_year)
    return {"first_surname": round(surname / max(len(cases), 1), 4), "year": round(year / max(len(with_year), 1), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models/refparse/references.crfsuite"))
    ap.add_argument("--styles", type=int, default=100, help="held-out styles to render the records in")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not Path(args.model).exists():
        subprocess.run([sys.executable, str(ROOT / "tools/train_reference_parser.py"), "--out", args.model],
                       check=True, stdout=subprocess.DEVNULL)
    tagger = ReferenceTagger(args.model)
    for name, cases in (("held-out styles, new records", rendered_cases(args.styles, args.seed)),
                        ("gold set (LaTeX)", gold_cases())):
        rules, crf = accuracy(cases, by_rules), accuracy(cases, lambda raw: by_crf(tagger, raw))
        print(f"{name}: {len(cases)} references; rules {rules}; crf {crf}")


if __name__ == "__main__":
    main()
