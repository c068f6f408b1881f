"""download: arXiv search + PDFs (source: arxiv) or the bundled sample corpus rendered offline (source: sample).

Writes <out-dir>/pdf/<paper_id>.pdf, <out-dir>/manifest.jsonl and <out-dir>/failures.jsonl.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import yaml
from tqdm import tqdm

from citetune import arxiv_source
from citetune.cli import StageError, run_stage, stage_parser
from citetune.ids import paper_id
from citetune.io import read_jsonl, write_bytes, write_jsonl
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
    pdf_dir, manifest = out / "pdf", out / "manifest.jsonl"
    if params.source == "sample":
        rows, failures = render_sample(Path(args.sample_dir), pdf_dir, params.sample_limit)
    else:
        previous = read_jsonl(manifest) if manifest.exists() else []
        report = arxiv_source.download(
            params, pdf_dir, previous,
            page_size=params.page_size, num_retries=params.num_retries,
        )
        rows, failures = report.rows, report.failures
        log.info("%d downloaded, %d unchanged and reused, %d failed", report.downloaded, report.reused, len(failures))
    write_jsonl(out / "failures.jsonl", failures)
    if not rows:
        raise StageError(f"no paper could be downloaded; the reasons are in {out / 'failures.jsonl'}")
    # PDFs of papers no longer in the manifest would be read by nobody and confuse everybody.
    keep = {f"{r['paper_id']}.pdf" for r in rows}
    for stale in pdf_dir.glob("*.pdf"):
        if stale.name not in keep:
            stale.unlink()
    write_jsonl(manifest, rows)
    log.info("%d papers in %s (%d failures)", len(rows), manifest, len(failures))


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default="data/raw", help="output folder (default: data/raw)")
    parser.add_argument("--sample-dir", default="data/sample", help="sample corpus (default: data/sample)")
    run_stage("download", parser, main)
