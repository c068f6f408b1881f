"""merge and qa stages on small hand-made inputs, run as the stage scripts users run."""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from citetune.answers import ABSTAIN
from citetune.columns import CITATION_COLUMNS
from citetune.errors import StageError
from citetune.io import read_csv, read_jsonl
from citetune.params import default_params
from citetune.qa import CANDIDATES_HEADER


def row(paper, sid, sentence, context, ref_id, ref_raw, **extra):
    base = dict.fromkeys(CITATION_COLUMNS, "")
    base.update(paper_id=paper, sentence_id=sid, section="Introduction", sentence=sentence, context=context,
                marker="[1]", ref_id=ref_id, ref_label="1", ref_raw=ref_raw)
    base.update(extra)
    return base


def run(stage, *args):
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", *args], capture_output=True, text=True)


def test_merge_drops_with_reason_and_dedupes(tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    ref = "E. J. Hu et al., LoRA: Low-Rank Adaptation of Large Language Models, arXiv:2106.09685 (2021)."
    a = [
        row("p1", "s1", "Low-rank adaptation   freezes the weights [1].", "Low-rank adaptation freezes the weights.", "ref1", ref),
        row("p1", "s1", "Low-rank adaptation   freezes the weights [1].", "Low-rank adaptation freezes the weights.", "ref1", ref),
        row("p1", "s2", "Short [1].", "Short.", "ref1", ref),
        row("p1", "s3", "A sentence whose marker points nowhere at all [9].", "A sentence whose marker points nowhere at all.", "", ""),
        row("p1", "s4", "   ", "", "ref1", ref),
        row("p1", "s5", "Quantized adapters make fine-tuning transformers cheap [1].",
            "Quantized adapters make fine-tuning transformers cheap.", "ref1", ref),
    ]
    pd.DataFrame(a).to_csv(csv_dir / "p1.csv", index=False)
    (csv_dir / "broken.csv").write_text("not,the,contract\n1,2,3\n")
    params = tmp_path / "params.yaml"
    params.write_text("merge:\n  min_context_chars: 20\n")
    out, dropped, metrics = tmp_path / "m/citations.csv", tmp_path / "m/dropped.csv", tmp_path / "merge.json"
    r = run("merge", "--params", str(params), "--csv-dir", str(csv_dir), "--out", str(out),
            "--dropped", str(dropped), "--metrics", str(metrics))
    assert r.returncode == 0, r.stderr
    kept, gone = read_csv(out), read_csv(dropped)
    assert list(kept.columns) == CITATION_COLUMNS
    assert kept["sentence_id"].tolist() == ["s1", "s5"]
    assert kept["context"].iloc[0] == "Low-rank adaptation freezes the weights."
    assert kept["context"].iloc[1] == "Quantized adapters make fine-tuning transformers cheap."
    reasons = dict(zip(gone["sentence_id"], gone["reason"]))
    assert reasons["s1"] == "exact duplicate"
    assert reasons["s3"] == "no resolvable reference"
    assert reasons["s4"] == "empty sentence"
    assert reasons["s2"].startswith("sentence shorter")
    m = json.loads(metrics.read_text())
    assert (m["rows"], m["dropped"], m["rows_in"], m["bad_files"]) == (2, 4, 6, 1)


def test_merge_without_csvs_says_what_to_do(tmp_path):
    r = run("merge", "--csv-dir", str(tmp_path), "--out", str(tmp_path / "o.csv"), "--dropped", str(tmp_path / "d.csv"),
            "--metrics", str(tmp_path / "m.json"))
    assert r.returncode == 1
    assert "run the parse stage first" in r.stderr


@pytest.fixture
def matched(tmp_path):
    refs = pd.DataFrame([
        {"ref_key": "k1", "ref_title": "LoRA", "ref_year": "2021", "doi": "10.48550/arXiv.2106.09685",
         "match_status": "matched", "match_title": "LoRA: Low-Rank Adaptation of Large Language Models", "match_year": "2021"},
        {"ref_key": "k2", "ref_title": "QLoRA", "ref_year": "2023", "doi": "10.48550/arXiv.2305.14314",
         "match_status": "matched", "match_title": "QLoRA: Efficient Finetuning of Quantized LLMs", "match_year": "2023"},
        {"ref_key": "k3", "ref_title": "Unknown", "ref_year": "1999", "doi": "", "match_status": "unmatched",
         "match_title": "", "match_year": ""},
    ])
    cits = []
    for i in range(60):
        keys = ["k1"] if i % 3 == 0 else (["k1", "k2"] if i % 3 == 1 else ["k3"])
        for k in keys:
            cits.append({"paper_id": f"p{i % 5}", "sentence_id": f"s{i}", "context": f"Claim number {i} about adapters.",
                         "ref_key": k})
    cits.append({"paper_id": "p9", "sentence_id": "s0", "context": "Claim number 0 about adapters.", "ref_key": "k1"})
    cits.append({"paper_id": "p9", "sentence_id": "s1", "context": "A claim citing a matched and an unmatched work.", "ref_key": "k2"})
    cits.append({"paper_id": "p9", "sentence_id": "s1", "context": "A claim citing a matched and an unmatched work.", "ref_key": "k3"})
    refs.to_csv(tmp_path / "references.csv", index=False)
    pd.DataFrame(cits).to_csv(tmp_path / "citations.csv", index=False)
    return tmp_path


def run_qa(d, extra="", **overrides):
    qa = default_params("qa", **({"seed": 7, "test_fraction": 0.2, "validation_fraction": 0.1, "holdout_works": 0.0}
                                 | overrides)).model_dump(mode="json")
    (d / "params.yaml").write_text(yaml.safe_dump({"qa": qa | (yaml.safe_load(extra) or {})}))
    return run("qa", "--params", str(d / "params.yaml"), "--citations", str(d / "citations.csv"),
               "--references", str(d / "references.csv"), "--out-dir", str(d / "sft"), "--metrics", str(d / "qa.json"),
               "--writer-cache", str(d / "writer.sqlite"))


def read_splits(d) -> dict[str, list[dict]]:
    return {s: read_jsonl(d / "sft" / f"{s}.jsonl") for s in ("train", "validation", "test")}


def test_qa_claims_in_both_modes_splits_abstentions_and_card(matched):
    r = run_qa(matched, modes=["closed_book", "retrieval"])
    assert r.returncode == 0, r.stderr
    splits = read_splits(matched)
    records = [p for rows in splits.values() for p in rows]
    assert len(records) == 2 * 62  # every citing sentence, in both modes
    assert all(len(rows) > 0 for rows in splits.values())
    by_id = {(p["id"], p["mode"]): p for p in records}
    two, two_rag = by_id[("p1:s1", "closed_book")], by_id[("p1:s1", "retrieval")]
    assert [m["role"] for m in two["messages"]] == ["system", "user", "assistant"]
    assert two["claim"] == "Claim number 1 about adapters." and two["claim"] in two["messages"][1]["content"]
    assert two["dois"] == ["10.48550/arxiv.2106.09685", "10.48550/arxiv.2305.14314"] and not two["abstain"]
    lines = ("- LoRA: Low-Rank Adaptation of Large Language Models (2021). DOI: 10.48550/arXiv.2106.09685\n"
             "- QLoRA: Efficient Finetuning of Quantized LLMs (2023). DOI: 10.48550/arXiv.2305.14314")
    assert two["messages"][2]["content"] == lines
    # Retrieval: the candidates are listed after the question, the answer cites those it needs.
    question = two_rag["messages"][1]["content"]
    assert question.startswith(two["messages"][1]["content"]) and CANDIDATES_HEADER in question
    assert sorted(two_rag["candidates"]) == two["dois"] and all(line in question for line in lines.splitlines())
    assert two_rag["messages"][2]["content"] in (lines, "\n".join(reversed(lines.splitlines())))
    # A claim whose only reference is unmatched is answered by abstaining, in both modes.
    for mode in ("closed_book", "retrieval"):
        alone = by_id[("p2:s2", mode)]
        assert alone["dois"] == [] and alone["abstain"] and alone["messages"][2]["content"] == ABSTAIN
    assert by_id[("p9:s1", "closed_book")]["dois"] == ["10.48550/arxiv.2305.14314"]
    # the same sentence in two papers lands in one split, and no sentence is in two splits
    assert by_id[("p0:s0", "closed_book")]["split"] == by_id[("p9:s0", "closed_book")]["split"]
    claims = {s: {p["claim"] for p in rows} for s, rows in splits.items()}
    assert not (claims["train"] & claims["test"]) and not (claims["train"] & claims["validation"])
    assert len({p["messages"][1]["content"].split("Claim")[0] for p in records}) > 1  # several question templates
    assert [w["doi"] for w in read_jsonl(matched / "sft" / "works.jsonl")] == [
        "10.48550/arXiv.2106.09685", "10.48550/arXiv.2305.14314"]
    m = json.loads((matched / "qa.json").read_text())
    assert (m["claims"], m["records"], m["abstain_unmatched"], m["claims_with_unmatched_references"]) == (62, 124, 20, 1)
    assert sum(m["abstain_by_split"].values()) == 20
    assert "| train |" in (matched / "sft" / "README.md").read_text()


@pytest.fixture
def many_works(tmp_path):
    """40 works with distinct titles, each cited by three claims in its own words."""
    topics = [f"topic{i} alpha{i} beta{i}" for i in range(40)]
    refs = pd.DataFrame([{"ref_key": f"k{i}", "ref_title": t, "ref_year": "2020", "doi": f"10.1000/w{i}",
                          "match_status": "matched", "match_title": f"Study of {t}", "match_year": "2020"}
                         for i, t in enumerate(topics)])
    cits = [{"paper_id": f"p{j}", "sentence_id": f"s{i}", "context": f"Result {j} on {t} holds.", "ref_key": f"k{i}"}
            for i, t in enumerate(topics) for j in range(3)]
    refs.to_csv(tmp_path / "references.csv", index=False)
    pd.DataFrame(cits).to_csv(tmp_path / "citations.csv", index=False)
    return tmp_path


def test_held_out_works_leave_the_library_and_their_claims_abstain(many_works):
    assert run_qa(many_works, holdout_works=0.25, modes=["closed_book", "retrieval"]).returncode == 0
    library = {w["doi"].lower() for w in read_jsonl(many_works / "sft" / "works.jsonl")}
    held = {f"10.1000/w{i}" for i in range(40)} - library
    assert 3 <= len(held) <= 20
    records = [r for rows in read_splits(many_works).values() for r in rows]
    for r in records:
        cited = r["claim"].split(" on ")[1].split()[0].removeprefix("topic")
        if r["mode"] == "closed_book":  # (retrieval drops gold works from some train prompts too)
            assert r["abstain"] == (f"10.1000/w{cited}" in held), r["id"]
        assert not set(r.get("candidates", [])) & held  # a held-out work is never offered
    m = json.loads((many_works / "qa.json").read_text())
    assert (m["library_works"], m["held_out_works"]) == (len(library), len(held))
    assert m["abstain_held_out"] == 3 * len(held)


def test_train_claims_are_sometimes_shown_without_their_gold_works(many_works):
    assert run_qa(many_works, drop_gold_fraction=1.0, modes=["retrieval"]).returncode == 0
    splits = read_splits(many_works)
    assert all(r["abstain"] and r["dois"][0] not in r["candidates"] for r in splits["train"])
    # Other splits are shown what retrieval finds: the claim's work, found by its title's words.
    shown = [r for s in ("validation", "test") for r in splits[s]]
    assert shown and all(r["dois"][0] in r["candidates"] and not r["abstain"] for r in shown)
    assert run_qa(many_works, drop_gold_fraction=0.0, modes=["retrieval"]).returncode == 0
    assert not any(r["abstain"] for r in read_splits(many_works)["train"])


def test_qa_is_deterministic_and_can_require_all_matched(matched):
    assert run_qa(matched).returncode == 0
    first = (matched / "sft" / "train.jsonl").read_text()
    assert run_qa(matched).returncode == 0
    assert (matched / "sft" / "train.jsonl").read_text() == first
    assert run_qa(matched, "  require_all_matched: true\n").returncode == 0
    assert json.loads((matched / "qa.json").read_text())["skipped_partially_matched"] == 1


def test_qa_params_typo_is_explained(matched):
    r = run_qa(matched, "  test_fracton: 0.3\n")
    assert r.returncode == 1
    assert "qa.test_fracton: unknown key; did you mean 'test_fraction'?" in r.stderr


def _merge(tmp_path, csv_dir):
    return run("merge", "--csv-dir", str(csv_dir), "--out", str(tmp_path / "m/citations.csv"),
               "--dropped", str(tmp_path / "m/dropped.csv"), "--metrics", str(tmp_path / "merge.json"))


def test_merge_reads_an_empty_csv_as_a_paper_without_citations(tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    ref = "E. J. Hu et al., LoRA: Low-Rank Adaptation of Large Language Models, arXiv:2106.09685 (2021)."
    pd.DataFrame([row("p1", "s1", "Adapters freeze the weights of the model [1].",
                      "Adapters freeze the weights of the model.", "ref1", ref)]).to_csv(csv_dir / "p1.csv", index=False)
    (csv_dir / "p2.csv").write_bytes(b"")
    r = _merge(tmp_path, csv_dir)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "merge.json").read_text())
    assert (m["files"], m["bad_files"], m["rows"]) == (2, 0, 1)


def test_merge_fails_when_no_csv_can_be_read_and_lists_why(tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "a.csv").write_text("not,the,contract\n1,2,3\n")
    (csv_dir / "b.csv").write_bytes(b"\xff\xfe\x00binary\x00\xc3")
    r = _merge(tmp_path, csv_dir)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"no CSV in {csv_dir} could be read:\n  a.csv: missing columns: paper_id" in r.stderr
    assert "\n  b.csv: unreadable: " in r.stderr
    assert not (tmp_path / "m/citations.csv").exists()


@pytest.mark.parametrize("emptied", ["citations.csv", "references.csv"])
def test_qa_says_which_input_is_an_empty_file(matched, emptied):
    (matched / emptied).write_bytes(b"")
    r = run_qa(matched)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{matched / emptied} is empty (0 bytes), not a table with a header row" in r.stderr


@pytest.mark.parametrize("content", [b"\n\n", b"  \n \r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n \n"])
def test_a_csv_of_blank_lines_or_a_lone_bom_is_an_empty_table_by_name(tmp_path, content):
    (tmp_path / "t.csv").write_bytes(content)
    with pytest.raises(StageError, match=re.escape(f"{tmp_path / 't.csv'} is empty (blank lines alone), not a table "
                                                   "with a header row: rerun the stage that writes it")):
        read_csv(tmp_path / "t.csv")


def test_qa_says_its_input_of_blank_lines_is_empty(matched):
    (matched / "references.csv").write_bytes(b"\xef\xbb\xbf\n\n")
    r = run_qa(matched)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{matched / 'references.csv'} is empty (blank lines alone), not a table with a header row" in r.stderr
