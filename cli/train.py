"""`lqm train`: parse the options into a `zoo.run.RunConfig` and run it."""

from __future__ import annotations  # annotations name lazy modules

import contextlib
import dataclasses
import datetime
import re
import shlex
import signal
import sys
import threading
from pathlib import Path

import click

from cli import catalogue
from cli.common import data_options, lazy, one_line_errors, tf, with_flags, zoo

data = lazy("larq_methods.data")
saving = lazy("larq_methods.saving")
training = lazy("larq_methods.training")
lqmethod = lazy("larq_methods.method")
lqrun = lazy("zoo.run")
named = lazy("zoo.named")


def method_options(f):
    """Options that change the named model's method, part by part."""
    options = [
        click.option("--method", "preset", type=click.Choice(catalogue.CHOICES["presets"]), help="Start from this method preset instead of the model's own."),
        click.option("--threshold", type=click.Choice(catalogue.CHOICES["thresholds"]), help="Sign threshold."),
        click.option("--activation", type=click.Choice(catalogue.CHOICES["activations"]), help="Activation of the block."),
        click.option("--weights", "weight_binarisation", type=click.Choice(catalogue.CHOICES["weights"]), help="Weight binarisation: mean-abs (ReActNet), rebnn-code (ReBNN as the authors released it), learned (ReBNN, our scale) or sign (unscaled: GAAF's proxy)."),
        click.option("--gamma", help="ReBNN balance: 'adaptive' or a number such as 2e-4."),
        click.option("--gaaf", help="GAAF genome of a complementary activation before the sign, e.g. 'add(sin,x)'."),
        click.option("--groups", type=click.IntRange(min=1), help="Groups of the 3x3 binary convolutions."),
        click.option("--downsample", type=click.Choice(catalogue.CHOICES["downsamples"]), help="Shortcut 1x1 convolution: real or binary."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


# the options `method_options` adds, by parameter name
METHOD_PARTS = ("preset", "threshold", "activation", "weight_binarisation", "gamma", "gaaf", "groups", "downsample")


def resolve_method(model_name, preset=None, **parts) -> lqmethod.Method:
    """The named model's method (or `preset`), with the given parts replaced."""
    base = named.preset_method(preset, model_name) if preset else zoo.get_entry(model_name).method
    changes = {k: v for k, v in parts.items() if v is not None}
    if "weight_binarisation" in changes:
        changes["weights"] = changes.pop("weight_binarisation")
    if "gamma" in changes and changes["gamma"] != "adaptive":
        try:
            changes["gamma"] = float(changes["gamma"])
        except ValueError:
            raise lqmethod.MethodError(f"--gamma must be 'adaptive' or a number, not {changes['gamma']!r}") from None
    return base.replace(**changes) if changes else base


def _command_line() -> str:
    """This command line, shell-quoted, to paste back."""
    root = click.get_current_context().find_root().command
    return shlex.join(map(str, getattr(root, "argv", None) or ["lqm", *sys.argv[1:]]))


# options that replace a part of the --recipe preset when given
RECIPE_PARTS = ("epochs", "batch_size", "learning_rate", "warmup_epochs", "weight_decay", "label_smoothing", "precise_bn")


def _config(o: dict, data_dir) -> lqrun.RunConfig:
    """The run configuration the options `o` describe."""
    dataset = o["dataset"]
    default_train, default_eval = data.default_splits(dataset)
    method = resolve_method(o["model_name"], **{k: o[k] for k in METHOD_PARTS})
    data_config = lqrun.DataConfig(
        # a folder by its absolute path, so that --resume works from anywhere
        dataset=lqrun.absolute(dataset),
        data_dir=str(Path(data_dir).resolve()) if data_dir else None,
        train_split=o["train_split"] or default_train,
        eval_split=o["eval_split"] or default_eval,
        image_size=o["image_size"],
        channels=int(o["channels"]) if o["channels"] else None,
        validation_split=o.get("validation_split"),
        skip_bad_images=bool(o.get("skip_bad_images")),
    )
    given = {k: o[k] for k in RECIPE_PARTS if o[k] is not None}
    precision = training.mixed_policy() if o["mixed_precision"] else "float32"
    config = lqrun.RunConfig.for_model(
        o["model_name"], data=data_config, recipe=o["recipe"], teacher=o["teacher"],
        recipe_changes={**given, "jit_compile": o["xla"], "precision": precision},
        method=method, alpha=o["alpha"], seed=o["seed"], init=lqrun.absolute(o["init"]), strategy=o["strategy"],
        deterministic=o["deterministic"], checkpoint_steps=o["checkpoint_steps"], commands=(_command_line(),),
    )  # fmt: skip
    # a teacher that is a path, made absolute (so that --resume works from any folder)
    return config.replace(teacher=lqrun.absolute(config.teacher))


def _check_size(config, yes: bool) -> str | None:
    """A warning, found before the run folder is made, of a batch larger than the training
    data or of fewer than 20 optimiser steps per epoch (`data.size_warning`). On a terminal
    it is shown at once with a question (unless --yes); otherwise it is returned, to be
    shown as the run starts (an error found before then is the one line it prints)."""
    count = config.data.load(config.data.train_split, config.seed).num_examples
    warning = data.size_warning(count, config.recipe.batch_size)
    if warning is None:
        return None
    warning = f"Warning: {with_flags(warning, ('batch_size',))}"
    if not yes and _interactive():
        click.echo(warning, err=True)
        if not click.confirm("Train anyway?", default=False, err=True):
            raise click.ClickException("not trained; change --batch-size or pass --yes to train as asked")
        return None
    return warning


def _echo_after(warning: str | None):
    """click.echo, which first shows `warning` (on stderr), if any, once."""
    pending = [warning] if warning else []

    def echo(message=None, **kwargs):
        while pending:
            click.echo(pending.pop(), err=True)
        click.echo(message, **kwargs)

    return echo


def _interactive() -> bool:
    """Whether a person can answer a question: stdin is a terminal."""
    return sys.stdin.isatty()


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (what batch schedulers and container runtimes send before a kill) takes
    Ctrl-C's path: the training loop checkpoints and stops. Yields the signals received."""
    received = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def interrupt(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _damaged_checkpoint(error: Exception) -> bool:
    """Whether `error` is TensorFlow's of a checkpoint that does not read: a CRC32C that
    does not check (DataLossError), or an index file that does not parse."""
    if not isinstance(error, tf.errors.OpError):
        return False
    return isinstance(error, tf.errors.DataLossError) or "ckpt-" in str(error)


def _full_disk_message(run_dir: Path, error: Exception) -> str:
    """The one line of a run stopped by a full disk: what it kept, and how to go on. The
    half-written checkpoint (TensorFlow's `ckpt-N_temp` folder) is removed."""
    import shutil

    import tensorflow as tf

    folders = [f for f in (run_dir / "checkpoints", *sorted(run_dir.glob("step*/checkpoints"))) if f.is_dir()]
    for temp in (t for f in folders for t in f.glob("*_temp")):
        shutil.rmtree(temp, ignore_errors=True)
    latest = [c for c in (tf.train.latest_checkpoint(str(f)) for f in folders) if c]
    kept = f"the last good checkpoint, {latest[-1]}, is kept" if latest else "no checkpoint had been saved yet"
    if isinstance(error, saving.FileError):
        why = str(error)  # it names the file and says the disk is full
    else:
        reason = next((text for text in saving.FULL_DISK_TEXT if text in str(error)), "no space left")
        why = f"the disk is full ({reason})"
    return f"training stopped: {why}; {kept}; free some space, then continue with: lqm train --resume {shlex.quote(str(run_dir))}"


@click.command()
@click.argument("model_name", metavar="MODEL", required=False)
@data_options
@click.option("--recipe", type=click.Choice(catalogue.CHOICES["recipes"]), default="paper", show_default=True, help="paper: ReActNet's released recipe, scaled to the dataset (two steps, distilled from the float twin, Adam 1.25e-3, batch 256; see the README). one-step / two-step: plain recipes (1 epoch, batch 128, Adam 1e-3, no teacher). The options below replace its parts.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (per step of two); with --resume, extends the run to this many [default: the recipe's].")
@click.option("--batch-size", type=click.IntRange(min=1), help="Global batch size, split over the strategy's replicas [default: the recipe's].")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), help="Adam's peak rate, decayed linearly to zero per step [default: the recipe's].")
@click.option("--warmup-epochs", type=click.FloatRange(min=0), help="Linear warm-up before the decay [default: 0].")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="L2 on convolution kernels, coupled with Adam as in the papers [default: 1e-5 in step 1 of two, and for float models under the paper recipe; else 0].")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), help="[default: 0]")
@click.option("--precise-bn", type=click.IntRange(min=0), metavar="BATCHES", help="After each epoch, also measure the test accuracy with BatchNorm's statistics re-estimated over this many training batches (PreciseBN: history.csv's val_precise_bn_accuracy). The moving averages can lag the weights by points in step 2; this measures the weights, and changes nothing that training does [default: 0, off].")
@click.option("--teacher", metavar="MODEL_FILE|RUN|NAME|none", help="Distil from this frozen model with the distributional loss [default: the float twin under the paper recipe (its pretrained weights if they fit, else trained first into RUN/teacher); none otherwise].")
@click.option("--init", metavar="MODEL_FILE|RUN|NAME", help="Start from these weights (a model file, a run folder's model.h5, or a registered name's pretrained weights): same model and method.")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Width multiplier.")
@click.option("--image-size", type=click.IntRange(min=8), help="Input height and width [default: the dataset's].")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Input channels [default: the dataset's].")
@click.option("--train-split", help="TFDS-style split, e.g. 'train[:10%]' [default: train].")
@click.option("--eval-split", help="Split to evaluate on [default: test, or validation for ImageNet].")
@click.option("--seed", type=int, default=0, show_default=True, help="Initial weights, data order and augmentation.")
@click.option("--deterministic/--no-deterministic", default=True, show_default=True, help="TensorFlow op determinism: the same seed gives bit-identical runs on one machine.")
@click.option("--checkpoint-steps", type=click.IntRange(min=1), help="Also checkpoint every this many steps (besides every epoch and every 10 minutes).")
@click.option("--strategy", type=click.Choice(catalogue.CHOICES["strategies"]), default="default", show_default=True, help="tf.distribute strategy; multi-worker reads TF_CONFIG.")
@click.option("--xla", is_flag=True, help="Compile the training step with XLA (jit_compile).")
@click.option("--mixed-precision", is_flag=True, help="Train in Keras mixed precision: float16 on a GPU, bfloat16 on a CPU or TPU; signs, statistics and the loss stay float32, and the saved model is float32.")
@click.option("-o", "--output", type=click.Path(), help="Run folder; must not exist or be empty [default: runs/MODEL-DATASET-TIME].")
@click.option("--resume", type=click.Path(), metavar="RUN", help="Continue the run in folder RUN from its latest checkpoint, with the options of RUN/config.json (only --epochs may change: it extends the run).")
@click.option("-y", "--yes", is_flag=True, help="Train even when the batch is larger than the data or an epoch has fewer than 20 optimiser steps (without it, a terminal asks first).")
@method_options
@click.pass_context
def train(ctx, data_dir, output, resume, yes, **options):
    """Train MODEL and write a run folder: config.json, checkpoints/, logs/ (TensorBoard),
    history.csv, curves.png, model.h5 and results.json.

    MODEL is a backbone or a named model (`lqm models`); the method options change its
    method part by part, e.g. `lqm train reactnet-18 --threshold insta --activation fprelu`.
    Ctrl-C (or SIGTERM, as batch schedulers send) checkpoints the run; `lqm train --resume
    RUN` continues it exactly where it stopped, and `lqm train --resume RUN --epochs N`
    extends it to N epochs. One process at a time trains in a run folder.
    """
    with one_line_errors():
        warning = None
        if resume:
            run_dir = Path(resume)
            given = [
                "MODEL" if k == "model_name" else f"--{k.replace('_', '-')}" for k in options
                if k != "epochs" and ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT
            ]  # fmt: skip
            if data_dir:
                given.append("--data-dir")
            if given or output:
                raise click.UsageError(
                    f"--resume takes the run's options from its config.json (only --epochs may change); "
                    f"drop {', '.join(given or ['--output'])}"
                )
            saving.read_json(run_dir / "config.json")  # a JSON error by its line, before the run's own reading
            config = lqrun.RunConfig.load(run_dir)
            if options["epochs"] is not None:
                epochs = options["epochs"]
                if epochs < config.recipe.epochs:
                    raise training.TrainingError(f"{run_dir} has {config.recipe.epochs} epoch(s) per step; --epochs can only extend it")
                if epochs > config.recipe.epochs:
                    config = config.replace(
                        recipe=dataclasses.replace(config.recipe, epochs=epochs),
                        commands=(*config.commands, _command_line()),
                    )
        else:
            if not options["model_name"]:
                raise click.UsageError("missing MODEL (or --resume RUN)")
            zoo.get_entry(options["model_name"])  # fail on a bad name before touching anything
            config = _config(options, data_dir)
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = saving.check_new_run_folder(output or f"runs/{options['model_name']}-{options['dataset']}-{stamp}")
            warning = _check_size(config, yes)
        with _sigterm_interrupts() as signals:
            try:
                results = lqrun.run(config, run_dir, resume=bool(resume), echo=_echo_after(warning))
            except training.Interrupted as e:
                click.echo(f"\n{e}; continue with: lqm train --resume {shlex.quote(str(run_dir))}", err=True)
                ctx.exit(128 + (signals[-1] if signals else signal.SIGINT))
            except Exception as e:
                if saving.is_full_disk(e):
                    raise saving.FileError(_full_disk_message(run_dir, e)) from None
                if not _damaged_checkpoint(e):
                    raise
                why = re.sub(r"\{\{[^}]*\}\}\s*", "", str(e).strip()).splitlines()[0]
                why = re.sub(r"\. Perhaps the file is corrupt .* format changes", ":", why)
                raise saving.FileError(f"a checkpoint of {run_dir} is damaged ({why}); the run cannot resume from it") from None
    click.echo(
        f"{results['eval_split']} accuracy {results['eval_accuracy']:.4f} on {results['eval_examples']} "
        f"images after {results['train_seconds']:.0f} s of training"
        f"{f' (and {teacher:.0f} s for the teacher)' if (teacher := results.get('teacher_train_seconds')) else ''}"
        f"; model saved to {run_dir / 'model.h5'}"
    )
