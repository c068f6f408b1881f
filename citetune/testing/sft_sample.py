"""SFT records in the qa stage's format, built straight from the sample corpus specs.

The train and evaluate tests (and bench/train_speed.py) need chat-format data without running the
whole pipeline up to qa; the citing sentences of data/sample/papers/*.yaml give it directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml

from citetune.params import default_params
from citetune.qa import build_claims, make_records

ROOT = Path(__file__).resolve().parents[2]  # the repository: data/sample is not packaged
SAMPLE = ROOT / "data" / "sample"
CITE = re.compile(r"\[(@[^\]]+)\]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _records(root: Path) -> dict[str, dict]:
    path = root / "crossref.jsonl"
    if not path.exists():
        return {}
    recs = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["DOI"].lower(): r for r in recs}


def sample_tables(root: Path = SAMPLE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(citations, references) as the match stage writes them, read straight from the sample specs:
    every citing sentence's references, matched to the DOIs of works.yaml."""
    works = yaml.safe_load((root / "works.yaml").read_text())
    records = _records(root)
    citations, references = [], {}
    for path in sorted((root / "papers").glob("*.yaml")):
        paper = yaml.safe_load(path.read_text())
        n = 0
        for sec in paper["sections"]:
            for para in sec["paragraphs"]:
                for sentence in SENTENCE_END.split(" ".join(para.split())):
                    keys = [k.strip().lstrip("@") for g in CITE.findall(sentence) for k in g.split(";")]
                    keys = [k for k in dict.fromkeys(keys) if k in works]
                    if not keys:
                        continue
                    n += 1
                    context = re.sub(r"\s+([.,;:])", r"\1", CITE.sub("", sentence)).strip()
                    citations += [{"paper_id": paper["id"], "sentence_id": n, "context": context, "ref_key": k}
                                  for k in keys]
                    for k in keys:
                        rec = records.get(works[k].lower())
                        title = " ".join(rec["title"][0].split()) if rec else k
                        year = rec["issued"]["date-parts"][0][0] if rec else ""
                        references[k] = {"ref_key": k, "ref_title": title, "ref_year": year, "doi": works[k],
                                         "match_status": "matched", "match_title": title, "match_year": year}
    return pd.DataFrame(citations), pd.DataFrame(list(references.values()))


def sft_records(root: Path = SAMPLE, **qa_overrides) -> list[dict]:
    """The qa stage's records for the sample corpus (the project's qa params, with overrides)."""
    citations, references = sample_tables(root)
    params = default_params("qa", **qa_overrides)
    claims, library, _ = build_claims(citations, references, params)
    return make_records(claims, library, params)


def sample_library(root: Path = SAMPLE, **qa_overrides) -> list[dict]:
    """The qa stage's works.jsonl for the sample corpus."""
    citations, references = sample_tables(root)
    return build_claims(citations, references, default_params("qa", **qa_overrides))[1]


def write_sft(out_dir: Path, records: list[dict] | None = None, library: list[dict] | None = None
              ) -> dict[str, list[dict]]:
    """Write records to data/sft-style train/validation/test jsonl files under out_dir, by their split,
    and the library (works.jsonl: the sample's by default)."""
    records = list(records if records is not None else sft_records())
    library = library if library is not None else sample_library()
    splits = {name: [r for r in records if r["split"] == name] for name in ("train", "validation", "test")}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        (out_dir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out_dir / "works.jsonl").write_text("".join(json.dumps(w) + "\n" for w in library))
    return splits


def write_references(path: Path, dois: list[str]) -> None:
    """A data/matched/references.csv with the columns evaluate reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"ref_title": "", "doi": d, "match_status": "matched"} for d in dois]
    rows.append({"ref_title": "an unmatched one", "doi": "", "match_status": "unmatched"})
    pd.DataFrame(rows).to_csv(path, index=False)


if __name__ == "__main__":  # development data: python -m citetune.testing.sft_sample OUT_DIR
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/sft")
    splits = write_sft(target)
    write_references(target.parent / "references.csv",
                     sorted({d for rows in splits.values() for r in rows for d in r["dois"]}))
    print({k: len(v) for k, v in splits.items()}, "->", target)
