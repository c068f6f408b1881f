"""Extraction quality of the built-in engine + parse on the bundled sample corpus, against its specs.

Renders every sample paper, extracts it with the built-in engine, parses the JATS, and prints:
reference-entry F1 (entries found vs works cited), field accuracy (first author, year, title, DOI,
arXiv id — each counted only where the paper's style prints it), the share of citing sentences whose
linked references are exactly the spec's, and papers per second.

    python bench/extract_quality.py [--sample data/sample] [--verbose]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citetune.engines import Job, run_isolated  # noqa: E402
from citetune.jats import parse_jats  # noqa: E402
from citetune.parse import citation_rows, read_references  # noqa: E402
from citetune.sample import CITE_GROUP, SampleCorpus, format_reference, number_references, render_pdf  # noqa: E402


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", s.lower())


def expected_sentences(paper: dict, numbers: dict[str, int]) -> dict[str, set[str]]:
    """Normalised citing sentence (markers removed) -> the ref ids the spec says it cites."""
    out = {}
    for sec in paper["sections"]:
        for para in sec["paragraphs"]:
            for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(para.split())):
                keys = [k.strip().lstrip("@") for g in CITE_GROUP.findall(sentence) for k in g.split(";")]
                if keys:
                    out[_norm(CITE_GROUP.sub("", sentence))] = {f"ref{numbers[k]}" for k in keys}
    return out


def evaluate(paper: dict, corpus: SampleCorpus, xml: bytes) -> dict:
    """Counts for one paper: entries, fields (right/printed), sentences (exact/expected)."""
    numbers = number_references(paper)
    style = paper.get("reference_style", "acm")
    article = parse_jats(xml)
    refs = read_references(article)
    c = defaultdict(int)
    c["refs_expected"], c["refs_found"] = len(numbers), len(refs)
    c["refs_right"] = len(set(refs) & {f"ref{n}" for n in numbers.values()})
    for key, n in numbers.items():
        rec, ref = corpus.record(key), refs.get(f"ref{n}")
        printed = format_reference(rec, style)
        got = ref.__dict__ if ref else defaultdict(str)
        wanted = {
            "first_author": rec["author"][0]["family"],
            "year": str(rec["issued"]["date-parts"][0][0]),
            "title": rec["title"][0] if rec["title"][0] in printed else None,
            "doi": rec["DOI"] if rec["DOI"] in printed else None,
            "arxiv": (re.match(r"10\.48550/arxiv\.(.+)", rec["DOI"], re.I) or [None, None])[1]
            if "arXiv:" in printed else None,
        }
        found = {"first_author": (got["authors"] or "").split(";")[0], "year": got["year"], "title": got["title"],
                 "doi": got["doi"], "arxiv": got["arxiv"]}
        for name, want in wanted.items():
            if want is None:
                continue
            c[f"{name}_printed"] += 1
            ok = _norm(found[name]) == _norm(want) if name != "doi" else found[name].lower() == want.lower()
            c[f"{name}_right"] += ok
    rows, _ = citation_rows(article, paper["id"])
    linked = defaultdict(set)
    for row in rows:
        linked[_norm(row["context"])].add(row["ref_id"])
    for sentence, want in expected_sentences(paper, numbers).items():
        c["sentences_expected"] += 1
        c["sentences_exact"] += linked.get(sentence) == want
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", default="data/sample")
    ap.add_argument("--verbose", action="store_true", help="print the counts of every paper")
    args = ap.parse_args()
    corpus = SampleCorpus.load(args.sample)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for paper in corpus.papers:
            pdf = Path(tmp) / f"{paper['id']}.pdf"
            pdf.write_bytes(render_pdf(paper, corpus))
            jobs.append(Job(paper["id"], pdf))
        start = time.monotonic()
        results = run_isolated(jobs, timeout=120)
        seconds = time.monotonic() - start
    total = defaultdict(int)
    failed = [pid for pid, r in results.items() if r.status != "ok"]
    for paper in corpus.papers:
        res = results[paper["id"]]
        if res.status != "ok":
            continue
        c = evaluate(paper, corpus, res.xml)
        for k, v in c.items():
            total[k] += v
        if args.verbose:
            print(paper["id"], paper.get("layout"), paper.get("reference_style"), dict(c))
    precision = total["refs_right"] / max(1, total["refs_found"])
    recall = total["refs_right"] / max(1, total["refs_expected"])
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    print(f"papers: {len(corpus.papers)} ({len(failed)} failed: {', '.join(failed) or '-'})")
    print(f"reference entries: F1 {f1:.3f} (precision {precision:.3f}, recall {recall:.3f})")
    for name in ("first_author", "year", "title", "doi", "arxiv"):
        n = total[f"{name}_printed"]
        print(f"field {name:<12} {total[f'{name}_right'] / max(1, n):.3f}  ({total[f'{name}_right']}/{n} printed)")
    print(f"citing sentences with exactly the spec's references: "
          f"{total['sentences_exact'] / max(1, total['sentences_expected']):.3f} "
          f"({total['sentences_exact']}/{total['sentences_expected']})")
    print(f"speed: {len(jobs) / seconds:.1f} papers/s (built-in engine, one process per PDF, incl. start-up)")


if __name__ == "__main__":
    main()
