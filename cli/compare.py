"""`lqm compare`: parse the options into `zoo.compare.Settings` and run the comparison."""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path

import click

from cli import catalogue
from cli.common import lazy, native_stderr_silenced, one_line_errors

lqcompare = lazy("zoo.compare")
training = lazy("larq_methods.training")


@click.command()
@click.argument("models", metavar="MODEL...", nargs=-1, required=True)
@click.option("--dataset", default="fashion_mnist", show_default=True, metavar="NAME|PATH", help="fashion_mnist, a tensorflow-datasets name with a test split, or a folder laid out as PATH/train/CLASS/* and PATH/test/CLASS/*.")
@click.option("--data-dir", type=click.Path(), help="Dataset folder (Fashion-MNIST IDX files) or TFDS data dir.")
@click.option("--seeds", type=click.IntRange(min=1), default=2, show_default=True, help="Seeds 0..N-1 of every model (paired: seed s of each sees the same data).")
@click.option("--recipe", type=click.Choice(catalogue.CHOICES["recipes"]), default="paper", show_default=True, help="The recipe of every model (the first binary model's, as `lqm train` would give it); float models train as its teacher does.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs per step [default: the recipe's].")
@click.option("--batch-size", type=click.IntRange(min=1), help="[default: the recipe's]")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), help="[default: the recipe's]")
@click.option("--teacher", metavar="MODEL_FILE|RUN|NAME|none", help="The teacher of every binary model [default: the recipe's float twin: its pretrained weights if they fit, or its first seed's run if it is compared too, else trained once into OUTPUT/teacher].")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Width multiplier.")
@click.option("--image-size", type=click.IntRange(min=8), help="Input height and width [default: the dataset's].")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Input channels [default: the dataset's].")
@click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1, show_default=True, metavar="FRACTION", help="Held out of the training images (seeded) for validation: everything that chooses reads it; the test split is only reported.")
@click.option("--budget-ms", type=click.FloatRange(min=0, min_open=True), help="Name the model to ship within this median latency (ms).")
@click.option("--budget", "relative", type=click.FloatRange(min=0, min_open=True), metavar="TIMES", help="Name the model to ship within TIMES the baseline's latency, e.g. 1.2.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Runs trained at once, as subprocesses (each with its share of the cores).")
@click.option("--latency-runs", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs per model, interleaved.")
@click.option("-o", "--output", type=click.Path(), required=True, help="The comparison's folder; rerun the same command to resume it.")
def compare(models, output, budget_ms, relative, jobs, latency_runs, **options):
    """Train MODEL... alike and compare them: which binary model for this data and this
    latency budget, and does its method really help?

    Every model trains under the same recipe and teacher, seeds 0..N-1 each, on the
    training split less a held-out validation part; the selected run of each model is its
    best validation accuracy, converted and verified into OUTPUT/models/MODEL.tflite. The
    test split is measured once per run. OUTPUT/report.md (also .csv, .json and plots)
    gives per model its test accuracy, its paired gain over the first MODEL with a t-test,
    the gap to the float twin, latency, size, BOPs and FLOPs; with a budget, the model to
    ship and why. Each run is an ordinary run folder (OUTPUT/MODEL-sSEED); rerunning the
    command resumes where it stopped.
    """
    with one_line_errors():
        if budget_ms is not None and relative is not None:
            raise click.UsageError("give --budget-ms or --budget, not both")
        if jobs > (os.cpu_count() or 1):
            raise click.UsageError(f"--jobs {jobs} is more than this machine's {os.cpu_count()} cores")
        options["channels"] = int(options["channels"]) if options["channels"] else None
        if options["dataset"] and Path(options["dataset"]).expanduser().exists():
            options["dataset"] = str(Path(options["dataset"]).expanduser().resolve())
        try:
            settings = lqcompare.Settings(models=models, **options)
        except lqcompare.CompareError as e:
            raise click.UsageError(str(e).replace("validation_split", "--validation-split")) from None
        root = click.get_current_context().find_root().command
        command = shlex.join(map(str, getattr(root, "argv", None) or ["lqm", "compare", *models]))
        comparison = lqcompare.Comparison(settings, output, command=command, echo=click.echo)
        budget = budget_ms if budget_ms is not None else (f"{relative}x" if relative is not None else None)
        lqcompare.check_settings(comparison.directory, settings, command)
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` checkpoints as Ctrl-C does
        try:
            comparison.train(jobs)
        except training.Interrupted as e:
            click.echo(f"\n{e}; rerun the same command to resume", err=True)
            click.get_current_context().exit(130)
        finally:
            signal.signal(signal.SIGTERM, previous)
        click.echo("Measuring the test split once per run, converting each model's selected run, timing them")
        with native_stderr_silenced():  # the converter's notices
            report = comparison.measure(budget, latency_runs)
        lqcompare.write_report(comparison.directory, report)
    click.echo(Path(output, "report.md").read_text())
    click.echo(f"Wrote {Path(output) / 'report.md'} (and .csv, .json, accuracy_latency.png, curves.png) and models/*.tflite")
    if report["budget_ms"] is not None and report["ship"] is None:
        click.echo(report["ship_reason"], err=True)
