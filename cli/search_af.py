"""`lqm search-af`: the genetic search of GAAF complementary activations (METHODS.md, 5)."""

import datetime
import math
import shlex

import click

from cli.common import data_options, one_line_errors, zoo
from larq_methods import data, gaaf, saving
from zoo import search as proxy


def _backbones() -> list[str]:
    """Registered backbones: models whose method is their own, not a named model's preset."""
    return [name for name in zoo.list_models() if zoo.get_entry(name).backbone == name]


@click.command("search-af")
@data_options
@click.option("--backbone", default="reactnet-18", show_default=True, help="Backbone of the proxy training, with ReActNet's method and each genome before every sign (`lqm models` lists them).")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=0.25, show_default=True, help="Width multiplier of the proxy backbone.")
@click.option("--population", type=click.IntRange(1, gaaf.SEARCH_SPACE), default=30, show_default=True, help="Genomes kept alive (the authors' 30).")
@click.option("--generations", type=click.IntRange(min=0), default=200, show_default=True, help="Generations after the random first one (the authors' 200); may grow on a resume.")
@click.option("--children", type=click.IntRange(min=1), default=10, show_default=True, help="Mutated children per generation (the authors' 10).")
@click.option("--proxy-epochs", type=click.IntRange(min=1), default=1, show_default=True, help="Epochs of each genome's proxy training.")
@click.option("--train-split", default="train[:10%]", show_default=True, help="Proxy training split, a small subset (TFDS syntax).")
@click.option("--eval-split", default="train[90%:]", show_default=True, help="Split whose best accuracy is the fitness; held out of the training data, so the search never sees the test set.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Adam's initial rate, decayed linearly to zero.")
@click.option("--image-size", type=click.IntRange(min=8), help="Input height and width [default: the dataset's].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search and of every proxy training.")
@click.option("--log", "log_path", type=click.Path(), help="JSONL log of every evaluation; an existing one is resumed, skipping logged genomes, if written with the same options [default: runs/search-af-BACKBONE-DATASET-TIME.jsonl].")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Rows of the final table.")
def search_af(dataset, data_dir, backbone, alpha, population, generations, children, proxy_epochs, train_split, eval_split, batch_size, learning_rate, image_size, seed, log_path, top):
    """Search GAAF complementary activations with the authors' genetic algorithm.

    Each genome f(x) = B(U1(x), U2(x)) is scored by a short proxy training of the backbone
    with f before every sign; the best genomes are printed, and the best can be trained at
    full length with `lqm train BACKBONE --gaaf GENOME`. Interrupted searches resume from
    their --log.
    """
    with one_line_errors():
        if zoo.get_entry(backbone).backbone != backbone:
            raise click.ClickException(
                f"{backbone} is a named model with a method of its own; --backbone takes one of "
                f"{', '.join(_backbones())}"
            )
        train_set = data.load(dataset, train_split, data_dir)
        eval_set = data.load(dataset, eval_split, data_dir)
        size = image_size or train_set.image_shape[0]
        if size is None:
            raise click.ClickException(f"{dataset} has images of varying size; pass --image-size")
        input_shape = (size, size, train_set.image_shape[2])
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        log = saving.check_writable(log_path or f"runs/search-af-{backbone}-{dataset}-{stamp}.jsonl")
        # What the logged fitnesses and the search's random choices depend on; --generations
        # is left out so that a finished search can be resumed for longer.
        config = {
            "backbone": backbone, "dataset": dataset, "train_split": train_split, "eval_split": eval_split,
            "input_shape": input_shape, "alpha": alpha, "proxy_epochs": proxy_epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "population": population, "children": children, "seed": seed,
        }  # fmt: skip
        try:
            logged = gaaf.open_log(log, config)
        except gaaf.SearchLogError as e:
            raise click.ClickException(str(e)) from None
        fitness = proxy.proxy_fitness(
            backbone, train_set, eval_set, input_shape=input_shape, alpha=alpha,
            epochs=proxy_epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        )  # fmt: skip
        click.echo(
            f"GAAF search: {backbone} (alpha {alpha}, {size}x{size}x{input_shape[2]}) trained "
            f"{proxy_epochs} epoch(s) on {train_set.num_examples} {dataset} {train_split} images "
            f"per genome, scored on {eval_set.num_examples} {eval_split} images; "
            + (f"resuming {log} ({len(logged)} genomes evaluated)" if logged else f"log: {log}")
        )
        try:
            result = gaaf.search(
                fitness, population=population, generations=generations, children=children,
                seed=seed, log_path=log, config=config,
            )  # fmt: skip
        except KeyboardInterrupt:
            raise click.ClickException(f"interrupted; resume with the same options and --log {log}") from None

    records = gaaf.read_log(log)[1]
    found_in = {r["genome"]: r["generation"] for r in records}
    click.echo(f"{len(records) - len(logged)} genomes evaluated now, {len(records)} in all.")
    click.echo(f"{'rank':>4}  {'genome':<32}  {'accuracy':>8}  {'generation':>10}")
    for rank, (genome, score) in enumerate(result[:top], 1):
        accuracy = f"{score:.4f}" if math.isfinite(score) else "diverged"
        click.echo(f"{rank:>4}  {str(genome):<32}  {accuracy:>8}  {found_in[str(genome)]:>10}")
    best, score = result[0]
    if not math.isfinite(score):
        raise click.ClickException("every proxy training diverged; try a lower --learning-rate")
    # The proxy's method is ReActNet's; larq-zoo's backbones have other methods of their own.
    method_args = [] if zoo.get_entry(backbone).method == zoo.PRESETS["reactnet"] else ["--method", "reactnet"]
    data_args = [] if dataset == "fashion_mnist" else ["--dataset", dataset]
    data_args += ["--data-dir", str(data_dir)] if data_dir else []
    click.echo("Best: " + shlex.join(["lqm", "train", backbone, *method_args, "--gaaf", str(best), *data_args]))
