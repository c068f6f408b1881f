"""Speed of the built-in engine: papers (and pages) per second on one core.

Extracts each gold PDF in this one process (PDF -> JATS bytes, as the extract stage's workers do),
several rounds, and prints per-paper times, pages per second and papers per second per core; the
figure for ten-page papers is the pages-per-second rate scaled to ten pages. The first round only
warms up (imports, caches) and is not counted.

    python bench/extract_speed.py [--pdf-dir bench/gold/pdf] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pymupdf

from citetune import jats
from citetune.engines import builtin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdf-dir", default="bench/gold/pdf")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    pdfs = sorted(Path(args.pdf_dir).glob("*.pdf"))
    if not pdfs:
        raise SystemExit(f"no PDFs in {args.pdf_dir}")
    pages = {p: pymupdf.open(p).page_count for p in pdfs}
    times: dict[Path, list[float]] = {p: [] for p in pdfs}
    for round_no in range(args.rounds + 1):
        for pdf in pdfs:
            start = time.process_time()  # CPU time of this process: one core's work
            jats.to_bytes(builtin.extract(pdf))
            if round_no:
                times[pdf].append(time.process_time() - start)
    print(f"{'paper':28s} {'pages':>5s} {'s/paper':>8s} {'pages/s':>8s}")
    for pdf in pdfs:
        t = statistics.median(times[pdf])
        print(f"{pdf.stem:28s} {pages[pdf]:5d} {t:8.3f} {pages[pdf] / t:8.1f}")
    total_pages = sum(pages.values())
    total_time = sum(statistics.median(t) for t in times.values())
    per_page = total_time / total_pages
    long = [p for p in pdfs if pages[p] >= 9]
    print(f"\n{len(pdfs)} papers, {total_pages} pages: {total_time:.2f} s of CPU time (median of {args.rounds} rounds)")
    print(f"{total_pages / total_time:.1f} pages per second per core; {len(pdfs) / total_time:.2f} papers per second "
          "per core")
    print(f"ten-page papers: {1 / (10 * per_page):.2f} per second per core (target >= 3)")
    if long:
        t_long = sum(statistics.median(times[p]) for p in long) / sum(pages[p] for p in long) * 10
        print(f"  measured on the papers of 9+ pages alone ({', '.join(p.stem for p in long)}): "
              f"{1 / t_long:.2f} ten-page papers per second per core")


if __name__ == "__main__":
    main()
