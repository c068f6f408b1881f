"""Train the reference-string CRF on Crossref-format records rendered through CSL styles, and score it on
styles it never saw.

Training strings are given the noise of PDFs' text layers (citetune/refparse/noise.py: line-break hyphens,
lost spaces, ligatures, lost page dashes, capitals, "et al.", two works in one entry), and the gold sets'
printed entries are added where the rules' parse agrees with their gold fields (citetune/refparse/gold.py).

One style in five (by a hash of its name, citetune/refparse/render.py) is held out: the held-out figures
say how the parser does on a layout it was not trained on, the training styles' figures how well it
learnt. Records are split the same way, so held-out strings are new works too. Everything is drawn from
--seed: the same command writes the same model.

    .venv/bin/python tools/train_reference_parser.py [--styles 200] [--per-style 40] [--seed 0] \
        [--records data/sample/crossref.jsonl] [--noise 0.5] [--gold bench/gold] \
        [--out models/refparse/references.crfsuite]

Beside the model it writes <out>.json: the command, the seed, the gold folders trained on and the figures
it was trained with. By default it writes under models/refparse/ (not versioned), so that a try leaves the
shipped model alone; `--out citetune/refparse/references.crfsuite` replaces the shipped one (its JSON holds
the command that built it).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citetune.io import read_jsonl  # noqa: E402
from citetune.refparse.crf import ReferenceTagger, score, train  # noqa: E402
from citetune.refparse.gold import gold_examples  # noqa: E402
from citetune.refparse.noise import noisy  # noqa: E402
from citetune.refparse.render import (  # noqa: E402
    held_out,
    held_out_record,
    independent_styles,
    labelled,
    writes_full_names,
)


def generated_records(n: int, seed: int) -> list[dict]:
    """n synthetic Crossref-format records (bench/gen_crossref_records.py, from `seed`), no look-alikes."""
    if n <= 0:
        return []
    from bench.gen_crossref_records import main as generate

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "records.jsonl.gz"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            generate(["--out", str(out), "--layout", "jsonl", "--n", str(n), "--seed", str(seed), "--refs", "0",
                      "--distractors", "0"])
        with gzip.open(out, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]


def examples(records: list[dict], styles: list[Path], per_style: int, rng: random.Random) -> list:
    """(string, labels) for `per_style` records drawn for each style; a style that cannot render gives none."""
    out = []
    for style in styles:
        for record in rng.sample(records, min(per_style, len(records))):
            if (example := labelled(record, style)) is not None:
                out.append(example)
    return out


def with_noise(clean: list, share: float, two_works: float, rng: random.Random) -> list:
    """Each example given PDF noise with probability `share`, and followed by another work in `two_works`."""
    out = []
    for example in clean:
        if rng.random() < share:
            second = rng.choice(clean) if rng.random() < two_works else None
            example = noisy(example, rng, second)
        out.append(example)
    return out


def _shown(folder: Path) -> str:
    """A folder as the report names it: from the repository root where it lies inside it."""
    folder = folder.resolve()
    return folder.relative_to(ROOT).as_posix() if folder.is_relative_to(ROOT) else folder.as_posix()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default=str(ROOT / "data/sample/crossref.jsonl"))
    ap.add_argument("--styles", type=int, default=200, help="training styles drawn (held-out: a quarter of it)")
    ap.add_argument("--per-style", type=int, default=40, help="records rendered in each style")
    ap.add_argument("--generated", type=int, default=3000,
                    help="records from bench/gen_crossref_records.py added to --records (varied names, volumes, pages)")
    ap.add_argument("--full-names", type=float, default=0.25,
                    help="share of the training styles drawn among those printing given names whole")
    ap.add_argument("--noise", type=float, default=0.5, help="share of training strings given PDF noise")
    ap.add_argument("--two-works", type=float, default=0.1, help="share of the noisy ones followed by another work")
    ap.add_argument("--gold", action="append", help="gold folders whose entries are trained on (default bench/gold)")
    ap.add_argument("--c1", type=float, default=0.1, help="L1 weight: higher keeps fewer features, a smaller model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "models/refparse/references.crfsuite"),
                    help="where to write the model; citetune/refparse/references.crfsuite is the shipped one")
    args = ap.parse_args()
    gold = [Path(g) for g in (args.gold if args.gold is not None else [str(ROOT / "bench/gold")])]

    rng = random.Random(args.seed)
    records = read_jsonl(args.records) + generated_records(args.generated, args.seed)
    styles = independent_styles()
    trainable = [s for s in styles if not held_out(s)]
    full = [s for s in trainable if writes_full_names(s)]
    n_full = min(len(full), round(args.styles * args.full_names))
    train_styles = rng.sample(full, n_full) + rng.sample([s for s in trainable if s not in full], args.styles - n_full)
    test_styles = rng.sample([s for s in styles if held_out(s)], max(1, args.styles // 4))
    train_records = [r for r in records if not held_out_record(r)]
    test_records = [r for r in records if held_out_record(r)]

    started = time.monotonic()
    training = with_noise(examples(train_records, train_styles, args.per_style, rng), args.noise, args.two_works, rng)
    from_gold = gold_examples(gold)
    training += from_gold
    seen = examples(test_records, train_styles[: len(test_styles)], args.per_style, rng)
    unseen = examples(test_records, test_styles, args.per_style, rng)
    rendered = time.monotonic() - started
    model = train(training, args.out, c1=args.c1)
    trained = time.monotonic() - started - rendered
    tagger = ReferenceTagger(model)
    report = {
        "command": " ".join(["python", "tools/train_reference_parser.py", *sys.argv[1:]]), "seed": args.seed,
        "styles": {"training": len(train_styles), "of_them_full_names": n_full, "held_out": len(test_styles)},
        "strings": {"training": len(training), "of_them_gold_entries": len(from_gold)},
        "gold_folders": [_shown(folder) for folder in gold],
        "seconds": {"render": round(rendered, 1), "train": round(trained, 1)},
        "model_bytes": model.stat().st_size,
        "training_styles_new_records": score(tagger, seen),
        "held_out_styles_new_records": score(tagger, unseen),
        "held_out_styles_new_records_with_noise": score(tagger, with_noise(unseen, 1.0, 0.0, random.Random(args.seed))),
    }
    model.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
