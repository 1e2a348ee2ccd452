"""A leaderboard of every registered model on Fashion-MNIST on equal terms: the same width,
recipe and budget, several seeds; mean and spread of test accuracy, and wall time.

    .venv/bin/python benchmarks/leaderboard.py [--seeds 0 1] [--alpha 0.25]
        [--train-split 'train[:20000]'] [--epochs 1] [--models PATTERN]

Every model trains with the library's one-step recipe (`zoo.run.run`, as `lqm train`
does, deterministic): Adam 1e-3 decayed linearly to zero per step, batch 128, 28x28x1, the
split and epochs given, then is evaluated on the whole test split (10,000 images). Run
folders go to runs/leaderboard/MODEL-sSEED/ and each finished run's figures to
runs/leaderboard/results.jsonl, so an interrupted leaderboard resumes where it stopped.

Writes benchmarks/results/leaderboard.md and leaderboard.png: smoke results at a budget
far from convergence. The shipped weights come from the study (`benchmarks/study.md`).

FTBNN's two groups need 32 channels per group, which alpha 0.25 does not give (16): its
row trains FTBNN's other parts (FPReLU, binary downsampling) with groups=1, and says so.
"""

import argparse
import datetime
import fnmatch
import json
import shutil
import statistics
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from larq_methods import saving, training  # noqa: E402
from larq_methods.method import GroupedConvolutionError  # noqa: E402
from zoo.run import DataConfig, RunConfig, run, run_name  # noqa: E402

WORK = Path("runs/leaderboard")
RESULTS = Path("benchmarks/results")


def method_for(name, alpha, shape, classes):
    """The model's own method, or, where its groups cannot be binarised at this width,
    the same method with groups=1 (and a note)."""
    method = zoo.get_entry(name).method
    try:
        zoo.create_model(name, input_shape=shape, num_classes=classes, alpha=alpha)
        return method, ""
    except GroupedConvolutionError:
        return method.replace(groups=1), f"groups=1 (groups={method.groups} needs 32 channels per group)"
    finally:
        tf.keras.backend.clear_session()


def train_one(name, seed, args, *, method=None, run_dir=None):
    """One leaderboard run of `name` (with its own method, or `method`); its figures.

    The run is a `zoo.run.RunConfig` trained by `zoo.run.run`, as `lqm train` does
    (deterministic: the same seed gives the same figures)."""
    shape = (28, 28, 1)
    method, note = (method, "") if method else method_for(name, args.alpha, shape, 10)
    run_dir = Path(run_dir or WORK / run_name(name, seed))
    if run_dir.exists():  # a run that did not finish: start it again
        shutil.rmtree(run_dir)
    config = RunConfig(
        model=name,
        method=method,
        recipe=training.Recipe(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate),
        data=DataConfig(train_split=args.train_split, eval_split=args.eval_split, image_size=28, channels=1),
        alpha=args.alpha,
        seed=seed,
        commands=(shlex.join(["python", "benchmarks/leaderboard.py", *sys.argv[1:]]),),
    )
    results = run(config, run_dir, verbose=0, echo=lambda _: None)
    params = saving.load_model(run_dir / "model.h5").count_params()
    result = {
        "model": name,
        "seed": seed,
        "accuracy": results["eval_accuracy"],
        "train_seconds": round(results["train_seconds"], 1),
        "params": params,
        "method": method.as_dict(),
        "note": note,
        "alpha": args.alpha,
        "epochs": args.epochs,
        "train_split": args.train_split,
        "eval_split": results["eval_split"],
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "run_dir": str(run_dir),
        "date": datetime.date.today().isoformat(),
    }
    tf.keras.backend.clear_session()
    return result


def read_results() -> list[dict]:
    path = WORK / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def backbone(name):
    return zoo.get_entry(name).backbone


def table(results, models):
    rows = [
        "| model | backbone | seeds | test accuracy, mean | spread (min-max) | train s per seed | params | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    summary = []
    for name in models:
        runs = [r for r in results if r["model"] == name]
        if not runs:
            continue
        accs = [100 * r["accuracy"] for r in runs]
        secs = [r["train_seconds"] for r in runs]
        summary.append((name, statistics.mean(accs), min(accs), max(accs)))
        rows.append(
            f"| `{name}` | {backbone(name)} | {len(runs)} | {statistics.mean(accs):.2f}% | "
            f"{min(accs):.2f}-{max(accs):.2f} | {statistics.mean(secs):.0f} | "
            f"{runs[0]['params'] / 1e3:.0f}k | {runs[0]['note']} |"
        )
    return "\n".join(rows) + "\n", summary


def plot(summary, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = sorted(summary, key=lambda s: s[1])
    names = [s[0] for s in summary]
    means = [s[1] for s in summary]
    low = [s[1] - s[2] for s in summary]
    high = [s[3] - s[1] for s in summary]
    colours = {"reactnet-18": "tab:blue", "reactnet-a": "tab:orange", "quicknet": "tab:green", "birealnet": "tab:red"}
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(names) + 1.2))
    ax.barh(names, means, xerr=[low, high], color=[colours.get(backbone(n), "grey") for n in names], alpha=0.85, capsize=3)
    ax.set_xlim(min(s[2] for s in summary) - 3, max(s[3] for s in summary) + 1)
    ax.set_xlabel("Fashion-MNIST test accuracy (%), mean of seeds, bars: min-max")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, list(colours), loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="*")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--alpha", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--train-split", default="train[:20000]")
    parser.add_argument("--eval-split", default="test")
    args = parser.parse_args()

    models = [n for n in zoo.list_models() if fnmatch.fnmatchcase(n, args.models)]
    WORK.mkdir(parents=True, exist_ok=True)
    done = {(r["model"], r["seed"]) for r in read_results()}
    for seed in args.seeds:
        for name in models:
            if (name, seed) in done:
                continue
            result = train_one(name, seed, args)
            print(f"{name} seed {seed}: {100 * result['accuracy']:.2f}% in {result['train_seconds']:.0f} s", flush=True)
            with open(WORK / "results.jsonl", "a") as f:
                f.write(json.dumps(result) + "\n")

    results = [r for r in read_results() if r["model"] in models]
    markdown, summary = table(results, models)
    command = shlex.join(["python", "benchmarks/leaderboard.py", *sys.argv[1:]])
    header = (
        f"Fashion-MNIST, every model at alpha {args.alpha}, 28x28x1, one-step recipe, "
        f"{args.epochs} epoch(s) on {args.train_split}, batch {args.batch_size}, Adam "
        f"{args.learning_rate:g} decayed linearly to zero; test accuracy on the whole test split "
        f"(10,000 images); seeds {', '.join(map(str, args.seeds))}. Wall times on a shared "
        f"2-core CPU. Made by `{command}`.\n\n"
    )
    (RESULTS / "leaderboard.md").write_text(header + markdown)
    plot(summary, RESULTS / "leaderboard.png")
    print(header + markdown)


if __name__ == "__main__":
    main()
