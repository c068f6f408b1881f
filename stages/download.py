"""download: arXiv search + PDFs (source: arxiv) or the bundled sample corpus rendered offline (source: sample).

Writes <out-dir>/pdf/<paper_id>.pdf, <out-dir>/manifest.jsonl, <out-dir>/failures.jsonl and (arxiv)
<out-dir>/query.json, the search as sent. The folder is kept between runs (a DVC persist output): a
rerun, or a run after a kill, downloads only what is not already there and whole.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import yaml
from tqdm import tqdm

from citetune.cli import StageError, run_stage, stage_parser
from citetune.ids import paper_id
from citetune.io import write_bytes, write_jsonl
from citetune.sample import SampleCorpus, manifest_row, render_pdf

log = logging.getLogger("download")


def render_sample(sample_dir: Path, pdf_dir: Path, limit: int = 0) -> tuple[list[dict], list[dict]]:
    """Render the first `limit` sample papers (0 = all); same specs, same bytes."""
    try:
        corpus = SampleCorpus.load(sample_dir)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise StageError(f"cannot load the sample corpus from {sample_dir}: {e}; pass --sample-dir DIR") from e
    papers = corpus.papers[:limit] if limit > 0 else corpus.papers
    if not papers:
        raise StageError(f"no sample papers in {sample_dir}/papers/*.yaml; pass --sample-dir DIR")
    rows, failures = [], []
    for paper in tqdm(papers, desc="sample PDFs", unit="paper"):
        try:
            pdf = render_pdf(paper, corpus)
            row = manifest_row(paper)
            row["paper_id"] = paper_id(row["id"])
        except (KeyError, ValueError, TypeError) as e:
            log.warning("%s: cannot render: %s", paper.get("id"), e)
            failures.append({"id": paper.get("id"), "paper_id": None, "url": None, "reason": f"cannot render: {e}"})
            continue
        write_bytes(pdf_dir / f"{row['paper_id']}.pdf", pdf)
        row.update(sha256=hashlib.sha256(pdf).hexdigest(), bytes=len(pdf))
        rows.append(row)
    return rows, failures


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
    parser.add_argument("--out-dir", default="data/raw", help="output folder (default: data/raw)")
    parser.add_argument("--sample-dir", default="data/sample", help="sample corpus (default: data/sample)")
    run_stage("download", parser, main)
