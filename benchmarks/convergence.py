"""Does the study's schedule converge? Issue 13 holds a baseline converged when its last two
epochs differ by at most 0.2 point. This trains each baseline's study run (seed 0) again at
`--epochs` per step, with every other setting of that run kept, its teacher included (the
study's float twin), and sets the two schedules side by side.

    .venv/bin/python benchmarks/convergence.py [--models reactnet-18 reactnet-a] [--epochs 10]
        [--commit] [--report]

It survives interruption as the study does (`study.train_run`): a run trains in
runs/convergence/eN/MODEL-sSEED, and once finished what is kept of it goes to
benchmarks/results/convergence/eN/MODEL-sSEED/ (`study.harvest`, `--commit` commits it); a
rerun skips it. Writes benchmarks/results/convergence.md and convergence.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import study  # noqa: E402  (imports larq_methods first: Keras 2 before TensorFlow)
from zoo import recipes  # noqa: E402
from zoo.run import RunConfig, run_name  # noqa: E402

STUDY = SimpleNamespace(work=Path("runs/study"), out=Path("benchmarks/results/study"))
WORK, OUT = Path("runs/convergence"), Path("benchmarks/results/convergence")
TOLERANCE = 0.2  # points: issue 13's test, the last two epochs within 0.2 point


def last_move(curve) -> float:
    """The change of test accuracy over the last epoch, in points (accuracies are counts of
    a test split, so two decimals are exact)."""
    return round(100 * (curve[-1] - curve[-2]), 2)


def longer(model, seed, epochs, command) -> RunConfig:
    """The study's run of (model, seed) at `epochs` per step: the same model, method, data,
    width, seed and teacher; it measures the PreciseBN curve as well."""
    config = RunConfig.load(STUDY.out / run_name(model, seed))
    twin = recipes.float_twin(model)
    return config.replace(
        recipe=dataclasses.replace(config.recipe, epochs=epochs, precise_bn=study.PRECISE_BATCHES),
        teacher=str(study.twin_run(twin, STUDY.work).resolve()),  # the kept path may be another clone's
        commands=(command,),
    )


def longer_run(model, seed, args, command) -> tuple[RunConfig, Path]:
    """The longer run of (model, seed) at args.epochs per step and its run folder, the
    study's teacher restored first."""
    study.restore_teacher(model, STUDY)
    return longer(model, seed, args.epochs, command), WORK / f"e{args.epochs}" / run_name(model, seed)


def train_all(models, args, command) -> None:
    """Trains the longer run of every model at args.seed that has no results yet."""
    args = SimpleNamespace(**vars(args), out=OUT / f"e{args.epochs}")
    label = f"Convergence at {args.epochs} epochs per step"
    study.train_all([(m, args.seed) for m in models], args, command, runs=longer_run, label=label)


def schedules(models, seed) -> list[tuple[dict, ...]]:
    """(the study's record, then the longer schedules' from the shortest) of every model of
    `models` that has a longer one: one row group and one plot panel a model."""
    kept = {r["model"]: r for r in study.read_records(STUDY.out) if r["seed"] == seed}
    longer = {m: [] for m in models}
    for folder in sorted(OUT.glob("e*"), key=lambda p: int(p.name[1:])):
        for r in study.read_records(folder):
            if r["seed"] == seed and r["model"] in longer:
                longer[r["model"]].append(r)
    return [(kept[m], *runs) for m, runs in longer.items() if runs and m in kept]


def judged(record) -> tuple[list[float], str]:
    """The curve convergence is judged on and its name: PreciseBN's where the run measured
    it (the moving averages can lag the weights), else the moving averages'."""
    if "curve_precise_bn" in record:
        return record["curve_precise_bn"], "PreciseBN"
    return record["curve"], "moving averages"


def table(found) -> str:
    rows = [
        "| model | epochs per step | test accuracy | last three epochs | last-epoch move | within 0.2 | judged on | train min |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for group in found:
        for r in group:
            curve, kind = judged(r)
            move = last_move(curve)
            rows.append(
                f"| `{r['model']}` | {r['epochs_per_step']} | {study._pct(r['accuracy'])}% | "
                f"{', '.join(study._pct(a) for a in curve[-3:])} | {move:+.2f} | "
                f"{'yes' if abs(move) <= TOLERANCE else '**no**'} | {kind} | {r['train_seconds'] / 60:.0f} |"
            )
    return "\n".join(rows) + "\n"


def plot(found, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(found), figsize=(6.5 * len(found), 4.5), squeeze=False)
    for ax, group in zip(axes.flat, found):
        for r in group:
            n = r["epochs_per_step"]
            # epochs as a fraction of each step, so that both schedules share the axis
            x = [(i % n + 1) / n + i // n for i in range(len(r["curve"]))]
            ax.plot(x, [100 * a for a in r["curve"]], marker=".", label=f"{n} epochs per step")
        ax.axvline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{group[0]['model']} seed {group[0]['seed']}: test accuracy (step 1 | step 2)")
        ax.set_xlabel("steps done")
        ax.set_ylabel("Fashion-MNIST test accuracy (%)")
        ax.set_ylim(bottom=75)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def report(models, seed, command) -> str:
    found = schedules(models, seed)
    markdown = (
        "Each baseline's study run (`benchmarks/study.py`, seed "
        f"{seed}) against the same run at a longer schedule: same model, data, width, seed and teacher "
        "(the study's float twin), only the epochs per step changed; Adam's rate decays linearly to 0 over "
        f"each step in both. Issue 13's test: the last two epochs within {TOLERANCE} point, judged on the PreciseBN "
        "curve where the run measured it (`larq_methods.precise_bn`: BatchNorm's moving averages can lag the weights), "
        "else on the moving averages'. Times are wall-clock "
        f"on a shared 2-core CPU. Made by `{command}`.\n\n" + table(found)
    )
    (OUT.parent / "convergence.md").write_text(markdown)
    if found:
        plot(found, OUT.parent / "convergence.png")
    return markdown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["reactnet-18", "reactnet-a"], help="Study models (baselines by default).")
    parser.add_argument("--epochs", type=int, default=10, help="Epochs per step [default: 10, twice the study's].")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commit", action="store_true", help="git commit each finished run's results.")
    parser.add_argument("--report", action="store_true", help="Only write the table and the plot.")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "benchmarks/convergence.py", *(sys.argv[1:] if argv is None else argv)])
    missing = [m for m in args.models if not (STUDY.out / run_name(m, args.seed) / "results.json").exists()]
    if missing:
        raise SystemExit(f"no finished study run of {', '.join(missing)} seed {args.seed} in {STUDY.out}")
    if not args.report:
        train_all(args.models, args, command)
    print(report(args.models, args.seed, command))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # checkpoint, then stop
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
