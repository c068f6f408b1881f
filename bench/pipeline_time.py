"""Time the default pipeline: a full `dvc repro` from scratch, then a no-op `dvc repro`.

Run from the project root with the environment activated:  python bench/pipeline_time.py
It forces every stage (`dvc repro -f`), so it rewrites the workspace outputs.
"""

import re
import subprocess
import time


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - start, r.stdout + r.stderr


def main() -> None:
    full, out = timed(["dvc", "repro", "-f"])
    stages = re.findall(r"Running stage '(\w+)'", out)
    noop, _ = timed(["dvc", "repro"])
    print(f"full dvc repro -f ({len(stages)} stages): {full:.1f} s")
    print(f"no-op dvc repro: {noop:.2f} s")
    with open("metrics/eval.json") as f:
        print("eval:", f.read())


if __name__ == "__main__":
    main()
