"""`lqm search-af`: the genetic search of GAAF complementary activations (Li et al. 2023)."""

import datetime
import shlex

import click

from cli import catalogue
from cli.common import data_options, lazy, one_line_errors, zoo

data = lazy("larq_methods.data")
gaaf = lazy("larq_methods.methods.gaaf")
saving = lazy("larq_methods.saving")
proxy = lazy("zoo.search")
lqrun = lazy("zoo.run")


def _backbones() -> list[str]:
    """Registered backbones: models whose method is their own, not a named model's preset."""
    return [name for name in zoo.list_models() if zoo.get_entry(name).backbone == name]


@click.command("search-af")
@data_options
@click.option("--backbone", default="reactnet-18", show_default=True, help="Backbone of the proxy training, with its own method and each genome before every sign: reactnet-18 (ours) or resnete-18 (the authors' proxy network); `lqm models` lists them.")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=0.25, show_default=True, help="Width multiplier of the proxy backbone.")
@click.option("--population", type=click.IntRange(1, catalogue.GAAF_SEARCH_SPACE), default=30, show_default=True, help="Genomes kept alive (the authors' 30).")
@click.option("--generations", type=click.IntRange(min=0), default=200, show_default=True, help="Generations after the random first one (the authors' 200); may grow on a resume.")
@click.option("--children", type=click.IntRange(min=1), default=10, show_default=True, help="Mutated children per generation (the authors' 10).")
@click.option("--selection", type=click.Choice(catalogue.CHOICES["selections"]), default="authors", show_default=True, help="Parents: the authors' (one of elitism, tournament, fitness-proportionate drawn per generation) or uniform (ours, before).")
@click.option("--admit-above", type=click.FloatRange(0, 1), default=catalogue.GAAF_ADMISSION, show_default=True, help="Accuracy a random genome must exceed to join the first population (the authors' 11%).")
@click.option("--proxy-epochs", type=click.IntRange(min=1), default=1, show_default=True, help="Epochs of each genome's proxy training.")
@click.option("--train-split", default="train[:10%]", show_default=True, help="Proxy training split, a small subset (TFDS syntax).")
@click.option("--eval-split", default="train[90%:]", show_default=True, help="Split whose best accuracy is the fitness; held out of the training data, so the search never sees the test set.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Adam's initial rate (the authors' proxy: 5e-3).")
@click.option("--schedule", type=click.Choice(catalogue.CHOICES["schedules"]), default="linear", show_default=True, help="linear: decayed to zero (ours); step: the authors' steps (x0.2 from epoch 80, ...), constant in shorter runs.")
@click.option("--early-stop-below", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Stop a proxy training whose best accuracy after an epoch is below this (the authors': 0.11); 0: never.")
@click.option("--image-size", type=click.IntRange(min=8), help="Input height and width [default: the dataset's].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search and of every proxy training.")
@click.option("--log", "log_path", type=click.Path(), help="JSONL log of every evaluation; an existing one is resumed, skipping logged genomes, if written with the same options [default: runs/search-af-BACKBONE-DATASET-TIME.jsonl].")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Rows of the final table.")
def search_af(dataset, data_dir, backbone, alpha, population, generations, children, selection, admit_above, proxy_epochs, train_split, eval_split, batch_size, learning_rate, schedule, early_stop_below, image_size, seed, log_path, top):
    """Search GAAF complementary activations with the authors' genetic algorithm.

    Each genome f(x) = B(U1(x), U2(x)) is scored by a short proxy training of the backbone
    with f before every sign; the best genomes are printed, and the best can be trained at
    full length with `lqm train BACKBONE --gaaf GENOME`. Interrupted searches resume from
    their --log. The authors' proxy: --backbone resnete-18 --learning-rate 5e-3 --schedule
    step --early-stop-below 0.11 --proxy-epochs 15.
    """
    with one_line_errors():
        if zoo.get_entry(backbone).backbone != backbone:
            raise click.ClickException(
                f"{backbone} is a named model with a method of its own; --backbone takes one of "
                f"{', '.join(_backbones())}"
            )
        run_config = proxy.proxy_config(
            backbone, dataset=dataset, data_dir=data_dir, train_split=train_split, eval_split=eval_split,
            image_size=image_size, alpha=alpha, epochs=proxy_epochs, batch_size=batch_size,
            learning_rate=learning_rate, schedule=schedule, seed=seed,
        )  # fmt: skip
        prepared = lqrun.prepare(run_config)  # the data's size and shape; fails early on bad data
        train_set, eval_set, input_shape = prepared.train_set, prepared.eval_set, prepared.input_shape
        size = input_shape[0]
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        log = saving.check_writable(log_path or f"runs/search-af-{backbone}-{dataset}-{stamp}.jsonl")
        # What the logged fitnesses and the search's random choices depend on; --generations
        # is left out so that a finished search can be resumed for longer.
        config = {
            "backbone": backbone, "dataset": dataset, "train_split": train_split, "eval_split": eval_split,
            "input_shape": list(input_shape), "alpha": alpha, "proxy_epochs": proxy_epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "schedule": schedule, "early_stop_below": early_stop_below,
            "population": population, "children": children, "selection": selection, "admit_above": admit_above,
            "seed": seed,
        }  # fmt: skip
        try:
            logged = gaaf.open_log(log, config)
        except gaaf.SearchLogError as e:
            raise click.ClickException(str(e)) from None
        fitness = proxy.proxy_fitness(prepared.config, early_stop_below=early_stop_below)
        click.echo(
            f"GAAF search: {backbone} (alpha {alpha}, {size}x{size}x{input_shape[2]}) trained "
            f"{proxy_epochs} epoch(s) on {train_set.num_examples} {dataset} {train_split} images "
            f"per genome, scored on {eval_set.num_examples} {eval_split} images; "
            + (f"resuming {log} ({len(logged)} genomes evaluated)" if logged else f"log: {log}")
        )
        try:
            result = gaaf.search(
                fitness, population=population, generations=generations, children=children,
                seed=seed, selection=selection, admit_above=admit_above, log_path=log, config=config,
            )  # fmt: skip
        except KeyboardInterrupt:
            raise click.ClickException(f"interrupted; resume with the same options and --log {log}") from None
        except gaaf.SearchError as e:
            raise click.ClickException(f"{e}; the log {log} keeps what was evaluated") from None

    records = gaaf.read_log(log)[1]
    found_in = {r["genome"]: r["generation"] for r in records}
    click.echo(f"{len(records) - len(logged)} genomes evaluated now, {len(records)} in all.")
    click.echo(f"{'rank':>4}  {'genome':<32}  {'accuracy':>8}  {'generation':>10}")
    for rank, (genome, score) in enumerate(result[:top], 1):
        click.echo(f"{rank:>4}  {str(genome):<32}  {score:>8.4f}  {found_in[str(genome)]:>10}")
    best = result[0][0]  # every member scored above --admit-above
    # The proxy trains the backbone's own method with the genome, as `lqm train` does.
    data_args = [] if dataset == "fashion_mnist" else ["--dataset", dataset]
    data_args += ["--data-dir", str(data_dir)] if data_dir else []
    click.echo("Best: " + shlex.join(["lqm", "train", backbone, "--gaaf", str(best), *data_args]))
