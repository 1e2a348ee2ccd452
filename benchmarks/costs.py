"""BOPs, FLOPs and OPs of every registered model at 224x224, 1000 classes, with the OPs
overhead over the model's backbone baseline and the published counts where there are some.

    .venv/bin/python benchmarks/costs.py [--output benchmarks/results/costs.md]

Writes the table and, beside it, costs.png: the OPs of every binary model (FLOPs plus
BOPs / 64) against the published OPs (the float counterparts, with no BOPs and many times
the OPs, are left to the table).
"""

import argparse
from pathlib import Path

import larq_methods  # noqa: F401  (Keras 2 before TensorFlow)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from larq_methods import costs  # noqa: E402

# the counts the papers publish
PUBLISHED = {"reactnet-a": (4.82e9, 0.12e8, 0.87e8), "reactnet-18": (1.68e9, 1.38e8, 1.63e8)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="benchmarks/results/costs.md")
    args = parser.parse_args()

    counted = {}
    for name in zoo.list_models():
        counted[name] = costs.count(zoo.create_model(name))
        tf.keras.backend.clear_session()

    lines = [
        "| model | backbone | BOPs | FLOPs | OPs | OPs vs backbone | params | published BOPs / FLOPs / OPs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in counted.items():
        backbone = zoo.get_entry(name).backbone
        published = " / ".join(f"{v:.3g}" for v in PUBLISHED[name]) if name in PUBLISHED else ""
        lines.append(
            f"| `{name}` | {backbone} | {c.bops:.3g} | {c.flops:.3g} | {c.ops:.3g} | "
            f"{c.ops / counted[backbone].ops - 1:+.1%} | {c.params / 1e6:.2f} M | {published} |"
        )
    table = "\n".join(lines) + "\n"
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(table)
    plot(counted, Path(args.output).with_suffix(".png"))
    print(table)


def plot(counted: dict, path: Path):
    """OPs of every binary model as FLOPs + BOPs / 64, with the published OPs marked."""
    names = [n for n, c in counted.items() if c.bops]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(names) + 1.4))
    y = range(len(names))
    flops = [counted[n].flops / 1e8 for n in names]
    ax.barh(y, flops, label="FLOPs")
    ax.barh(y, [counted[n].bops / 64 / 1e8 for n in names], left=flops, label="BOPs / 64")
    published = [(i, PUBLISHED[n][2] / 1e8) for i, n in enumerate(names) if n in PUBLISHED]
    ax.scatter([p for _, p in published], [i for i, _ in published], marker="D", color="black", zorder=3, label="published OPs")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.35 * max(counted[n].ops for n in names) / 1e8)  # room for the legend
    ax.set_xlabel("OPs (1e8) = FLOPs + BOPs / 64")
    ax.set_title("Binary models at 224x224, 1000 classes: counted against published", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
