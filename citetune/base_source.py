"""Where the base model comes from (built offline, a local checkpoint, or a hub repo) and getting it: only the
files a model needs, with a record of the source that DVC can watch and the train stage can cite.

A record (models/base_source.json, and models/base/citetune_base.json) has always the same keys:
source (tiny | local | hub), hub_id and revision (as base.model and base.revision name them; hub only),
commit (the commit sha the revision resolved to; hub only, None when the hub could not be asked),
path (the local checkpoint, absolute; local only) and fingerprint (a digest of the local checkpoint's
files: names, sizes, modification times; local only).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

from citetune.errors import StageError
from citetune.io import atomic_dir

log = logging.getLogger(__name__)
BASE_RECORD = "citetune_base.json"

# What transformers loads a model, its tokenizer and chat template from (top-level files of a checkpoint).
MODEL_FILES = ["config.json", "generation_config.json", "tokenizer*", "special_tokens_map.json", "added_tokens.json",
               "vocab.*", "merges.txt", "*.model", "*.tiktoken", "*.jinja", "chat_template.json", "LICENSE*",
               "README.md"]
SAFETENSORS = ["*.safetensors", "*.safetensors.index.json"]
PYTORCH_BIN = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]  # only when there is no safetensors


def record(source: str, **fields) -> dict:
    return {"source": source, "hub_id": None, "revision": None, "commit": None, "path": None,
            "fingerprint": None, **fields}


def model_files(names: Iterable[str]) -> list[str]:
    """The files of a checkpoint that a model needs: config, generation config, tokenizer, chat templates and
    the weights, safetensors (with their index) when there are any, else PyTorch's .bin. Nothing from
    sub-folders (original/, onnx/, ...) but additional_chat_templates/, no gguf, ONNX, Flax or TF weights."""
    from huggingface_hub.utils import filter_repo_objects

    names = [n for n in names if "/" not in n or n.startswith("additional_chat_templates/")]
    weights = (list(filter_repo_objects(names, allow_patterns=SAFETENSORS))
               or list(filter_repo_objects(names, allow_patterns=PYTORCH_BIN)))
    return sorted({*filter_repo_objects(names, allow_patterns=MODEL_FILES), *weights})


def _require_weights(model: str, files: list[str]) -> None:
    if not any(f.endswith((".safetensors", ".bin")) for f in files):
        raise StageError(f"base.model {model!r} has no weights transformers can load (*.safetensors or "
                         "pytorch_model*.bin at its top level): point it at a checkpoint saved with save_pretrained")


def local_checkpoint(model: str) -> Path | None:
    """base.model as a local checkpoint directory; None for a hub id; a StageError for a path that is not one."""
    local = Path(model).expanduser()
    if local.exists():
        if not (local / "config.json").exists():
            raise StageError(f"base.model {model!r} is a path but holds no config.json: point it at a "
                             "directory saved with save_pretrained, or set base.model: tiny")
        return local.resolve()
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise StageError(f"base.model {model!r} looks like a path but does not exist: fix the path, "
                         "or set base.model: tiny")
    return None


def _local_files(local: Path) -> list[str]:
    return model_files(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())


def fingerprint(local: Path) -> str:
    """A digest of the files a model needs in a local checkpoint: their names, sizes and modification times,
    as DVC itself tells a changed file (reading gigabytes of weights at every `dvc repro` would be slow)."""
    digest = hashlib.sha256()
    for name in _local_files(local):
        stat = (local / name).stat()
        digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _hub_failure(model: str, revision: str, e: Exception) -> StageError:
    first = str(e).splitlines()[0] if str(e) else ""
    return StageError(
        f"could not download {model!r} (revision {revision!r}) from the Hugging Face hub: {type(e).__name__}: "
        f"{first}. A gated or private model needs a token (env HF_TOKEN); without hub access set "
        "base.model: tiny, or pass a local path to a model saved with save_pretrained")


def fetch_base(model: str, out_dir: str | Path, revision: str = "main", endpoint: str | None = None) -> dict:
    """Copy a local checkpoint, or download a hub model at `revision`, into `out_dir`: only the files a model
    needs. Return the source's record (the commit the revision resolved to, for a hub model)."""
    local = local_checkpoint(model)
    if local is not None:
        files = _local_files(local)
        _require_weights(model, files)
        with atomic_dir(out_dir) as tmp:
            for name in files:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(local / name, tmp / name)
        return record("local", path=str(local), fingerprint=fingerprint(local))
    from huggingface_hub import HfApi, snapshot_download

    try:
        info = HfApi(endpoint=endpoint).model_info(model, revision=revision)
    except Exception as e:  # network, auth, unknown repo or revision: all fixed the same way
        raise _hub_failure(model, revision, e) from e
    files = model_files(s.rfilename for s in info.siblings or [])
    _require_weights(model, files)
    try:
        with atomic_dir(out_dir) as tmp:
            # At the commit just resolved, so that the files and the record agree even if the branch moves.
            snapshot_download(model, revision=info.sha, local_dir=tmp, endpoint=endpoint,
                              allow_patterns=[glob.escape(f) for f in files])
            shutil.rmtree(tmp / ".cache", ignore_errors=True)  # the download's own bookkeeping
    except Exception as e:
        raise _hub_failure(model, revision, e) from e
    return record("hub", hub_id=model, revision=revision, commit=info.sha)


def locate_base(model: str, revision: str, previous: dict | None = None, endpoint: str | None = None) -> dict:
    """The record of what the base stage would get now, without getting it: a local checkpoint's fingerprint,
    or the commit a hub revision points at. When the hub cannot be asked, the commit `previous` recorded for
    the same model and revision is kept (None if there is none), so that working offline reruns nothing."""
    if model == "tiny":
        return record("tiny")
    local = local_checkpoint(model)
    if local is not None:
        return record("local", path=str(local), fingerprint=fingerprint(local))
    from huggingface_hub import HfApi

    try:
        commit = HfApi(endpoint=endpoint).model_info(model, revision=revision).sha
    except Exception as e:
        same = bool(previous) and (previous.get("hub_id"), previous.get("revision")) == (model, revision)
        commit = previous.get("commit") if same else None
        log.warning("could not ask the hub which commit %s %r is (%s: %s); %s", model, revision,
                    type(e).__name__, str(e).splitlines()[0] if str(e) else "",
                    "keeping the one recorded before" if same else "the base stage will ask again")
    return record("hub", hub_id=model, revision=revision, commit=commit)
