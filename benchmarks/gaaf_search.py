"""GAAF's genetic search on Fashion-MNIST, and what the genomes it finds are worth.

    .venv/bin/python benchmarks/gaaf_search.py [--population 10] [--generations 5]
        [--children 4] [--top 3] [--seeds 0 1]

1. Runs `lqm search-af` (ReActNet-18 at alpha 0.25, one proxy epoch on train[:10%], scored on
   train[90%:]) into benchmarks/results/gaaf_search.jsonl; a log that exists is resumed, and
   more --generations extend it.
2. Scores reference genomes with the very same proxy: `add(x,zero)` (f(x) = x, ReActNet's
   sign with a straight-through gradient clipped at 1.3) and `add(sin,x)`, the genome the
   GAAF named models had before this search.
3. Trains ReActNet-18 with the --top genomes, the references and ReActNet's own sign on the
   leaderboard's terms (`benchmarks/leaderboard.py`: alpha 0.25, one epoch on
   train[:10000], --seeds, accuracy on the whole test split), so that a genome is judged
   on held-out data and over seeds, not by its proxy score alone.

Runs go to runs/gaaf_search/ (finished ones are reused); writes benchmarks/results/gaaf_search.md.
"""

import argparse
import json
import math
import re
import statistics
import subprocess
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)

import leaderboard  # noqa: E402
from larq_methods.methods import gaaf  # noqa: E402
from larq_methods.method import Method  # noqa: E402
from zoo.run import run_name  # noqa: E402
from zoo.search import proxy_config, proxy_fitness  # noqa: E402

LOG = Path("benchmarks/results/gaaf_search.jsonl")
WORK = Path("runs/gaaf_search")
REFERENCES = {"add(x,zero)": "reference: f(x) = x", "add(sin,x)": "reference: the GAAF models' first genome"}


def search(args):
    lqm = Path(sys.executable).with_name("lqm")
    subprocess.run(
        [str(lqm), "search-af", "--backbone", "reactnet-18", "--alpha", "0.25", "--population", str(args.population),
         "--generations", str(args.generations), "--children", str(args.children), "--seed", "0", "--log", str(LOG)],
        check=True,
    )  # fmt: skip
    return gaaf.read_log(LOG)


def proxy_scores(config, genomes):
    """The search's own fitness for `genomes` (cached in runs/gaaf_search/proxy.json)."""
    path = WORK / "proxy.json"
    scores = json.loads(path.read_text()) if path.exists() else {}
    fitness = proxy_fitness(proxy_config(
        config["backbone"], dataset=config["dataset"], train_split=config["train_split"], eval_split=config["eval_split"],
        image_size=config["input_shape"][0], alpha=config["alpha"], epochs=config["proxy_epochs"],
        batch_size=config["batch_size"], learning_rate=config["learning_rate"], seed=config["seed"],
    ))  # fmt: skip
    for genome in genomes:
        if genome not in scores:
            scores[genome] = fitness(gaaf.Genome.parse(genome))
            path.write_text(json.dumps(scores, indent=1))
    return scores


def confirm(candidates, seeds):
    """Leaderboard runs of ReActNet-18 with each candidate genome (None: ReActNet's sign)."""
    args = argparse.Namespace(alpha=0.25, epochs=1, batch_size=128, learning_rate=1e-3, train_split="train[:10000]", eval_split="test")
    path = WORK / "confirm.jsonl"
    done = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for seed in seeds:
        for genome in candidates:
            if any(r["genome"] == genome and r["seed"] == seed for r in done):
                continue
            tag = re.sub(r"\W+", "_", genome or "reactnet").strip("_")
            result = leaderboard.train_one(
                "reactnet-18", seed, args, method=Method(gaaf=genome), run_dir=WORK / run_name(tag, seed),
            )  # fmt: skip
            record = {"genome": genome, "seed": seed, "accuracy": result["accuracy"], "train_seconds": result["train_seconds"]}
            print(record, flush=True)
            done.append(record)
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")
    return done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)

    config, records = search(args)
    ranked = sorted(records, key=lambda r: -r["fitness"])
    found = {r["genome"]: r for r in records}
    top = [r["genome"] for r in ranked[: args.top] if math.isfinite(r["fitness"])]
    proxy = {**{g: found[g]["fitness"] for g in found}, **proxy_scores(config, [g for g in REFERENCES if g not in found])}
    runs = confirm([*top, *REFERENCES, None], args.seeds)

    diverged = sum(not math.isfinite(r["fitness"]) for r in records)
    rows = [
        "| genome | f(x) | found in generation | proxy score | test accuracy, mean | spread (min-max) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for genome in [*top, *REFERENCES, None]:
        accs = [100 * r["accuracy"] for r in runs if r["genome"] == genome]
        if genome is None:
            label, formula, generation, score = "ReActNet's RSign (no GAAF)", "sign(x - a), ApproxSign gradient", "-", "-"
        else:
            ops = gaaf.Genome.parse(genome).ops
            formula = ops[2].formula.replace("x1", ops[0].formula).replace("x2", ops[1].formula).replace("|", "&#124;")
            label = f"`{genome}`"
            generation = str(found[genome]["generation"]) if genome in found else REFERENCES[genome]
            score = f"{proxy[genome]:.4f}"
        rows.append(
            f"| {label} | {formula} | {generation} | {score} | {statistics.mean(accs):.2f}% | "
            f"{min(accs):.2f}-{max(accs):.2f} |"
        )
    command = shlex.join(["python", "benchmarks/gaaf_search.py", *sys.argv[1:]])
    text = (
        f"GAAF search: {config['backbone']} at alpha {config['alpha']}, {config['proxy_epochs']} proxy epoch(s) on "
        f"{config['train_split']}, scored on {config['eval_split']}; population {config['population']}, "
        f"{config['children']} children per generation, {len(records)} genomes evaluated, {diverged} of them "
        f"diverged (their f(x) keeps one sign, so every binary activation is constant). Log: `{LOG}`. "
        f"The top {len(top)} genomes and the references were then trained on the leaderboard's terms "
        f"(ReActNet-18, alpha 0.25, one epoch on train[:10000], seeds {', '.join(map(str, args.seeds))}, "
        f"whole test split). Made by `{command}`.\n\n" + "\n".join(rows) + "\n"
    )
    (leaderboard.RESULTS / "gaaf_search.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
