"""Speed of the arXiv download stage against a loopback arXiv (citetune/testing/arxiv_server.py), delays at zero.

Prints papers per second for a first download of N papers, then the time a no-op resume takes when
every PDF is already there (in this process, and as `python -m stages.download` from the shell,
interpreter start-up included). Target: a no-op resume of 300 papers in under 2 s.

    python bench/download_speed.py [--papers 300] [--page-size 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from citetune.arxiv_source import download
from citetune.params import default_params
from citetune.testing.arxiv_server import ArxivServer, Paper

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=300)
    ap.add_argument("--page-size", type=int, default=100)
    args = ap.parse_args()
    papers = [Paper(f"2401.{n:05d}v1", f"Paper number {n}", ["A. Author", "B. Author"]) for n in range(args.papers)]
    with ArxivServer(papers) as srv, tempfile.TemporaryDirectory() as tmp:
        spec = dict(source="arxiv", query="all:bench", max_results=args.papers, api_url=srv.api_url,
                    delay_seconds=0, pdf_delay_seconds=0, backoff_seconds=0, page_size=args.page_size)
        out = Path(tmp) / "raw"
        start = time.perf_counter()
        report = download(default_params("download", **spec), out)
        first = time.perf_counter() - start
        assert report.downloaded == args.papers, report.failures[:3]
        print(f"first download: {args.papers} papers in {first:.2f} s = {args.papers / first:.0f} papers/s "
              f"({srv.hits['api']} API pages, {srv.pdf_hits()} PDF requests)")

        start = time.perf_counter()
        report = download(default_params("download", **spec), out)
        resume = time.perf_counter() - start
        assert report.reused == args.papers and report.downloaded == 0
        print(f"no-op resume, in process: {resume:.2f} s (PDF requests since: {srv.pdf_hits() - args.papers})")

        params = Path(tmp) / "params.yaml"
        params.write_text(yaml.safe_dump({"download": default_params("download", **spec).model_dump(mode="json")}))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.download", "--params", str(params), "--out-dir", str(out),
                        "--sample-dir", "data/sample"],
                       cwd=ROOT, check=True, capture_output=True)
        shell = time.perf_counter() - start
        print(f"no-op resume, python -m stages.download: {shell:.2f} s (target < 2 s; PDF requests since: "
              f"{srv.pdf_hits() - args.papers})")


if __name__ == "__main__":
    main()
