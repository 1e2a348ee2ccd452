"""What the command line shows of the library before a command runs: the names its options
choose from and the registered models, as a snapshot (catalogue.json).

`lqm --help`, `lqm COMMAND --help` and `lqm models` read the snapshot instead of importing
the library, whose TensorFlow takes 5 s or more to start. `python -m cli.catalogue`
rewrites it from the library; tests/test_startup.py fails while it differs. The pretrained
weights are read from the weights registry itself (plain JSON), so that shipping weights
needs no new snapshot.
"""

import json
from pathlib import Path

FILE = Path(__file__).with_name("catalogue.json")
# zoo.pretrained.REGISTRY_FILE, found without importing zoo (and TensorFlow)
REGISTRY = Path(__file__).resolve().parent.parent / "zoo" / "weights" / "registry.json"


def build() -> dict:
    """The snapshot, from the library itself (which imports TensorFlow)."""
    import larq_methods
    import zoo
    from larq_methods import convert, data, method, training
    from larq_methods.methods import gaaf
    from zoo import recipes

    return {
        "version": larq_methods.__version__,
        "choices": {
            "presets": sorted(zoo.PRESETS),
            "thresholds": list(method.THRESHOLDS),
            "activations": list(method.ACTIVATIONS),
            "weights": list(method.WEIGHTS),
            "downsamples": list(method.DOWNSAMPLES),
            "recipes": list(recipes.RECIPE_PRESETS),
            "strategies": list(training.STRATEGIES),
            "inputs": list(convert.INPUTS),
            "selections": list(gaaf.SELECTIONS),
            "schedules": list(training.SCHEDULES),
        },
        "gaaf_search_space": gaaf.SEARCH_SPACE,
        "gaaf_admission": gaaf.ADMISSION,
        "fashion_mnist_env": data.FASHION_MNIST_ENV,
        "models": [
            {k: getattr(zoo.get_entry(name), k) for k in ("name", "backbone", "follows", "description")}
            for name in zoo.list_models()
        ],
    }


# without the file (not written yet), from the library: slower, the same
_SNAPSHOT = json.loads(FILE.read_text()) if FILE.exists() else build()
VERSION: str = _SNAPSHOT["version"]
CHOICES: dict[str, list] = _SNAPSHOT["choices"]
GAAF_SEARCH_SPACE: int = _SNAPSHOT["gaaf_search_space"]
GAAF_ADMISSION: float = _SNAPSHOT["gaaf_admission"]
FASHION_MNIST_ENV: str = _SNAPSHOT["fashion_mnist_env"]
MODELS: list[dict] = _SNAPSHOT["models"]


def pretrained() -> list[dict]:
    """The registered weights: model, dataset, accuracy and the rest of each entry."""
    return json.loads(REGISTRY.read_text()) if REGISTRY.exists() else []


if __name__ == "__main__":
    FILE.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {FILE}")
