"""download: arXiv search + PDFs (source: arxiv) or the bundled sample corpus rendered offline (source: sample).

Writes <out-dir>/pdf/<paper_id>.pdf, <out-dir>/manifest.jsonl, <out-dir>/failures.jsonl and (arxiv)
<out-dir>/query.json, the search as sent. The folder is kept between runs (a DVC persist output): a
rerun, or a run after a kill, downloads only what is not already there and whole.
"""

from __future__ import annotations

import logging
from pathlib import Path

from citetune.cli import StageError, run_stage, stage_parser
from citetune.io import write_jsonl
from citetune.sample import render_sample

log = logging.getLogger("download")


def main(args, params) -> None:
    out = Path(args.out_dir)
    if params.source == "arxiv":
        # requests, arxiv and tenacity come with it: the sample source does without them.
        from citetune import arxiv_source

        report = arxiv_source.download(params, out)
        log.info("%d papers in %s: %d downloaded, %d already here; %d failures (see %s)", len(report.rows),
                 out / "manifest.jsonl", report.downloaded, report.reused, len(report.failures),
                 out / "failures.jsonl")
        return
    rows, failures = render_sample(Path(args.sample_dir), out / "pdf", params.sample_limit)
    write_jsonl(out / "failures.jsonl", failures)
    if not rows:
        raise StageError(f"no paper could be rendered; the reasons are in {out / 'failures.jsonl'}")
    write_jsonl(out / "manifest.jsonl", rows)
    log.info("%d papers in %s (%d failures)", len(rows), out / "manifest.jsonl", len(failures))


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--sample-dir", required=True, help="the sample corpus (source: sample)")
    parser.add_argument("--out-dir", required=True, help="output folder, kept between runs")
    run_stage("download", parser, main)
