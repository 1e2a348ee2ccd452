"""Publishes the weights of a finished `lqm compare` into this repository's shipped weights:
each model's packed weights (zoo/weights/MODEL-DATASET.npz) and its registry entry
(zoo/weights/registry.json), which says how the run was chosen.

    .venv/bin/python benchmarks/publish.py DIR [--models M ...] [--seed N] [--dry-run]

By default a model ships its selected run, the one `lqm compare` converted: the best
validation accuracy of its seeds (the test split played no part). `--seed N` ships seed N
of every model instead, a rule fixed before any figure is seen. The registry's accuracy is
that of the packed weights on the test split, as `lqm evaluate NAME` measures it.

A maintainer's step, run by hand: it writes into the repository's files and commits
nothing; review `git diff zoo/weights` and commit it yourself. No library call runs it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)

WEIGHTS_DIR = ROOT / "zoo" / "weights"
REGISTRY_FILE = WEIGHTS_DIR / "registry.json"


def chosen_run(report: dict, model: str, seed: int | None = None) -> dict:
    """The run of `model` to publish from a compare's report.json: its selected run (best
    validation accuracy), or seed `seed` where given."""
    runs = [r for r in report["runs"] if r["model"] == model]
    if not runs:
        raise SystemExit(f"{model} is not in this comparison ({', '.join(report['settings']['models'])})")
    if seed is None:
        selected = next(m["selected_run"] for m in report["models"] if m["model"] == model)
        return next(r for r in runs if r["run"] == selected)
    found = [r for r in runs if r["seed"] == seed]
    if not found:
        raise SystemExit(f"{model} has no seed {seed} in this comparison")
    return found[0]


def how_chosen(report: dict, seed: int | None) -> str:
    seeds = report["settings"]["seeds"]
    if seed is None:
        return f"best validation accuracy of seeds 0-{seeds - 1} ({100 * report['settings']['validation_split']:g}% of train held out)"
    return f"seed {seed} of 0-{seeds - 1}, fixed before training (a stated rule)"


def weights_file(model: str, dataset: str) -> str:
    return f"{model}-{dataset}.npz"


def entry(report: dict, run: dict, config: dict, *, seed_rule: int | None, sha256: str, accuracy: float,
          source: str, date: str) -> dict:  # fmt: skip
    """The registry entry (zoo.pretrained.Weights' fields) of `run` (a report.json run) with
    `config` its config.json, its packed file's `sha256` and test `accuracy`."""
    recipe, info = config["recipe"], config.get("info", {})
    return {
        "model": run["model"],
        "dataset": report["settings"]["dataset"],
        "file": weights_file(run["model"], report["settings"]["dataset"]),
        "sha256": sha256,
        "accuracy": round(accuracy, 4),
        "recipe": {
            "recipe": report["settings"]["recipe"], "compare": source, "steps": 2 if recipe["recipe"] == "two-step" else 1,
            "epochs": recipe["epochs"], "batch_size": recipe["batch_size"], "learning_rate": recipe["learning_rate"],
            "optimizer": "adam, linear decay to 0 per step" if recipe["schedule"] == "linear" else "adam, step decay",
            "teacher": report["teacher"] if config.get("teacher") else None, "train_split": f"train less a {100 * report['settings']['validation_split']:g}% validation part",
            "seed": run["seed"], "chosen_by": how_chosen(report, seed_rule),
            "validation_accuracy": run["validation_accuracy"], "run": f"{source}/{run['run']}", "method": config["method"],
        },  # fmt: skip
        "date": date,
        "alpha": config["alpha"],
        "input_shape": info.get("input_shape") or [config["data"]["image_size"]] * 2 + [config["data"]["channels"]],
        "num_classes": info["num_classes"],
    }


def with_entry(registry: list[dict], new: dict) -> list[dict]:
    """`registry` with `new` added, replacing the entry of the same (model, dataset), sorted."""
    kept = [e for e in registry if (e["model"], e["dataset"]) != (new["model"], new["dataset"])]
    return sorted([*kept, new], key=lambda e: (e["model"], e["dataset"]))


def measure(directory: Path, run: dict, path: Path, test_split: str) -> float:
    """Packs the run's model.h5 into `path` and returns the packed weights' test accuracy."""
    import tensorflow as tf

    from larq_methods import data, precise_bn, saving
    from zoo import create_model, pretrained
    from zoo.run import RunConfig

    config = RunConfig.load(directory / run["run"])
    pretrained.save_packed(saving.load_model(directory / run["run"] / "model.h5"), path)
    shape = (config.data.image_size, config.data.image_size, config.data.channels)
    test_set = config.data.load(test_split, config.seed)
    model = create_model(config.model, input_shape=shape, num_classes=test_set.num_classes, alpha=config.alpha,
                         method=config.method, weights=str(path))  # fmt: skip
    batches = data.pipeline(test_set, image_size=shape[0], channels=shape[2], batch_size=256, training=False)
    accuracy = precise_bn.top1(model, batches)
    tf.keras.backend.clear_session()
    return accuracy


def earlier_study(models, seed: int, registry: list[dict]) -> list[dict]:
    """Re-publishes `models` of the studies before `lqm compare` (their runs kept under
    benchmarks/results/study10 and study15, which held out no validation part) at seed
    `seed` of the same study: a rule fixed in advance, so that no test figure chooses."""
    from zoo import create_model, pretrained

    from larq_methods import data, precise_bn
    from larq_methods.method import Method

    for model in models:
        old = next(e for e in registry if e["model"] == model)
        run = ROOT / Path(old["recipe"]["run"]).parent / f"{model}-s{seed}"
        path = WEIGHTS_DIR / old["file"]
        path.write_bytes((run / "model.npz").read_bytes())
        config = json.loads((run / "config.json").read_text())
        test_set = data.load(old["dataset"], config["data"]["eval_split"])
        shape = tuple(old["input_shape"])
        built = create_model(model, input_shape=shape, num_classes=old["num_classes"], alpha=old["alpha"],
                             method=Method(**old["recipe"]["method"]), weights=str(path))  # fmt: skip
        batches = data.pipeline(test_set, image_size=shape[0], channels=shape[2], batch_size=256, training=False)
        accuracy = precise_bn.top1(built, batches)
        record = json.loads((run / "results.json").read_text())
        recipe = {**old["recipe"], "seed": seed, "run": str(run.relative_to(ROOT)), "code": record.get("code", "?"),
                  "chosen_by": f"seed {seed}, fixed by rule (the study held out no validation part)"}  # fmt: skip
        new = {**old, "sha256": pretrained.sha256(path), "accuracy": round(accuracy, 4), "recipe": recipe}
        registry = with_entry(registry, new)
        print(f"{model}: {run.relative_to(ROOT)}, {100 * accuracy:.2f}% on {test_set.split}", flush=True)
    return registry


def withdraw(models, registry: list[dict]) -> list[dict]:
    """`registry` without `models`' entries, their files removed (a model whose graph
    changed: its weights no longer fit it until it is trained again)."""
    for e in registry:
        if e["model"] in models:
            (WEIGHTS_DIR / e["file"]).unlink(missing_ok=True)
            print(f"{e['model']}: withdrawn")
    return [e for e in registry if e["model"] not in models]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, nargs="?", help="A finished `lqm compare` folder (with report.json).")
    parser.add_argument("--models", nargs="+", help="Publish these of its models [default: all].")
    parser.add_argument("--seed", type=int, help="Publish this seed of every model instead of the validation's choice.")
    parser.add_argument("--dry-run", action="store_true", help="Print the entries; write nothing.")
    parser.add_argument("--earlier-study", nargs="+", metavar="MODEL", help="Instead: re-publish these models of the studies before `lqm compare` at --seed (default 0).")
    parser.add_argument("--withdraw", nargs="+", metavar="MODEL", help="Instead: remove these models' weights and entries.")
    args = parser.parse_args(argv)
    from zoo import pretrained

    if args.earlier_study or args.withdraw:
        registry = json.loads(REGISTRY_FILE.read_text())
        if args.withdraw:
            registry = withdraw(args.withdraw, registry)
        if args.earlier_study:
            registry = earlier_study(args.earlier_study, args.seed or 0, registry)
        REGISTRY_FILE.write_text(json.dumps(registry, indent=1) + "\n")
        return

    report = json.loads((args.directory / "report.json").read_text())
    if Path(report["settings"]["dataset"]).exists():
        raise SystemExit("weights are published for a named dataset (fashion_mnist, a TFDS name), not a folder")
    registry = json.loads(REGISTRY_FILE.read_text()) if REGISTRY_FILE.exists() else []
    source = str(args.directory.resolve().relative_to(ROOT) if args.directory.resolve().is_relative_to(ROOT) else args.directory)
    for model in args.models or report["settings"]["models"]:
        run = chosen_run(report, model, args.seed)
        config = json.loads((args.directory / run["run"] / "config.json").read_text())
        path = WEIGHTS_DIR / weights_file(model, report["settings"]["dataset"])
        target = Path(tempfile.mkdtemp()) / path.name if args.dry_run else path
        accuracy = measure(args.directory, run, target, report["test_split"])
        new = entry(report, run, config, seed_rule=args.seed, sha256=pretrained.sha256(target), accuracy=accuracy,
                    source=source, date=datetime.date.today().isoformat())  # fmt: skip
        if args.dry_run:
            target.unlink()
            print(json.dumps(new, indent=1))
        registry = with_entry(registry, new)
        print(f"{model}: {run['run']} ({new['recipe']['chosen_by']}), {100 * accuracy:.2f}% on {report['test_split']}"
              f"{' (dry run)' if args.dry_run else f' -> {path.relative_to(ROOT)}'}", flush=True)  # fmt: skip
    if not args.dry_run:
        REGISTRY_FILE.write_text(json.dumps(registry, indent=1) + "\n")
        print(f"wrote {REGISTRY_FILE.relative_to(ROOT)}; review `git diff zoo/weights` and commit it by hand")


if __name__ == "__main__":
    main()
