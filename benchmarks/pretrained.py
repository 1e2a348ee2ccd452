"""Every registered weights file, fetched and evaluated exactly as a user would: `lqm download`
into an empty cache (checked by sha256), then `lqm evaluate NAME`; the measured test accuracy
against the one the registry states.

    .venv/bin/python benchmarks/pretrained.py [--models PATTERN] [--dataset fashion_mnist]

Each model runs in a fresh `lqm` process. Writes benchmarks/results/pretrained.md.
"""

import argparse
import fnmatch
import json
import os
import subprocess
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo import pretrained  # noqa: E402

LQM = Path(sys.executable).with_name("lqm")


def lqm(*args, env):
    proc = subprocess.run([str(LQM), *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"lqm {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1]}")
    return proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="*")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--output", default="benchmarks/results/pretrained.md")
    args = parser.parse_args()

    entries = [e for e in pretrained.entries() if e.dataset == args.dataset and fnmatch.fnmatchcase(e.model, args.models)]
    rows = [
        "| model | registered accuracy | `lqm evaluate` accuracy | difference (points) | evaluation s |",
        "| --- | --- | --- | --- | --- |",
    ]
    worst = 0.0
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, pretrained.CACHE_ENV: cache, "TF_CPP_MIN_LOG_LEVEL": "3"}
        for entry in entries:
            lqm("download", entry.model, "--dataset", args.dataset, env=env)
            result = json.loads(lqm("evaluate", entry.model, "--dataset", args.dataset, env=env).splitlines()[-1])
            diff = 100 * (result["accuracy"] - entry.accuracy)
            worst = max(worst, abs(diff))
            rows.append(
                f"| `{entry.model}` | {100 * entry.accuracy:.2f}% | {100 * result['accuracy']:.2f}% | "
                f"{diff:+.2f} | {result['seconds']:.0f} |"
            )
            print(rows[-1], flush=True)
    command = shlex.join(["python", "benchmarks/pretrained.py", *sys.argv[1:]])
    text = (
        f"Every registered {args.dataset} weights file, downloaded into an empty cache and evaluated "
        f"with `lqm evaluate NAME` on the whole test split; largest difference from the registry: "
        f"{worst:.2f} points. Made by `{command}`.\n\n" + "\n".join(rows) + "\n"
    )
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
