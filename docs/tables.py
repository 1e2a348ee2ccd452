"""Tables for the README and the site, made from the pretrained-weights registry
(zoo/weights/registry.json), the model catalogue (cli/catalogue.json) and the measured results
(benchmarks/results/); nothing here imports TensorFlow or trains.

    python docs/tables.py            rewrite the README's table of shipped models
    python docs/tables.py --check    exit 1 if the README's table is not what this makes now

The site's pages take the same tables through `<!-- table: NAME -->` markers (docs/hooks.py).
"""

import json
import posixpath
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
REGISTRY = ROOT / "zoo" / "weights" / "registry.json"
CATALOGUE = ROOT / "cli" / "catalogue.json"
README = ROOT / "README.md"
BLOCK = "shipped-models"

# Where every measurement in benchmarks/results was made.
MACHINE = (
    "x86_64, 2 CPU cores (AMD EPYC, no AVX-512) shared with other work, no GPU; "
    "TensorFlow 2.19.1, LCE 0.16 (x86 reference kernels)"
)


def registry() -> list[dict]:
    return json.loads(REGISTRY.read_text())


def follows() -> dict:
    return {m["name"]: m["follows"] for m in json.loads(CATALOGUE.read_text())["models"]}


def seed_accuracies(run: str, model: str) -> list[float]:
    """Test accuracy of every finished seed of `model` in the study that made `run`: an `lqm
    compare` run's test.json (its results.json holds validation figures), else the earlier
    studies' results.json."""
    study = ROOT / run
    found = sorted(study.parent.glob(f"{model}-s*/results.json"))
    return [json.loads(_test_file(p.parent).read_text())["accuracy"] for p in found]


def _test_file(run: Path) -> Path:
    return run / "test.json" if (run / "test.json").exists() else run / "results.json"


def shipped_measurements() -> dict:
    path = RESULTS / "shipped.json"
    return {r["model"]: r for r in json.loads(path.read_text())["models"]} if path.exists() else {}


def _twin(entry: dict) -> str | None:
    teacher = entry["recipe"].get("teacher")
    return re.sub(r"-s\d+$", "", teacher) if teacher else None


def shipped_rows() -> list[dict]:
    """One row per shipped model: binary models grouped under their float twin."""
    entries = {e["model"]: e for e in registry() if e["dataset"] == "fashion_mnist"}
    measured, kinds = shipped_measurements(), follows()
    rows = []
    for name, e in entries.items():
        seeds = seed_accuracies(e["recipe"]["run"], name)
        twin = _twin(e)
        m = measured.get(name, {})
        rows.append({
            "model": name, "follows": kinds.get(name, "?"), "twin": twin,
            "family": twin or name,
            "steps_epochs": f"{e['recipe']['steps']} x {e['recipe']['epochs']}",
            "seeds": seeds, "accuracy": e["accuracy"], "seed": e["recipe"]["seed"],
            "gap": e["accuracy"] - entries[twin]["accuracy"] if twin in entries else None,
            "latency": m.get("median_vs_backbone"), "tflite": m.get("tflite_bytes"),
            "baseline": m.get("backbone") == name,
        })  # fmt: skip
    # each family: its float twin, its baseline (the backbone), then the methods
    return sorted(rows, key=lambda r: (r["family"], r["twin"] is not None, not r["baseline"], r["model"]))


def _spread(seeds: list[float]) -> str:
    if len(seeds) < 2:
        return f"{100 * seeds[0]:.2f}% (1 seed)" if seeds else "-"
    mean = statistics.mean(seeds)
    return f"{100 * mean:.2f}% ({100 * min(seeds):.2f}-{100 * max(seeds):.2f}, {len(seeds)} seeds)"


def shipped_table() -> str:
    """The README's table: every shipped model with its test accuracy over the study's
    seeds, the shipped seed's top-1, the gap to its float twin, LCE latency relative to its
    backbone and the .tflite size, all at the shipped configuration."""
    lines = [
        "| model | follows | steps x epochs | top-1, seed mean (min-max) | shipped top-1 | gap to float twin | latency vs backbone | .tflite |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in shipped_rows():
        gap = "-" if r["gap"] is None else f"{100 * r['gap']:+.2f}"
        latency = "-" if r["latency"] is None else f"{r['latency']:.2f}x"
        size = "-" if r["tflite"] is None else f"{r['tflite'] / 2**10:.0f} KiB"
        lines.append(
            f"| `{r['model']}` | {r['follows']} | {r['steps_epochs']} | {_spread(r['seeds'])} | "
            f"{100 * r['accuracy']:.2f}% | {gap} | {latency} | {size} |"
        )
    return "\n".join(lines) + "\n"


# -- measured results, as the benchmark scripts wrote them ---------------------------------


def result_tables(name: str) -> list[str]:
    """The markdown tables in benchmarks/results/NAME.md, in order."""
    text = (RESULTS / f"{name}.md").read_text()
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current) + "\n")
            current = []
    return tables


# results files that do not record their command
COMMANDS = {"costs": "python benchmarks/costs.py"}


def result_command(name: str) -> str | None:
    """The command that made benchmarks/results/NAME.md, as the file records it."""
    if name in COMMANDS:
        return COMMANDS[name]
    found = re.search(r"`((?:\.venv/bin/)?python benchmarks/[^`]+)`", (RESULTS / f"{name}.md").read_text())
    # a --label only names the rows of a plot; it is no part of what was measured
    return re.sub(r" --label .*?(?= --[a-z]|$)", "", found.group(1)) if found else None


def result_section(spec: str, images: str = "results/") -> str:
    """`NAME` or `NAME#K` (the K-th table, from 1): the command, the machine, the table and
    the plot of benchmarks/results/NAME.md (the site holds the plots under `images`)."""
    name, _, index = spec.partition("#")
    table = result_tables(name)[int(index or 1) - 1]
    command = result_command(name)
    made = f"Made by `{command}`" if command else f"From `benchmarks/results/{name}.md`"
    parts = [f"{made} on {MACHINE}.\n", table]
    if (RESULTS / f"{name}.png").exists() and not index:
        parts.append(f"![{name}]({images}{name}.png)\n")
    return "\n".join(parts)


def compare_section(name: str, images: str = "results/") -> str:
    """The report of the `lqm compare` in benchmarks/results/compare/NAME: the command that
    made it, the machine, its text and tables (headings moved under the page's), its plot."""
    folder = RESULTS / "compare" / name
    command = json.loads((folder / "compare.json").read_text())["command"]
    body = (folder / "report.md").read_text().split("\n", 1)[1]  # without its title
    body = re.sub(r"^## ", "#### ", body.strip(), flags=re.M)
    parts = [f"Made by `{command}` on {MACHINE}.\n", body + "\n"]
    if (folder / "accuracy_latency.png").exists():
        parts.append(f"![{name}: test accuracy against latency]({images}compare-{name}.png)\n")
    return "\n".join(parts)


TABLES = {"shipped": shipped_table}


def expand(markdown: str, page: str = "index.md") -> str:
    """Replaces every `<!-- table: NAME -->` line (a table of TABLES), every `<!-- results:
    NAME -->` line (`result_section`) and every `<!-- compare: NAME -->` line
    (`compare_section`) of the site's page `page`."""
    images = posixpath.relpath("results", posixpath.dirname(page) or ".") + "/"

    def table(match):
        return TABLES[match.group(1)]()

    def results(match):
        return result_section(match.group(1), images)

    def compared(match):
        return compare_section(match.group(1), images)

    markdown = re.sub(r"^<!-- table: ([\w-]+) -->$", table, markdown, flags=re.M)
    markdown = re.sub(r"^<!-- compare: ([\w-]+) -->$", compared, markdown, flags=re.M)
    return re.sub(r"^<!-- results: ([\w#-]+) -->$", results, markdown, flags=re.M)


# -- the README's block ---------------------------------------------------------------------


def readme_block(text: str) -> tuple[int, int]:
    start, end = f"<!-- {BLOCK} -->\n", f"<!-- /{BLOCK} -->"
    if text.count(start) != 1 or text.count(end) != 1:
        raise SystemExit(f"README.md needs one '{start.strip()}' line and one '{end}' line after it")
    return text.index(start) + len(start), text.index(end)


def main(argv: list[str]) -> int:
    text = README.read_text()
    start, end = readme_block(text)
    new = text[:start] + shipped_table() + text[end:]
    if "--check" in argv:
        if new != text:
            print("README.md's table of shipped models is stale: run `python docs/tables.py`", file=sys.stderr)
            return 1
        return 0
    if new != text:
        tmp = README.with_suffix(".md.tmp")
        tmp.write_text(new)
        tmp.replace(README)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
