"""Scoring of extracted references and citing sentences against the LaTeX gold set (bench/gold).

Shared by bench/extract_quality.py (which prints the scores) and tests/test_extract_gold.py (which
bounds them); what each count means is described in bench/extract_quality.py.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict

from rapidfuzz import fuzz

from citetune import words
from citetune.jats import parse_jats
from citetune.parse import read_references

ENTRY_MIN, TITLE_MIN, SENTENCE_MIN = 80, 90, 85
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def norm(s: str | None) -> str:
    s = unicodedata.normalize("NFKC", s or "").translate(_QUOTES).lower()
    return " ".join(s.split())


def fold(s: str | None) -> str:
    return words.fold(norm(s)).strip(" .,;:")


def match_entries(gold: list[str], found: list[str]) -> dict[int, int]:
    """Greedy best-pair-first one-to-one matching: found index -> gold index (similarity >= ENTRY_MIN)."""
    g = [norm(x) for x in gold]
    f = [norm(x) for x in found]
    pairs = []
    for i, fi in enumerate(f):
        for j, gj in enumerate(g):
            score = fuzz.ratio(fi, gj)
            if score >= ENTRY_MIN:
                pairs.append((score, i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    out, used = {}, set()
    for _, i, j in pairs:
        if i not in out and j not in used:
            out[i] = j
            used.add(j)
    return out


def score_paper(gold: dict, xml: bytes | None, rows: list[dict]) -> tuple[dict, list[str]]:
    """Counts for one paper, plus the lines --verbose prints."""
    c: dict[str, int] = defaultdict(int)
    notes: list[str] = []
    grefs = gold["references"]
    c["papers"] = 1
    c["gold_entries"] = len(grefs)
    c["gold_sentences"] = len(gold["sentences"])
    refs = read_references(parse_jats(xml)) if xml else {}
    found = list(refs.values())
    c["found_entries"] = len(found)
    c["exact_count"] = int(len(found) == len(grefs))
    pairing = match_entries([r["raw"] for r in grefs], [r.raw for r in found])
    c["matched"] = len(pairing)
    to_gold = {found[i].ref_id: j for i, j in pairing.items()}
    for i, j in pairing.items():
        got, want = found[i], grefs[j]
        first = (got.authors or "").split(";")[0].strip()
        author_ok = fold(first) == fold(want["first_author"]) and bool(first)
        year_ok = re.sub(r"[a-z]$", "", (got.year or "").strip()) == (want["year"] or "")
        c["author_right"] += author_ok
        c["year_right"] += year_ok
        c["author_year_right"] += author_ok and year_ok
        if want["title"] is not None:
            c["title_printed"] += 1
            c["title_right"] += fuzz.ratio(norm(got.title), norm(want["title"])) >= TITLE_MIN
        if want["doi"] is not None:
            c["doi_printed"] += 1
            c["doi_right"] += (got.doi or "").strip().lower() == want["doi"]
        if not (author_ok and year_ok):
            notes.append(f"  field: [{j}] author {first!r} vs {want['first_author']!r}, year {got.year!r} vs "
                         f"{want['year']!r}")
    for j in sorted(set(range(len(grefs))) - set(pairing.values())):
        notes.append(f"  missed entry [{j}]: {grefs[j]['raw'][:160]}")
    for i in sorted(set(range(len(found))) - set(pairing)):
        notes.append(f"  extra entry {found[i].ref_id}: {found[i].raw[:160]}")
    # citing sentences: sentence_id -> (context, set of gold indices; unmatched refs count as themselves)
    by_sentence: dict[str, list] = {}
    for row in rows:
        sid = row.get("sentence_id", "")
        entry = by_sentence.setdefault(sid, [norm(row.get("context") or row.get("sentence")), set()])
        rid = row.get("ref_id") or ""
        entry[1].add(to_gold.get(rid, f"?{rid or row.get('marker', '')}"))
    extracted = list(by_sentence.values())
    for s in gold["sentences"]:
        text, want = norm(s["text"]), set(s["refs"])
        best, cands = 0.0, []
        for ctx, linked in extracted:
            score = fuzz.token_set_ratio(text, ctx)
            if score > best:
                best, cands = score, [linked]
            elif score == best and score > 0:
                cands.append(linked)
        ok = best >= SENTENCE_MIN and any(linked == want for linked in cands)
        c["sentences_right"] += ok
        if not ok:
            got = sorted(map(str, cands[0])) if cands and best >= SENTENCE_MIN else "no matching sentence"
            notes.append(f"  sentence: {s['text'][:110]!r}\n      gold refs {sorted(want)}, found {got}"
                         f" (text score {best:.0f})")
    return c, notes


def ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def f1(c: dict) -> tuple[float, float, float]:
    p, r = ratio(c["matched"], c["found_entries"]), ratio(c["matched"], c["gold_entries"])
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)
