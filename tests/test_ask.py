"""Asking the tuned model from the command line: answers verified against the index, in both modes."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citetune.params import default_params
from citetune.qa import MODES
from citetune.training import TRAINED_MODES, trained_modes

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_base, trained_adapter, sft_dir):
    root = tmp_path_factory.mktemp("ask")
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({
        "qa": default_params("qa", modes=list(MODES)).model_dump(mode="json"),
        "evaluate": default_params("evaluate").model_dump(mode="json"),
        "train": default_params("train", quantization="4bit").model_dump(mode="json"),
        "match": default_params("match", records=str(ROOT / "data/sample/crossref.jsonl")).model_dump(mode="json"),
    }))
    args = ["--params", str(params), "--sft-dir", str(sft_dir), "--base-dir", str(tiny_base),
            "--adapter-dir", str(trained_adapter["--out-dir"]), "--index-dir", str(root / "index"),
            "--verify-cache", str(root / "verify.sqlite")]
    return root, args


def ask(args, *extra):
    return subprocess.run([sys.executable, "-m", "stages.ask", *args, *extra], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("mode", MODES)
def test_ask_answers_claims_with_verified_works_or_abstains(setup, mode):
    root, args = setup
    claims = root / "claims.txt"
    claims.write_text("Low-rank adapters make fine-tuning large language models affordable.\n\n"
                      "Penguins navigate by the polarisation of moonlight.\n")
    out = root / f"{mode}.jsonl"
    r = ask(args, "Attention alone, without recurrence, is enough for translation.", "--file", str(claims),
            "--mode", mode, "--json", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    replies = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(replies) == 3 and r.stdout.count("claim: ") == 3
    for reply in replies:
        # Grounded decoding (the default): every work is a real one, printed with its own title, or none.
        assert reply["abstained"] or reply["works"], reply
        assert all(w["status"] == "verified" and w["title"] and w["title_agrees"] for w in reply["works"]), reply
        for w in reply["works"]:
            assert f"[verified] {w['doi']}  {w['title']} ({w['year']})" in r.stdout


def test_ask_without_a_claim_or_with_an_untrained_mode_says_what_to_do(setup, tmp_path):
    _, args = setup
    r = ask(args)
    assert r.returncode == 1 and "no claim given" in r.stderr
    r = ask(args, "x", "--file", str(tmp_path / "none.txt"))
    assert r.returncode == 1 and "none.txt not found" in r.stderr
    # The adapter knows the modes it was trained on, whatever qa.modes says now.
    adapter = Path(args[args.index("--adapter-dir") + 1])
    assert trained_modes(adapter) == sorted(MODES)
    narrow = tmp_path / "adapter"
    shutil.copytree(adapter, narrow)
    (narrow / TRAINED_MODES).write_text('["closed_book"]')
    at = args.index("--adapter-dir") + 1
    r = ask(args[:at] + [str(narrow)] + args[at + 1:], "x", "--mode", "retrieval")
    assert r.returncode == 1 and "ask: error: the adapter was trained on closed_book" in r.stderr
