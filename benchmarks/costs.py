"""BOPs, FLOPs and OPs of every registered model at 224x224, 1000 classes, with the OPs
overhead over the model's backbone baseline and the published counts where there are some.

    .venv/bin/python benchmarks/costs.py [--output benchmarks/results/costs.md]
"""

import argparse
from pathlib import Path

import larq_methods  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

import zoo
from larq_methods import costs

# ../shared/METHODS.md, "Published counts"
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
    print(table)


if __name__ == "__main__":
    main()
