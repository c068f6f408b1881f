"""SFT records in the qa stage's format, built straight from the sample corpus specs.

The train and evaluate tests (and bench/train_speed.py) need chat-format data without running the
whole pipeline up to qa; the citing sentences of data/sample/papers/*.yaml give it directly.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pandas as pd
import yaml

from citetune.qa import QUESTION_TEMPLATES, format_answer, split_of

ROOT = Path(__file__).resolve().parents[2]  # the repository: data/sample is not packaged
SAMPLE = ROOT / "data" / "sample"
SYSTEM = ("You are a research assistant. Answer with the works that support the statement, each as "
          "title, year and DOI. Cite only works you are sure of.")
CITE = re.compile(r"\[(@[^\]]+)\]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _records(root: Path) -> dict[str, dict]:
    path = root / "crossref.jsonl"
    if not path.exists():
        return {}
    recs = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["DOI"].lower(): r for r in recs}


def _work(doi: str, key: str, records: dict[str, dict]) -> dict:
    # As the qa stage writes them: the DOI as Crossref prints it in the answer, lower-cased in "dois".
    rec = records.get(doi.lower())
    if rec is None:  # the corpus lacks the record: the key still names the work
        return {"title": key, "year": "", "doi": doi}
    return {"title": " ".join(rec["title"][0].split()), "year": rec["issued"]["date-parts"][0][0],
            "doi": rec["DOI"]}


def sft_records(root: Path = SAMPLE, seed: int = 13) -> list[dict]:
    """One record per citing sentence of the sample papers, in the qa stage's jsonl format."""
    works = yaml.safe_load((root / "works.yaml").read_text())
    records = _records(root)
    rng = random.Random(seed)
    out = []
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
                    template = rng.randrange(len(QUESTION_TEMPLATES))
                    cited = [_work(works[k], k, records) for k in keys]
                    out.append({
                        "id": f"{paper['id']}:{n}", "paper_id": paper["id"], "sentence_id": n,
                        "split": split_of(context, seed, 0.1, 0.15), "template": template,
                        "messages": [
                            {"role": "system", "content": SYSTEM},
                            {"role": "user", "content": QUESTION_TEMPLATES[template].format(context=context)},
                            {"role": "assistant", "content": format_answer(cited)},
                        ],
                        "dois": [w["doi"].lower() for w in cited],
                    })
    return out


def write_sft(out_dir: Path, records: list[dict] | None = None) -> dict[str, list[dict]]:
    """Write records to data/sft-style train/validation/test jsonl files under out_dir, by their split."""
    records = list(records if records is not None else sft_records())
    splits = {name: [r for r in records if r["split"] == name] for name in ("train", "validation", "test")}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        (out_dir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
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
