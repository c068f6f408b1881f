"""Train the reference-string CRF on Crossref-format records rendered through CSL styles, and score it on
styles it never saw.

One style in five (by a hash of its name, citetune/refparse/render.py) is held out: the held-out figures
say how the parser does on a layout it was not trained on, the training styles' figures how well it
learnt. Records are split the same way, so held-out strings are new works too. Everything is drawn from
--seed: the same command writes the same model.

    .venv/bin/python tools/train_reference_parser.py [--styles 200] [--per-style 40] [--seed 0] \
        [--records data/sample/crossref.jsonl] [--out models/refparse/references.crfsuite]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citetune.io import read_jsonl  # noqa: E402
from citetune.refparse.crf import ReferenceTagger, score, train  # noqa: E402
from citetune.refparse.render import held_out, independent_styles, labelled  # noqa: E402


def _held_out_record(record: dict) -> bool:
    return int(hashlib.sha1(str(record.get("DOI", "")).lower().encode()).hexdigest(), 16) % 5 == 0


def examples(records: list[dict], styles: list[Path], per_style: int, rng: random.Random) -> list:
    """(string, labels) for `per_style` records drawn for each style; a style that cannot render gives none."""
    out = []
    for style in styles:
        for record in rng.sample(records, min(per_style, len(records))):
            if (example := labelled(record, style)) is not None:
                out.append(example)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default=str(ROOT / "data/sample/crossref.jsonl"))
    ap.add_argument("--styles", type=int, default=200, help="training styles drawn (held-out: a quarter of it)")
    ap.add_argument("--per-style", type=int, default=40, help="records rendered in each style")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "models/refparse/references.crfsuite"))
    args = ap.parse_args()

    rng = random.Random(args.seed)
    records = read_jsonl(args.records)
    styles = independent_styles()
    train_styles = rng.sample([s for s in styles if not held_out(s)], args.styles)
    test_styles = rng.sample([s for s in styles if held_out(s)], max(1, args.styles // 4))
    train_records = [r for r in records if not _held_out_record(r)]
    test_records = [r for r in records if _held_out_record(r)]

    started = time.monotonic()
    training = examples(train_records, train_styles, args.per_style, rng)
    seen = examples(test_records, train_styles[: len(test_styles)], args.per_style, rng)
    unseen = examples(test_records, test_styles, args.per_style, rng)
    rendered = time.monotonic() - started
    model = train(training, args.out)
    trained = time.monotonic() - started - rendered
    tagger = ReferenceTagger(model)
    print(json.dumps({
        "styles": {"training": len(train_styles), "held_out": len(test_styles)},
        "strings": {"training": len(training)}, "seconds": {"render": round(rendered, 1), "train": round(trained, 1)},
        "model": {"path": str(model), "bytes": model.stat().st_size},
        "training_styles_new_records": score(tagger, seen),
        "held_out_styles_new_records": score(tagger, unseen),
    }, indent=2))


if __name__ == "__main__":
    main()
