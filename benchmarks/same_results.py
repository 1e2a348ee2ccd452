"""Proof that a change of the code left training unchanged: the same small runs at an
older commit and at this checkout, compared bit for bit.

One two-step run per method family (alpha 0.25, a few hundred Fashion-MNIST images, seed
0, op determinism on), trained through `lqm train` at both trees; then every
`history.csv` (all columns but time) and every weight of every `model.h5` (step 1, step 2
and the final one) must be equal to the last bit. Not a test: kernels differ between
machines, so both sides run here, one after the other.

    python benchmarks/same_results.py --base 00d7da5            # every family
    python benchmarks/same_results.py --base 00d7da5 --models reactnet-18 rebnn-resnet18

The older tree is exported with `git archive` into a temporary folder (read-only use of
the repository). Exit status 0 when every run matches.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# one run per method family: (name, extra `lqm train` options)
RUNS = (
    ("reactnet-18", ()),
    ("insta-resnet18", ()),
    ("insta-plus-resnet18", ()),
    ("dybnn-resnet18", ()),
    ("rebnn-resnet18", ()),
    # FTBNN's groups need 32 channels per group: alpha 1 (at 0.25 it would need groups=1)
    ("ftbnn-resnet18", ("--alpha", "1.0")),
    ("gaaf-resnet18", ()),
    ("reactnet-a", ()),
    ("birealnet", ()),
    # distillation from a float teacher trained first (the paper recipe's policy)
    ("insta-resnet18", ("--recipe", "paper", "--epochs", "1")),
)
COMMON = ("--alpha", "0.25", "--seed", "0", "--train-split", "train[:384]", "--eval-split", "test[:128]", "--batch-size", "64")
# history columns that measure time, not training
TIMING = ("seconds", "time", "epoch_seconds")


def export(rev: str, into: Path) -> Path:
    """The tree of commit `rev` in `into`."""
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), rev], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def train(tree: Path, model: str, extra, run_dir: Path) -> None:
    """`lqm train` of the code in `tree` (its own packages first on the path)."""
    options = ("--recipe", "two-step", "--epochs", "1", *COMMON, *extra)  # the last of an option wins
    code = "import sys; from cli.main import lqm; sys.exit(lqm())"
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_USE_LEGACY_KERAS": "1"}
    command = [sys.executable, "-c", code, "train", model, *options, "-o", str(run_dir)]
    proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{tree}: lqm train {model} failed:\n{proc.stderr[-2000:]}")


def histories(run_dir: Path) -> dict[str, list[dict]]:
    found = {}
    for path in sorted(run_dir.rglob("history.csv")):
        with open(path, newline="") as f:
            rows = [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]
        found[str(path.relative_to(run_dir))] = rows
    return found


def weights(run_dir: Path) -> dict[str, bytes]:
    """Every weight array of every model.h5, by file and HDF5 path, as raw bytes."""
    found = {}
    for path in sorted(run_dir.rglob("model.h5")):
        with h5py.File(path, "r") as f:

            def visit(name, item, path=path):
                if isinstance(item, h5py.Dataset):
                    found[f"{path.relative_to(run_dir)}:{name}"] = np.asarray(item).tobytes()

            f["model_weights"].visititems(visit)
    return found


def compare(a: Path, b: Path) -> list[str]:
    """The differences between two run folders (empty when bit-identical)."""
    problems = []
    ha, hb = histories(a), histories(b)
    if ha.keys() != hb.keys():
        problems.append(f"history files differ: {sorted(ha)} vs {sorted(hb)}")
    problems += [f"{name}: history differs" for name in ha.keys() & hb.keys() if ha[name] != hb[name]]
    wa, wb = weights(a), weights(b)
    if len(wa) != len(wb):
        problems.append(f"{len(wa)} weights vs {len(wb)}")
    # the same weights in the same order (layer names may be numbered differently)
    for (na, va), (nb, vb) in zip(sorted(wa.items()), sorted(wb.items())):
        if va != vb:
            problems.append(f"weight {na} differs from {nb}")
    if not wa:
        problems.append("no weights found")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="The older commit to compare with.")
    parser.add_argument("--models", nargs="*", help="Only these runs (by model name).")
    parser.add_argument("--keep", type=Path, help="Keep the run folders here (and reuse the finished ones).")
    parser.add_argument("--base-only", action="store_true", help="Only train the base side's runs (into --keep).")
    args = parser.parse_args(argv)
    runs = [(i, *r) for i, r in enumerate(RUNS) if not args.models or r[0] in args.models]
    with tempfile.TemporaryDirectory(prefix="lqm-same-") as tmp:
        work = args.keep or Path(tmp)
        base = export(args.base, Path(tmp))
        failed = 0
        for index, model, extra in runs:
            label = f"{model}{' ' + ' '.join(extra) if extra else ''}"
            folders = [work / f"{side}-{index}-{model}" for side in ("base", "head")]
            for tree, folder in zip((base, ROOT), folders):
                if not (args.keep and (folder / "results.json").exists()):  # kept from an earlier call
                    shutil.rmtree(folder, ignore_errors=True)  # a run cut short
                    train(tree, model, extra, folder)
                if args.base_only:
                    break
            if args.base_only:
                print(f"{label:40s} trained at {args.base}", flush=True)
                continue
            problems = compare(*folders)
            failed += bool(problems)
            print(f"{label:40s} {'identical' if not problems else 'DIFFERS: ' + '; '.join(problems[:3])}", flush=True)
        if not args.base_only:
            print(f"{len(runs) - failed} of {len(runs)} runs bit-identical to {args.base}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
