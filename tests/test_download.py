"""download: the real `arxiv` client against a loopback arXiv, and the sample corpus renderer."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citetune.arxiv_source import download, user_agent
from citetune.cli import StageError
from citetune.io import read_jsonl
from citetune.params import DownloadParams
from stages.download import main as stage_main
from stages.download import render_sample
from tests.arxiv_server import ArxivServer, Paper

ROOT = Path(__file__).resolve().parents[1]
QUERY = 'abs:"low-rank adaptation" AND cat:cs.CL'


def papers() -> list[Paper]:
    return [
        Paper("2106.09685v2", "LoRA: Low-Rank Adaptation of Large Language Models",
              ["Edward J. Hu", "Yelong Shen", "Phillip Wallis"], categories=["cs.CL", "cs.AI", "cs.LG"],
              comment="Draft V2 includes better baselines", affiliations={"Edward J. Hu": "Microsoft"}),
        Paper("2305.14314v1", "QLoRA: Efficient Finetuning of Quantized LLMs", ["Tim Dettmers", "Artidoro Pagnoni"],
              categories=["cs.LG", "cs.CL"], published="2023-05-23T17:50:33Z", updated="2023-05-23T17:50:33Z"),
        Paper("hep-th/9901001v1", "An Old-Style Identifier & Its <Title>", ["A. Author"], categories=["hep-th"],
              published="1999-01-01T10:00:00Z", updated="1999-01-01T10:00:00Z",
              doi="10.1103/PhysRevD.59.000001", journal_ref="Phys.Rev. D59 (1999) 000001"),
        Paper("2101.00190v1", "Prefix-Tuning: Optimizing Continuous Prompts for Generation",
              ["Xiang Lisa Li", "Percy Liang"]),
        Paper("1902.00751v2", "Parameter-Efficient Transfer Learning for NLP", ["Neil Houlsby"],
              categories=["cs.LG", "cs.CL", "stat.ML"], journal_ref="ICML 2019"),
    ]


def params(server: ArxivServer, **kw) -> DownloadParams:
    base = dict(source="arxiv", query=QUERY, max_results=10, api_url=server.api_url,
                delay_seconds=0, pdf_delay_seconds=0, contact="lab@example.org")
    return DownloadParams(**{**base, **kw})


def test_two_pages_download_every_pdf_and_a_full_manifest(tmp_path):
    with ArxivServer(papers()) as srv:
        report = download(params(srv, sort_by="submitted_date", sort_order="ascending"), tmp_path / "pdf", page_size=3)
    assert [r["id"] for r in report.rows] == ["2106.09685", "2305.14314", "hep-th/9901001", "2101.00190", "1902.00751"]
    assert report.downloaded == 5 and report.failures == []
    # Two API pages, asked with the params' sort and paging.
    assert [(q["start"], q["max_results"]) for q in srv.api_requests] == [("0", "3"), ("3", "3")]
    assert {(q["search_query"], q["sortBy"], q["sortOrder"]) for q in srv.api_requests} == {
        (QUERY, "submittedDate", "ascending")}
    assert set(srv.user_agents[-5:]) == {"citetune/0.1.0 (mailto:lab@example.org)"}

    old = report.rows[2]
    assert old["paper_id"] == "hep-th_9901001" and old["version"] == 1
    assert old["title"] == "An Old-Style Identifier & Its <Title>"
    assert old["doi"] == "10.1103/PhysRevD.59.000001" and old["journal_ref"] == "Phys.Rev. D59 (1999) 000001"
    assert old["primary_category"] == "hep-th" and old["published"] == "1999-01-01T10:00:00+00:00"
    assert old["pdf_url"] == f"{srv.base_url}/pdf/hep-th/9901001v1"
    lora = report.rows[0]
    assert lora["version"] == 2 and lora["authors"] == ["Edward J. Hu", "Yelong Shen", "Phillip Wallis"]
    assert lora["abstract"] == "An abstract that spans two lines, as arXiv prints it."
    assert lora["categories"] == ["cs.CL", "cs.AI", "cs.LG"] and lora["primary_category"] == "cs.CL"
    assert lora["comment"] == "Draft V2 includes better baselines" and lora["doi"] is None
    assert lora["updated"] == "2021-10-16T18:40:34+00:00" and lora["source"] == "arxiv"
    assert lora["downloaded_at"].startswith("20")
    for row, paper in zip(report.rows, papers()):
        pdf = (tmp_path / "pdf" / f"{row['paper_id']}.pdf").read_bytes()
        assert pdf == paper.pdf_bytes()
        assert row["sha256"] == hashlib.sha256(pdf).hexdigest() and row["bytes"] == len(pdf)
    assert sorted(p.name for p in (tmp_path / "pdf").iterdir()) == sorted(f"{r['paper_id']}.pdf" for r in report.rows)


def test_max_results_limits_the_search(tmp_path):
    with ArxivServer(papers()) as srv:
        report = download(params(srv, max_results=2), tmp_path / "pdf", page_size=100)
    assert [r["id"] for r in report.rows] == ["2106.09685", "2305.14314"] and srv.pdf_hits() == 2


def test_server_errors_are_retried_client_errors_are_not(tmp_path):
    with ArxivServer(papers()[:3]) as srv:
        srv.pdf_faults = {"2106.09685v2": [500, 503], "2305.14314v1": [404], "hep-th/9901001v1": ["drop"]}
        report = download(params(srv), tmp_path / "pdf", backoff_seconds=0)
    assert [r["id"] for r in report.rows] == ["2106.09685", "hep-th/9901001"]
    assert srv.hits["pdf/2106.09685v2"] == 3 and srv.hits["pdf/hep-th/9901001v1"] == 2
    assert srv.hits["pdf/2305.14314v1"] == 1  # a 404 is final
    assert report.failures == [{"id": "2305.14314", "paper_id": "2305.14314",
                                "url": f"{srv.base_url}/pdf/2305.14314v1", "reason": "HTTP 404 Not Found"}]


def test_persistent_5xx_gives_up_with_a_reason(tmp_path):
    with ArxivServer(papers()[:2]) as srv:
        srv.pdf_faults = {"2305.14314v1": [502] * 10}
        report = download(params(srv), tmp_path / "pdf", pdf_attempts=3, backoff_seconds=0)
    assert srv.hits["pdf/2305.14314v1"] == 3
    assert [f["reason"] for f in report.failures] == ["HTTP 502 after 3 attempts"]


def test_html_instead_of_pdf_is_a_failure_and_the_stage_goes_on(tmp_path):
    out = tmp_path / "raw"
    with ArxivServer(papers()) as srv:
        srv.pdf_faults = {"2305.14314v1": ["html"], "2101.00190v1": ["empty"]}
        args = type("Args", (), {"out_dir": str(out), "sample_dir": "unused"})
        stage_main(args, params(srv))
    rows = read_jsonl(out / "manifest.jsonl")
    assert [r["id"] for r in rows] == ["2106.09685", "hep-th/9901001", "1902.00751"]
    failures = {f["id"]: f for f in read_jsonl(out / "failures.jsonl")}
    assert set(failures) == {"2305.14314", "2101.00190"}
    assert failures["2305.14314"]["reason"].startswith("not a PDF: got text/html")
    assert failures["2305.14314"]["url"].endswith("/pdf/2305.14314v1")
    assert failures["2101.00190"]["reason"].startswith("empty response body")
    # Nothing half-written or rejected is left beside the good PDFs.
    assert sorted(p.name for p in (out / "pdf").iterdir()) == ["1902.00751.pdf", "2106.09685.pdf", "hep-th_9901001.pdf"]


def test_empty_result_set_names_the_query(tmp_path):
    with ArxivServer([]) as srv, pytest.raises(StageError, match="no results for query 'ti:nothing-here'"):
        download(params(srv, query="ti:nothing-here"), tmp_path / "pdf")


def test_unreachable_api_is_a_clear_error(tmp_path):
    with ArxivServer(papers()) as srv:
        srv.api_faults = [503] * 5
        with pytest.raises(StageError, match="arXiv search for .* failed: Page request resulted in HTTP 503"):
            download(params(srv), tmp_path / "pdf", num_retries=1)
    assert srv.hits["api"] == 2


def test_nothing_downloadable_fails_the_stage_but_records_why(tmp_path):
    out = tmp_path / "raw"
    with ArxivServer(papers()[:2]) as srv:
        srv.pdf_faults = {"2106.09685v2": [403], "2305.14314v1": ["html"]}
        args = type("Args", (), {"out_dir": str(out), "sample_dir": "unused"})
        with pytest.raises(StageError, match="no paper could be downloaded"):
            stage_main(args, params(srv))
    assert len(read_jsonl(out / "failures.jsonl")) == 2 and not (out / "manifest.jsonl").exists()


def test_rerun_downloads_only_what_changed(tmp_path):
    out = tmp_path / "raw"
    args = type("Args", (), {"out_dir": str(out), "sample_dir": "unused"})
    with ArxivServer(papers()) as srv:
        stage_main(args, params(srv))
        assert srv.pdf_hits() == 5
        first = read_jsonl(out / "manifest.jsonl")
        stage_main(args, params(srv))
        assert srv.pdf_hits() == 5  # nothing fetched again
        assert read_jsonl(out / "manifest.jsonl") == first
        # A new version, a corrupted file and a new paper are fetched; the rest is reused.
        srv.papers[0].id = "2106.09685v3"
        (out / "pdf" / "2305.14314.pdf").write_bytes(b"%PDF-1.4 truncated")
        srv.papers.append(Paper("2104.08691v1", "The Power of Scale for Parameter-Efficient Prompt Tuning", ["Brian Lester"]))
        stage_main(args, params(srv))
        assert srv.pdf_hits() == 8
        assert {k for k, n in srv.hits.items() if k.startswith("pdf/") and n} == {
            f"pdf/{p.id}" for p in srv.papers} | {"pdf/2106.09685v2"}
    rows = {r["id"]: r for r in read_jsonl(out / "manifest.jsonl")}
    assert rows["2106.09685"]["version"] == 3 and len(rows) == 6
    assert rows["2305.14314"]["sha256"] == hashlib.sha256((out / "pdf" / "2305.14314.pdf").read_bytes()).hexdigest()


def test_user_agent_contact_from_environment(monkeypatch):
    monkeypatch.setenv("CITETUNE_CONTACT", "me@example.org")
    assert user_agent("") == "citetune/0.1.0 (mailto:me@example.org)"
    assert user_agent("lab@example.org") == "citetune/0.1.0 (mailto:lab@example.org)"
    monkeypatch.delenv("CITETUNE_CONTACT")
    assert user_agent("") == "citetune/0.1.0"


# --- sample source ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    """The bundled corpus (or its stand-in while it is being written), with one extra paper."""
    src = ROOT / "data" / "sample"
    if not (src / "crossref.jsonl").exists():
        src = Path("/tmp/sc")
    if not (src / "crossref.jsonl").exists():
        pytest.skip("no sample corpus with crossref.jsonl available")
    dst = tmp_path_factory.mktemp("sample")
    shutil.copytree(src / "papers", dst / "papers")
    shutil.copy(src / "works.yaml", dst)
    shutil.copy(src / "crossref.jsonl", dst)
    first = yaml.safe_load(sorted((dst / "papers").glob("*.yaml"))[0].read_text())
    first.update(id="zz-extra", layout="one-column", reference_style="vancouver")
    (dst / "papers" / "zz-extra.yaml").write_text(yaml.safe_dump(first))
    return dst


def test_sample_renders_n_papers_with_the_same_bytes_twice(tmp_path, sample_dir):
    rows1, fails = render_sample(sample_dir, tmp_path / "a", limit=2)
    rows2, _ = render_sample(sample_dir, tmp_path / "b", limit=2)
    assert len(rows1) == 2 and fails == [] and rows1 == rows2
    for row in rows1:
        a = (tmp_path / "a" / f"{row['paper_id']}.pdf").read_bytes()
        assert a.startswith(b"%PDF-") and a == (tmp_path / "b" / f"{row['paper_id']}.pdf").read_bytes()
        assert row["sha256"] == hashlib.sha256(a).hexdigest() and row["bytes"] == len(a)
        assert row["source"] == "sample" and "downloaded_at" not in row
    everything, _ = render_sample(sample_dir, tmp_path / "c", limit=0)
    assert len(everything) == len(list((sample_dir / "papers").glob("*.yaml")))


def test_sample_paper_with_unknown_citation_key_is_recorded(tmp_path, sample_dir):
    bad = tmp_path / "sample"
    shutil.copytree(sample_dir, bad)
    spec = yaml.safe_load((bad / "papers" / "zz-extra.yaml").read_text())
    spec["sections"][0]["paragraphs"][0] += " As shown before [@no-such-work]."
    (bad / "papers" / "zz-extra.yaml").write_text(yaml.safe_dump(spec))
    rows, fails = render_sample(bad, tmp_path / "pdf")
    assert "zz-extra" not in {r["id"] for r in rows} and len(rows) >= 1
    assert fails[0]["id"] == "zz-extra" and "no-such-work" in fails[0]["reason"]


def test_stage_script_runs_on_the_sample(tmp_path, sample_dir):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"download": {"source": "sample", "sample_limit": 1}}))
    out = tmp_path / "raw"
    (out / "pdf").mkdir(parents=True)
    (out / "pdf" / "stale.pdf").write_bytes(b"%PDF-old")
    cmd = [sys.executable, "-m", "stages.download", "--params", str(params_file), "--out-dir", str(out),
           "--sample-dir", str(sample_dir)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_jsonl(out / "manifest.jsonl")
    assert len(rows) == 1 and [p.name for p in (out / "pdf").iterdir()] == [f"{rows[0]['paper_id']}.pdf"]
    assert read_jsonl(out / "failures.jsonl") == []

    params_file.write_text(yaml.safe_dump({"download": {"source": "arxiv", "query": "", "api_url": "http://127.0.0.1:9/"}}))
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "download.query is empty" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads((out / "manifest.jsonl").read_text().splitlines()[0])["source"] == "sample"
