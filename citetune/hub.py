"""The SFT set on the Hugging Face hub: pushed by qa as a dataset repo (qa.push_to_hub), and read by train
from a dataset repo or a local folder laid out like one when a split is not on disk (train.dataset)."""

from __future__ import annotations

from pathlib import Path

from citetune.errors import StageError
from citetune.io import read_jsonl

TOKEN_HELP = ("set HF_TOKEN to a token with write access (https://huggingface.co/settings/tokens) "
              "or run `hf auth login`")


def push_sft(sft_dir: str | Path, repo_id: str, private: bool, splits: list[str]) -> str:
    """Push the SFT splits (sft_dir/<split>.jsonl; empty ones left out) as the dataset repo `repo_id`,
    with the token huggingface_hub finds (env HF_TOKEN or a login); return the commit's URL."""
    from datasets import load_dataset
    from huggingface_hub import get_token

    if not get_token():
        raise StageError(f"qa.push_to_hub is {repo_id!r} but no Hugging Face token was found: {TOKEN_HELP}; "
                         "or set qa.push_to_hub: '' to keep the set local (it is written either way)")
    files = {s: str(Path(sft_dir) / f"{s}.jsonl") for s in splits if Path(sft_dir, f"{s}.jsonl").stat().st_size}
    try:
        commit = load_dataset("json", data_files=files).push_to_hub(repo_id, private=private)
    except Exception as e:  # auth, permissions, network, a bad repo id: the message says which
        first = str(e).splitlines()[0] if str(e) else ""
        raise StageError(f"could not push the SFT set to the hub dataset {repo_id!r}: {type(e).__name__}: {first}. "
                         f"Check the repo id and that the token may write to it ({TOKEN_HELP}), or set "
                         f"qa.push_to_hub: ''. The local files in {sft_dir} are written and kept") from e
    return commit.commit_url


def load_sft_split(dataset: str, split: str, required: bool = True) -> list[dict]:
    """The records of `split` of the SFT dataset `dataset`: a hub dataset repo id, a local folder laid out like
    one (data files named by split) or one written by save_to_disk. [] when an optional split is absent."""
    import datasets

    try:
        if (Path(dataset) / "dataset_dict.json").exists():
            splits = datasets.load_from_disk(dataset)
        else:
            splits = datasets.load_dataset(dataset)
    except Exception as e:  # not found, not a dataset, no network: the message says which
        first = str(e).splitlines()[0] if str(e) else ""
        raise StageError(f"could not load the SFT set {dataset!r} (train.dataset): {type(e).__name__}: {first}. "
                         "Give a hub dataset repo id (a private one needs HF_TOKEN) or a local dataset folder, "
                         "or run the qa stage (dvc repro qa)") from e
    if split not in splits:
        if required:
            raise StageError(f"the SFT set {dataset!r} (train.dataset) has no {split!r} split "
                             f"(it has {', '.join(splits) or 'none'})")
        return []
    return splits[split].to_list()


def split_records(path: str | Path, dataset: str = "", required: bool = True) -> list[dict]:
    """The SFT records of the split file `path` (train.jsonl, validation.jsonl); when it is absent and `dataset`
    is set, the split of the same name from `dataset`. A malformed file raises ValueError."""
    path = Path(path)
    if path.exists() or not dataset:
        return read_jsonl(path)
    return load_sft_split(dataset, path.stem, required)
