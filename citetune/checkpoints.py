"""Training checkpoints that survive a kill: a rerun on the same inputs resumes from the last whole one.

The checkpoint folder records what the run was trained on (params, data, base): checkpoints of any
other run are thrown away rather than resumed, and the folder goes once the adapter is saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

from citetune.io import file_sha256, write_json

log = logging.getLogger(__name__)
RUN_FILE = "run.json"
# What each loop writes into a checkpoint last (the Trainer, the manual loop): a folder without one was cut
# short by the kill.
COMPLETE_MARKERS = ("trainer_state.json", "loop_state.pt")
# Params that change how often a run saves, not what it learns.
NOT_LEARNED = {"save_steps", "launcher"}


def run_fingerprint(params, inputs: list[str | Path], base_dir: str | Path, processes: int = 1) -> str:
    """A digest of everything the run depends on: the train params, the data files (by content), the base's
    files (by name, size and time: hashing gigabytes of weights at every start would cost minutes) and
    the number of processes (a checkpoint holds one data order per process count)."""
    learned = params.model_dump(mode="json", exclude=NOT_LEARNED)
    digest = hashlib.sha256(json.dumps([learned, processes], sort_keys=True).encode())
    for path in map(Path, inputs):
        digest.update(f"{path.name}:{file_sha256(path) if path.exists() else '-'}".encode())
    for path in sorted(p for p in Path(base_dir).rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(base_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def step_of(folder: Path) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
    return int(match.group(1)) if match else -1


def last_complete(checkpoint_dir: str | Path) -> Path | None:
    """The latest checkpoint a loop finished writing, if any."""
    folders = sorted((p for p in Path(checkpoint_dir).glob("checkpoint-*") if step_of(p) >= 0), key=step_of)
    whole = [p for p in folders if any((p / name).exists() for name in COMPLETE_MARKERS)]
    return whole[-1] if whole else None


def resume_point(checkpoint_dir: str | Path, fingerprint: str) -> Path | None:
    """The checkpoint to resume from, or None; checkpoints of another run are removed first."""
    checkpoint_dir = Path(checkpoint_dir)
    run_file = checkpoint_dir / RUN_FILE
    recorded = json.loads(run_file.read_text(encoding="utf-8")).get("fingerprint") if run_file.exists() else None
    if recorded != fingerprint:
        if checkpoint_dir.exists() and any(checkpoint_dir.iterdir()):
            log.info("%s holds checkpoints of another run (other params, data or base): starting afresh",
                     checkpoint_dir)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        checkpoint_dir.mkdir(parents=True)
        write_json(run_file, {"fingerprint": fingerprint})
        return None
    return last_complete(checkpoint_dir)


def finish(checkpoint_dir: str | Path) -> None:
    """The adapter is saved: its checkpoints are no longer needed."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
