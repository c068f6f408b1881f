"""The hub, local first: the base fetched from a loopback hub (only the files a model needs, at a recorded
commit), the base stage rerun by DVC when a local checkpoint or a hub revision changes, the SFT set pushed
by qa and read back from the hub (failures said clearly, local files kept), and read by train from a local dataset repo."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citetune.base_source import (
    BASE_RECORD,
    fetch_base,
    fingerprint,
    locate_base,
    model_files,
)
from citetune.errors import StageError
from citetune.hub import load_sft_split, push_sft
from citetune.io import read_jsonl, write_csv
from citetune.models import load_base
from citetune.params import default_params
from citetune.testing.hub_server import HubServer
from citetune.testing.sft_sample import sample_tables
from citetune.testing.standins import build_standin
from citetune.training import TRAINED_MODES, load_split, train_adapter

ROOT = Path(__file__).resolve().parents[1]
CLOSED = "http://127.0.0.1:9"  # nothing listens there: the hub cannot be reached

# File lists as the hub lists them (meta-llama/Llama-3.1-8B-Instruct, Qwen/Qwen2.5-0.5B-Instruct).
LLAMA = [".gitattributes", "LICENSE", "README.md", "USE_POLICY.md", "config.json", "generation_config.json",
         "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors", "model-00003-of-00004.safetensors",
         "model-00004-of-00004.safetensors", "model.safetensors.index.json", "original/consolidated.00.pth",
         "original/params.json", "original/tokenizer.model", "special_tokens_map.json", "tokenizer.json",
         "tokenizer_config.json"]
QWEN = [".gitattributes", "LICENSE", "README.md", "config.json", "generation_config.json", "merges.txt",
        "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.json"]


def test_model_files_keep_config_tokenizer_templates_and_one_kind_of_weights():
    assert model_files(LLAMA) == [
        "LICENSE", "README.md", "config.json", "generation_config.json", "model-00001-of-00004.safetensors",
        "model-00002-of-00004.safetensors", "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
        "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert model_files(QWEN) == sorted(set(QWEN) - {".gitattributes"})
    everything = ["config.json", "tokenizer.model", "chat_template.jinja", "additional_chat_templates/tool_use.jinja",
                  "model.safetensors", "pytorch_model.bin", "model.pth", "tf_model.h5", "flax_model.msgpack",
                  "model.gguf", "onnx/model.onnx", "onnx/config.json", "rust_model.ot", "checkpoint-500/model.safetensors"]
    assert model_files(everything) == ["additional_chat_templates/tool_use.jinja", "chat_template.jinja",
                                       "config.json", "model.safetensors", "tokenizer.model"]
    sharded_bin = ["config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
                   "pytorch_model.bin.index.json", "model.gguf", "tokenizer.json"]
    assert model_files(sharded_bin) == sorted(set(sharded_bin) - {"model.gguf"})


def _hub_repo(model_dir: Path) -> dict[str, bytes]:
    """A model's files as a hub repo would hold them, with what a model does not need beside them."""
    files = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()}
    return {**files, ".gitattributes": b"*.safetensors filter=lfs\n", "pytorch_model.bin": b"old weights",
            "original/consolidated.00.pth": b"meta weights", "model.gguf": b"GGUF", "onnx/model.onnx": b"onnx"}


def test_fetch_base_downloads_only_what_the_model_needs_at_the_commit_it_records(tiny_base, tmp_path):
    with HubServer({"org/tiny": _hub_repo(tiny_base)}) as hub:
        source = fetch_base("org/tiny", tmp_path / "base", "main", endpoint=hub.url)
        commit = hub.repos["org/tiny"][0]
        wanted = model_files(p.name for p in tiny_base.iterdir())
        assert sorted(d.removeprefix("org/tiny/") for d in hub.downloads) == wanted
    assert source == {"source": "hub", "hub_id": "org/tiny", "revision": "main", "commit": commit,
                      "path": None, "fingerprint": None}
    assert sorted(p.name for p in (tmp_path / "base").iterdir()) == wanted  # no .cache, no leftovers
    assert load_base(tmp_path / "base", "none", "cpu").config.hidden_size == 64
    with HubServer({}) as hub, pytest.raises(StageError, match="base.model: tiny"):
        fetch_base("org/none", tmp_path / "none", "main", endpoint=hub.url)
    assert not (tmp_path / "none").exists() and not list(tmp_path.glob(".none.*"))
    with HubServer({"org/ggml": {"config.json": b"{}", "model.gguf": b"GGUF"}}) as hub, \
            pytest.raises(StageError, match="no weights"):
        fetch_base("org/ggml", tmp_path / "ggml", "main", endpoint=hub.url)


def test_the_record_follows_a_moved_revision_and_keeps_its_commit_offline():
    with HubServer({"org/m": {"config.json": b"{}", "model.safetensors": b"1"}}) as hub:
        first = locate_base("org/m", "main", endpoint=hub.url)
        assert first["commit"] == hub.repos["org/m"][0]
        assert locate_base("org/m", "main", first, endpoint=hub.url) == first
        second = hub.publish("org/m", {"config.json": b"{}", "model.safetensors": b"2"})
        assert locate_base("org/m", "main", first, endpoint=hub.url)["commit"] == second != first["commit"]
    assert locate_base("org/m", "main", first, endpoint=CLOSED) == first  # offline: nothing reruns
    assert locate_base("org/m", "v2", first, endpoint=CLOSED)["commit"] is None  # another revision: unknown
    assert locate_base("tiny", "main")["source"] == "tiny"


def _checkpoint(root: Path) -> Path:
    """A small real checkpoint (a Qwen2.5-like stand-in): weights, config, tokenizer and chat template."""
    return build_standin("qwen2.5", root, ["a few words to train a tokenizer on"] * 4, vocab_size=300)


def test_a_local_fingerprint_changes_with_the_files_a_model_needs_only(tmp_path):
    ckpt = _checkpoint(tmp_path / "ckpt")
    before = fingerprint(ckpt)
    (ckpt / "original").mkdir()
    (ckpt / "original" / "consolidated.00.pth").write_bytes(b"x")
    (ckpt / "optimizer.pt").write_bytes(b"state")
    assert fingerprint(ckpt) == before
    (ckpt / "model.safetensors").write_bytes(b"WEIGHTS")  # same size, another time
    os.utime(ckpt / "model.safetensors", ns=(1, 1))
    assert fingerprint(ckpt) != before
    source = fetch_base(str(ckpt), tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(
        p.name for p in ckpt.iterdir() if p.is_file() and p.name != "optimizer.pt")
    assert source == {"source": "local", "hub_id": None, "revision": None, "commit": None,
                      "path": str(ckpt.resolve()), "fingerprint": fingerprint(ckpt)}


def test_base_stage_records_a_hub_model_it_fetched(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"base": default_params("base", model="org/m").model_dump(mode="json")}))
    checkpoint = _checkpoint(tmp_path / "checkpoint")
    files = {p.name: p.read_bytes() for p in checkpoint.iterdir()} | {"model.gguf": b"g"}
    with HubServer({"org/m": files}) as hub:
        env = dict(os.environ, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"))
        for stage, out in (("base_source", "--out"), ("base", "--out-dir")):
            cmd = [sys.executable, "-m", f"stages.{stage}", "--params", str(params), out,
                   str(tmp_path / ("source.json" if stage == "base_source" else "base"))]
            if stage == "base":
                cmd += ["--sample-dir", "data/sample"]
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
            assert r.returncode == 0, r.stderr
        commit = hub.repos["org/m"][0]
    recorded = json.loads((tmp_path / "base" / BASE_RECORD).read_text())
    assert recorded == json.loads((tmp_path / "source.json").read_text())
    assert recorded["hub_id"] == "org/m" and recorded["revision"] == "main" and recorded["commit"] == commit
    assert sorted(p.name for p in (tmp_path / "base").iterdir()) == sorted([BASE_RECORD, *(set(files) - {"model.gguf"})])


@pytest.mark.slow
def test_dvc_reruns_base_when_the_local_checkpoint_changes(tmp_path):
    ckpt = _checkpoint(tmp_path / "ckpt")
    repo = tmp_path / "repo"
    for folder in ("citetune", "stages", "data/sample"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {k: stages[k] for k in ("base_source", "base")}}))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["base"]["model"] = str(ckpt)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")

    def sh(*cmd):
        r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    assert "Running stage 'base'" in sh("dvc", "repro")
    assert json.loads((repo / "models/base" / BASE_RECORD).read_text())["path"] == str(ckpt)
    assert "Stage 'base' didn't change" in sh("dvc", "repro")
    assert sh("dvc", "status").split() == ["base_source:", "always", "changed"]  # it looks at every run
    (ckpt / "optimizer.pt").write_bytes(b"not a model file")
    assert "Stage 'base' didn't change" in sh("dvc", "repro")
    (ckpt / "model.safetensors").write_bytes(b"new weights")
    assert "Running stage 'base'" in sh("dvc", "repro")
    assert (repo / "models/base/model.safetensors").read_bytes() == b"new weights"


# --- the SFT set as a hub dataset ---------------------------------------------------------

def _qa(tmp_path, env, push_to_hub="you/citetune-sft"):
    citations, references = sample_tables()
    write_csv(tmp_path / "citations.csv", citations)
    write_csv(tmp_path / "references.csv", references)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"qa": default_params("qa", push_to_hub=push_to_hub).model_dump(mode="json")}))
    return subprocess.run([sys.executable, "-m", "stages.qa", "--params", str(params),
                           "--citations", str(tmp_path / "citations.csv"), "--references", str(tmp_path / "references.csv"),
                           "--out-dir", str(tmp_path / "sft"), "--metrics", str(tmp_path / "qa.json"),
                           "--writer-cache", str(tmp_path / "writer.sqlite")],
                          cwd=ROOT, capture_output=True, text=True, env=env)


def test_qa_push_without_a_token_or_refused_says_what_to_do_and_keeps_the_local_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env["HF_HOME"] = str(tmp_path / "hf")  # no stored login either
    r = _qa(tmp_path / "no-token", env)
    assert r.returncode == 1 and "HF_TOKEN" in r.stderr and "qa.push_to_hub: ''" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and read_jsonl(tmp_path / "no-token" / "sft" / "train.jsonl")
    with HubServer({}) as hub:  # it refuses to create the repo, as the hub does for a read-only token
        r = _qa(tmp_path / "refused", dict(env, HF_TOKEN="hf_read_only", HF_ENDPOINT=hub.url))
    assert r.returncode == 1 and "could not push the SFT set to the hub dataset 'you/citetune-sft'" in r.stderr
    assert "401" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert read_jsonl(tmp_path / "refused" / "sft" / "train.jsonl") and (tmp_path / "refused" / "qa.json").exists()
    assert _qa(tmp_path / "off", env, push_to_hub="").returncode == 0


READ_BACK = """
import json, sys
from citetune.hub import load_sft_split
print(json.dumps({split: load_sft_split(sys.argv[1], split, required=False) for split in sys.argv[2:]}))
"""


def test_qa_pushes_the_sft_set_and_train_reads_it_back_from_the_hub(tmp_path):
    # The loopback hub takes large files through the LFS protocol, which huggingface_hub uses without Xet.
    env = dict(os.environ, HF_TOKEN="hf_write", HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_XET="1")
    with HubServer({}, write_tokens={"hf_write"}) as hub:
        env["HF_ENDPOINT"] = hub.url
        r = _qa(tmp_path / "first", env)
        assert r.returncode == 0, r.stderr
        assert f"qa: pushed to the hub dataset you/citetune-sft ({hub.url}/datasets/you/citetune-sft/commit/" in r.stdout
        assert hub.created == [{"name": "citetune-sft", "organization": "you", "visibility": "private",
                                "type": "dataset"}]
        commit, files = hub.datasets["you/citetune-sft"]
        assert sorted(files) == ["README.md", "data/test-00000-of-00001.parquet",
                                 "data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"]
        read = subprocess.run([sys.executable, "-c", READ_BACK, "you/citetune-sft", "train", "validation", "test"],
                              cwd=ROOT, capture_output=True, text=True, env=env)
        assert read.returncode == 0, read.stderr
        for split, records in json.loads(read.stdout).items():  # what train gets is what qa wrote
            assert records == read_jsonl(tmp_path / "first" / "sft" / f"{split}.jsonl"), split
        # A second push replaces the splits in a new commit rather than adding beside them.
        (tmp_path / "second").mkdir()
        assert _qa(tmp_path / "second", env).returncode == 0
        assert hub.datasets["you/citetune-sft"][0] != commit and len(hub.commits) == 2
        assert sorted(hub.datasets["you/citetune-sft"][1]) == sorted(files)


def test_push_sft_checks_the_token_before_anything(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    with pytest.raises(StageError, match="no Hugging Face token"):
        push_sft(tmp_path / "absent", "you/sft", True, ["train"])


def _local_dataset_repos(sft_dir: Path, root: Path) -> dict[str, Path]:
    """The SFT set as a dataset repo lays it out (parquet shards under data/, named by split, as push_to_hub
    writes them), and as save_to_disk writes it; both without validation, to show it is optional."""
    from datasets import load_dataset

    splits = load_dataset("json", data_files={s: str(sft_dir / f"{s}.jsonl") for s in ("train", "test")})
    for split, ds in splits.items():
        ds.to_parquet(root / "hub" / "data" / f"{split}-00000-of-00001.parquet")
    splits.save_to_disk(root / "disk")
    return {"hub": root / "hub", "disk": root / "disk"}


def test_train_reads_a_local_dataset_repo_when_the_split_is_not_on_disk(sft_dir, tmp_path):
    local, _ = load_split(sft_dir / "train.jsonl")
    for kind, repo in _local_dataset_repos(sft_dir, tmp_path).items():
        ds, skipped = load_split(tmp_path / "absent" / "train.jsonl", dataset=str(repo))
        assert ds.to_list() == local.to_list() and skipped == [], kind
        assert load_split(tmp_path / "absent" / "validation.jsonl", required=False, dataset=str(repo)) == (None, [])
        with pytest.raises(StageError, match="no 'validation' split"):
            load_sft_split(str(repo), "validation")
    on_disk, _ = load_split(sft_dir / "train.jsonl", dataset=str(tmp_path / "nowhere"))  # the file wins
    assert on_disk.to_list() == local.to_list()
    with pytest.raises(StageError, match="train.dataset"):
        load_split(tmp_path / "absent" / "train.jsonl", dataset=str(tmp_path / "nowhere"))
    with pytest.raises(StageError, match="or set train.dataset"):
        load_split(tmp_path / "absent" / "train.jsonl")


@pytest.mark.slow
def test_train_stage_trains_on_a_local_dataset_repo(sft_dir, tiny_base, tmp_path):
    repo = _local_dataset_repos(sft_dir, tmp_path)["hub"]
    params = default_params("train", dataset=str(repo), batch_size=4, max_length=448)
    metrics = train_adapter(params, tmp_path / "absent/train.jsonl", tmp_path / "absent/validation.jsonl", tiny_base,
                            tmp_path / "adapter", live_dir=None, device="cpu", max_steps=1)
    assert metrics["examples"] == len(read_jsonl(sft_dir / "train.jsonl")) and metrics["eval_loss"] is None
    modes = {r["mode"] for r in read_jsonl(sft_dir / "train.jsonl")}
    assert json.loads((tmp_path / "adapter" / TRAINED_MODES).read_text()) == sorted(modes)
