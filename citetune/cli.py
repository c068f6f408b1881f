"""What every stage script shares: argument parsing with --params, logging, clear failures."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from citetune.errors import StageError
from citetune.params import ParamsError, load_params

__all__ = ["StageError", "require_input", "run_stage", "stage_parser"]


def require_input(path: str | Path, producer: str) -> Path:
    """The path of a stage input, or a StageError naming the stage that writes it."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path} not found: run the {producer} stage first (dvc repro {producer})")
    return path


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file to read (default: params.yaml)")
    return parser


def run_stage(section: str, parser: argparse.ArgumentParser, main: Callable, name: str | None = None) -> None:
    """Parse arguments, load the params section, run main(args, params); `name` labels the messages
    (default: the section; a command that reads another stage's section has its own).

    User-facing errors end the stage with the message alone and exit code 1, not a traceback.
    """
    name = name or section
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name}: %(message)s", datefmt="%H:%M:%S")
    args = parser.parse_args()
    try:
        params = load_params(section, args.params)
        main(args, params)
    except (ParamsError, StageError) as e:
        print(f"\n{name}: error: {e}", file=sys.stderr)
        sys.exit(1)
