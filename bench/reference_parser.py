"""The learned reference parser against the rules, on the same strings: first author's surname, year and
title of each reference, read by the rules alone (citetune/engines/references.py, rule_spans), by the CRF
alone (citetune/refparse) and by the engine, which takes each field from the one that wins it (field_spans),
on

- strings rendered through CSL styles the CRF never saw, from records it never saw, and
- the printed entries of each gold folder given (--gold, repeatable; by default bench/gold, the papers
  typeset with LaTeX, and bench/gold_real, publishers' and package authors' PDFs), scored folder by
  folder. A folder whose entries the model was trained on (its <model>.json, "gold_folders") is marked
  "(in training)": its figures say how well the model learnt them, not how it reads new ones. Surnames are
  compared accent-folded, as citetune/testing/gold_scoring.py compares them; titles where the gold prints one.

--model is the CRF of both the "crf" and the "engine" rows. It ends with the speed of the CRF alone and of
the engine: reference strings read per second, on one core.

    .venv/bin/python -m bench.reference_parser [--model citetune/refparse/references.crfsuite] [--styles 100] \
        [--gold bench/gold --gold DIR ...]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from rapidfuzz import fuzz

from citetune.engines.references import field_spans, rule_spans
from citetune.io import read_jsonl
from citetune.refparse.crf import MODEL, ReferenceTagger, first_run, token_features
from citetune.refparse.render import (
    held_out,
    held_out_record,
    independent_styles,
    labelled,
)
from citetune.refparse.tokens import tokenize
from citetune.testing.gold_scoring import TITLE_MIN, fold, norm
from citetune.text import split_label

ROOT = Path(__file__).resolve().parents[1]


def by_spans(spans_of, raw: str) -> tuple[str, str, str]:
    """(first surname, year, title) as a span parser reads them ('' where it found none)."""
    _, text = split_label(raw)
    surname = year = title = ""
    for span in spans_of(text):
        if not surname and span.tag == "string-name":
            surname = next((text[p.start:p.end] for p in span.parts if p.tag == "surname"), "")
        if not year and span.tag == "year":
            year = text[span.start:span.end]
        if not title and span.tag == "article-title":
            title = text[span.start:span.end]
    return surname, year, title


def by_crf(tagger: ReferenceTagger, raw: str) -> tuple[str, str, str]:
    _, text = split_label(raw)
    fields = tagger.fields(text)
    return fields.get("family", ""), fields.get("year", ""), fields.get("title", "")


def rendered_cases(styles: int, seed: int) -> list[tuple[str, str, str, str | None]]:
    """(string, first surname, year, title) rendered through held-out styles from held-out records."""
    rng = random.Random(seed)
    records = [r for r in read_jsonl(ROOT / "data/sample/crossref.jsonl") if held_out_record(r)]
    cases = []
    for style in rng.sample([s for s in independent_styles() if held_out(s)], styles):
        for record in records:
            if (example := labelled(record, style)) is None:
                continue
            text, labels = example
            gold = list(zip((text[s:e] for s, e in tokenize(text)), labels))
            cases.append((text, first_run(gold, "family"), first_run(gold, "year"), None))
    return cases


def gold_cases(folder: Path) -> list[tuple[str, str, str, str | None]]:
    cases = []
    for path in sorted(folder.glob("*.json")):
        for ref in json.loads(path.read_text(encoding="utf-8")).get("references", []):
            cases.append((ref["raw"], ref.get("first_author") or "", str(ref.get("year") or ""), ref.get("title")))
    return cases


def accuracy(cases, read) -> dict:
    reads = [read(raw) for raw, *_ in cases]
    surname = sum(fold(got[0]) == fold(want) and bool(fold(want)) for got, (_, want, _, _) in zip(reads, cases))
    years = [(got[1], y) for got, (_, _, y, _) in zip(reads, cases) if y]
    titles = [(got[2], t) for got, (_, _, _, t) in zip(reads, cases) if t]
    out = {"first_surname": round(surname / max(len(cases), 1), 4),
           "year": round(sum(g.rstrip("abcdefgh") == y for g, y in years) / max(len(years), 1), 4)}
    if titles:
        out["title"] = round(sum(fuzz.ratio(norm(g), norm(t)) >= TITLE_MIN for g, t in titles) / len(titles), 4)
    return out


def speed(read, strings: list[str], rounds: int = 3) -> float:
    """Reference strings `read` reads per second of this process's CPU time (one core): the median of
    `rounds` passes over `strings`, each starting with the per-token feature cache empty, as each PDF's
    process of the extract stage does."""
    rates = []
    for _ in range(rounds):
        token_features.cache_clear()
        started = time.process_time()
        for s in strings:
            read(s)
        rates.append(len(strings) / (time.process_time() - started))
    return statistics.median(rates)


def trained_on(model: Path) -> set[Path]:
    """The gold folders whose entries `model` was trained on, as its <model>.json records them."""
    report = model.with_suffix(".json")
    if not report.exists():
        return set()
    folders = json.loads(report.read_text(encoding="utf-8")).get("gold_folders", [])
    return {(ROOT / folder).resolve() for folder in folders}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--styles", type=int, default=100, help="held-out styles to render the records in")
    ap.add_argument("--gold", action="append", help="a gold folder (*.json as bench/gold); repeatable")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    tagger = ReferenceTagger(args.model)
    training = trained_on(Path(args.model))
    sets = [("held-out styles, new records", rendered_cases(args.styles, args.seed))]
    for folder in [Path(g) for g in args.gold] if args.gold else [ROOT / "bench/gold", ROOT / "bench/gold_real"]:
        folder = folder.resolve()
        shown = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
        mark = " (in training)" if folder in training else ""
        sets.append((f"gold {shown}{mark}", gold_cases(folder)))

    def engine(text: str) -> list:
        return field_spans(text, tagger)

    readers = {"rules": lambda raw: by_spans(rule_spans, raw), "crf": lambda raw: by_crf(tagger, raw),
               "engine": lambda raw: by_spans(engine, raw)}
    for name, cases in sets:
        print(f"{name}: {len(cases)} references")
        for reader, read in readers.items():
            print(f"  {reader:7}{accuracy(cases, read)}")
    strings = [split_label(raw)[1] for _, cases in sets for raw, *_ in cases[:2000]]
    print(f"crf speed: {speed(tagger.fields, strings):,.0f} reference strings/s (one core)")
    print(f"engine speed (rules and crf): {speed(engine, strings):,.0f} reference strings/s (one core)")


if __name__ == "__main__":
    main()
