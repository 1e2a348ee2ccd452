"""`lqm`: train binary networks, convert them with LCE, evaluate and list them.

Every expected failure becomes one line, `Error: ...`, and exit code 1 (click's
`ClickException`); usage errors exit with 2.
"""

import datetime
import json
import sys
import time
from pathlib import Path

import click

# first: it imports TensorFlow with its start-up noise silenced
from cli.common import (  # isort: skip
    data_options,
    human_bytes,
    larq_methods,
    model_input,
    native_stderr_silenced,
    one_line_errors,
    tf,
)
import numpy as np
import zoo
from larq_methods import convert as lqconvert
from larq_methods import costs, data, saving, training
from larq_methods import method as lqmethod


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(larq_methods.__version__, prog_name="lqm")
def lqm():
    """Binary neural networks with recent methods, deployed with the Larq Compute Engine."""


@lqm.command()
@click.argument("pattern", default="*")
@click.option("--costs", "with_costs", is_flag=True, help="Also count BOPs, FLOPs and OPs at 224x224, 1000 classes, and the OPs over the backbone's baseline.")
def models(pattern, with_costs):
    """List the registered models whose names match PATTERN (shell-style, default *)."""
    names = zoo.list_models(pattern)
    if not names:
        raise click.ClickException(f"no model matches {pattern!r}")
    width = max(len(n) for n in names)
    if not with_costs:
        for name in names:
            click.echo(f"{name:<{width}}  {zoo.get_entry(name).description}")
        return
    counted = {}

    def count(name):
        if name not in counted:
            counted[name] = costs.count(zoo.create_model(name))
            tf.keras.backend.clear_session()
        return counted[name]

    click.echo(f"{'model':<{width}}  {'backbone':<11}  {'BOPs':>9}  {'FLOPs':>9}  {'OPs':>9}  {'vs base':>7}  {'params':>7}")
    for name in names:
        entry = zoo.get_entry(name)
        c, base = count(name), count(entry.backbone)
        click.echo(
            f"{name:<{width}}  {entry.backbone:<11}  {c.bops:9.3g}  {c.flops:9.3g}  {c.ops:9.3g}  "
            f"{c.ops / base.ops - 1:+7.1%}  {c.params / 1e6:6.2f}M"
        )


def _method_options(f):
    """Options that change the named model's method, part by part."""
    options = [
        click.option("--method", "preset", type=click.Choice(sorted(zoo.PRESETS)), help="Start from this method preset instead of the model's own."),
        click.option("--threshold", type=click.Choice(lqmethod.THRESHOLDS), help="Sign threshold."),
        click.option("--activation", type=click.Choice(lqmethod.ACTIVATIONS), help="Activation of the block."),
        click.option("--weights", "weight_binarisation", type=click.Choice(lqmethod.WEIGHTS), help="Weight scale: mean-abs (ReActNet) or learned (ReBNN)."),
        click.option("--gamma", help="ReBNN balance: 'adaptive' or a number such as 2e-4."),
        click.option("--gaaf", help="GAAF genome of a complementary activation before the sign, e.g. 'add(sin,x)'."),
        click.option("--groups", type=click.IntRange(min=1), help="Groups of the 3x3 binary convolutions."),
        click.option("--downsample", type=click.Choice(lqmethod.DOWNSAMPLES), help="Shortcut 1x1 convolution: real or binary."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _method(model_name, preset, **parts):
    """The named model's method (or `preset`), with the given parts replaced."""
    base = zoo.PRESETS[preset] if preset else zoo.get_entry(model_name).method
    changes = {k: v for k, v in parts.items() if v is not None}
    if "gamma" in changes and changes["gamma"] != "adaptive":
        try:
            changes["gamma"] = float(changes["gamma"])
        except ValueError:
            raise lqmethod.MethodError(f"--gamma must be 'adaptive' or a number, not {changes['gamma']!r}") from None
    return base.replace(**changes) if changes else base


# Options that describe the run; with --resume they come from the run's config.json.
_RUN_OPTIONS = (
    "model_name", "dataset", "epochs", "batch_size", "learning_rate", "alpha", "image_size",
    "channels", "train_split", "eval_split", "seed", "recipe", "teacher", "warmup_epochs",
    "weight_decay", "label_smoothing", "xla", "preset", "threshold", "activation",
    "weight_binarisation", "gamma", "gaaf", "groups", "downsample",
)  # fmt: skip


def _load_teacher(spec, dataset, input_shape, num_classes):
    """The frozen teacher: a model file, a run folder (its model.h5), or a registered model
    name with pretrained weights for `dataset`; its input and classes must fit."""
    path = Path(spec)
    if path.is_dir() and (path / "model.h5").exists():
        path = path / "model.h5"
    if path.exists():
        teacher = saving.load_model(path)
    else:
        try:
            zoo.get_entry(spec)
        except zoo.UnknownModelError:
            raise saving.FileError(f"--teacher {spec}: neither a model file, a run folder nor a model name") from None
        try:
            teacher = zoo.create_model(spec, weights=dataset, input_shape=input_shape, num_classes=num_classes)
        except (ValueError, OSError) as e:
            raise training.TrainingError(
                f"--teacher {spec}: no pretrained {dataset} weights ({str(e).splitlines()[0]}); "
                f"train it first, e.g. `lqm train {spec} --output runs/teacher`, and pass runs/teacher"
            ) from None
    if tuple(teacher.input_shape[1:]) != tuple(input_shape) or teacher.output_shape[-1] != num_classes:
        raise training.TrainingError(
            f"--teacher {spec} takes {teacher.input_shape[1:]} and gives {teacher.output_shape[-1]} "
            f"classes; the student takes {tuple(input_shape)} and gives {num_classes}"
        )
    return teacher


def _run_training(o: dict, run_dir: Path, *, data_dir, strategy_name, resume):
    """Trains as the options `o` say into `run_dir` (new, or resumed); returns results."""
    method = _method(
        o["model_name"], o["preset"], threshold=o["threshold"], activation=o["activation"],
        weights=o["weight_binarisation"], gamma=o["gamma"], gaaf=o["gaaf"], groups=o["groups"],
        downsample=o["downsample"],
    )  # fmt: skip
    recipe = training.Recipe(
        recipe=o["recipe"], epochs=o["epochs"], batch_size=o["batch_size"],
        learning_rate=o["learning_rate"], warmup_epochs=o["warmup_epochs"],
        weight_decay=o["weight_decay"], label_smoothing=o["label_smoothing"], jit_compile=o["xla"],
    )  # fmt: skip
    dataset = o["dataset"]
    default_train, default_eval = data.default_splits(dataset)
    train_set = data.load(dataset, o["train_split"] or default_train, data_dir)
    eval_set = data.load(dataset, o["eval_split"] or default_eval, data_dir)
    size = o["image_size"] or train_set.image_shape[0]
    if size is None:
        raise click.ClickException(f"{dataset} has images of varying size; pass --image-size")
    chans = int(o["channels"] or train_set.image_shape[2])
    shape, classes = (size, size, chans), train_set.num_classes
    strategy = training.make_strategy(strategy_name)

    def build(step_method):
        tf.keras.utils.set_random_seed(o["seed"])
        return zoo.create_model(o["model_name"], input_shape=shape, num_classes=classes, alpha=o["alpha"], method=step_method)

    teacher = None
    if o["teacher"]:
        _load_teacher(o["teacher"], dataset, shape, classes)  # fail before the run starts
        teacher = lambda: _load_teacher(o["teacher"], dataset, shape, classes)  # noqa: E731
    model_costs = costs.count(build(method))
    tf.keras.backend.clear_session()
    pipe = dict(image_size=size, channels=chans, batch_size=o["batch_size"])
    train_data = data.pipeline(train_set, training=True, seed=o["seed"], **pipe)
    eval_data = data.pipeline(eval_set, training=False, **pipe)
    steps_per_epoch = -(-train_set.num_examples // o["batch_size"])

    if not resume:
        config = {
            "options": o,
            "method": method.as_dict(),
            "train_split": train_set.split,
            "eval_split": eval_set.split,
            "data_dir": str(Path(data_dir).resolve()) if data_dir else None,  # --resume's default
            "input_shape": list(shape),
            "num_classes": classes,
            "schedule": f"Adam, {o['warmup_epochs']} warm-up epochs, then linear decay to 0 per step",
            "steps": [{"folder": n or ".", "method": m.as_dict(), "weight_decay": wd} for n, m, wd in recipe.steps(method)],
            "strategy": strategy_name,
            "replicas": strategy.num_replicas_in_sync,
            "costs": model_costs.as_dict(),
            "versions": {"larq_methods": larq_methods.__version__, "tensorflow": tf.__version__},
            "command": " ".join(sys.argv),
        }
        if training.is_chief(strategy):
            saving.create_run_folder(run_dir)
            training.write_json(run_dir / "config.json", config)
    click.echo(
        f"{'Resuming' if resume else 'Training'} {o['model_name']} ({method}; alpha {o['alpha']}, "
        f"{size}x{size}x{chans}, {model_costs.bops:.3g} BOPs, {model_costs.flops:.3g} FLOPs), "
        f"{o['recipe']}{', distilled from ' + o['teacher'] if o['teacher'] else ''}, on "
        f"{train_set.num_examples} {dataset} images, {o['epochs']} epoch(s) per step, "
        f"{strategy.num_replicas_in_sync} replica(s) -> {run_dir}"
    )

    def announce(name, step_method, weight_decay):
        if name:
            click.echo(f"{name}: {step_method}, weight decay {weight_decay:g}")

    start = time.perf_counter()
    training.train(
        build, method, train_data, eval_data, recipe, run_dir, steps_per_epoch=steps_per_epoch,
        teacher=teacher, strategy=strategy, resume=resume, on_step=announce,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    last_step = recipe.steps(method)[-1][0]
    history = training.read_history(run_dir / last_step / "history.csv")
    return {
        "eval_split": eval_set.split,
        "eval_loss": history["val_loss"][-1],
        "eval_accuracy": history["val_accuracy"][-1],
        "eval_examples": eval_set.num_examples,
        "train_seconds": seconds,
    }


@lqm.command()
@click.argument("model_name", metavar="MODEL", required=False)
@data_options
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True, help="Epochs (per step with --recipe two-step).")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True, help="Global batch size, split over the strategy's replicas.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Adam's peak rate, decayed linearly to zero per step.")
@click.option("--warmup-epochs", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Linear warm-up before the decay.")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="L2 on convolution kernels, coupled with Adam as in the papers [default: 1e-5 in step 1 of two-step, else 0].")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--recipe", type=click.Choice(training.RECIPES), default="one-step", show_default=True, help="two-step: ReActNet's step 1 (binary activations, real weights), then step 2 (all binary) from step 1's weights.")
@click.option("--teacher", metavar="MODEL_FILE|RUN|NAME", help="Distil from this frozen model with the distributional loss (e.g. a trained float-resnet18).")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Width multiplier.")
@click.option("--image-size", type=click.IntRange(min=8), help="Input height and width [default: the dataset's].")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Input channels [default: the dataset's].")
@click.option("--train-split", help="TFDS-style split, e.g. 'train[:10%]' [default: train].")
@click.option("--eval-split", help="Split to evaluate on [default: test, or validation for ImageNet].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--strategy", type=click.Choice(training.STRATEGIES), default="default", show_default=True, help="tf.distribute strategy; multi-worker reads TF_CONFIG.")
@click.option("--xla", is_flag=True, help="Compile the training step with XLA (jit_compile).")
@click.option("-o", "--output", type=click.Path(), help="Run folder; must not exist or be empty [default: runs/MODEL-DATASET-TIME].")
@click.option("--resume", type=click.Path(), metavar="RUN", help="Continue the run in folder RUN from its latest checkpoint (takes its options from RUN/config.json).")
@_method_options
@click.pass_context
def train(ctx, data_dir, strategy, output, resume, **options):
    """Train MODEL and write a run folder: config.json, checkpoints/, logs/ (TensorBoard),
    history.csv, curves.png and model.h5.

    MODEL is a backbone or a named model (`lqm models`); the method options change its
    method part by part, e.g. `lqm train reactnet-18 --threshold insta --activation fprelu`.
    Ctrl-C checkpoints the run; `lqm train --resume RUN` continues it.
    """
    with one_line_errors():
        if resume:
            given = [
                "MODEL" if k == "model_name" else f"--{k.replace('_', '-')}" for k in options
                if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT
            ]  # fmt: skip
            if given or output:
                raise click.UsageError(f"--resume takes its options from the run's config.json; drop {', '.join(given or ['--output'])}")
            run_dir = Path(resume)
            try:
                config = json.loads((run_dir / "config.json").read_text())
                saved = config["options"]
            except (OSError, ValueError, KeyError, TypeError):
                raise saving.FileError(f"{run_dir} is not a run folder of `lqm train` (no readable config.json)") from None
            if all((run_dir / step["folder"] / "model.h5").exists() for step in config.get("steps") or [{"folder": "."}]):
                raise training.TrainingError(f"{run_dir} is complete: every step has its model.h5")
            options = {k: saved.get(k) for k in _RUN_OPTIONS}
            data_dir = data_dir or config.get("data_dir")  # the run's data, not the default's
        else:
            if not options["model_name"]:
                raise click.UsageError("missing MODEL (or --resume RUN)")
            zoo.get_entry(options["model_name"])  # fail on a bad name before touching anything
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = saving.check_new_run_folder(output or f"runs/{options['model_name']}-{options['dataset']}-{stamp}")
        try:
            results = _run_training(options, run_dir, data_dir=data_dir, strategy_name=strategy, resume=bool(resume))
        except training.Interrupted as e:
            click.echo(f"\n{e}; continue with: lqm train --resume {run_dir}", err=True)
            ctx.exit(130)
        training.write_json(run_dir / "results.json", results)
    click.echo(
        f"{results['eval_split']} accuracy {results['eval_accuracy']:.4f} on {results['eval_examples']} "
        f"images after {results['train_seconds']:.0f} s; model saved to {run_dir / 'model.h5'}"
    )


@lqm.command()
@click.argument("model_file", type=click.Path())
@click.option("-o", "--output", type=click.Path(), required=True, help="The .tflite file to write; a .json report goes beside it.")
@click.option("--dataset", help="Check parity on this dataset's evaluation images [default: random inputs].")
@click.option("--data-dir", type=click.Path(), help="Dataset folder, as for `lqm train`.")
@click.option("--samples", type=click.IntRange(min=1), default=64, show_default=True, help="Inputs for the parity check.")
@click.option("--min-agreement", type=click.FloatRange(0, 1), default=0.95, show_default=True, help="Least top-1 agreement between Keras and LCE.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def convert(model_file, output, dataset, data_dir, samples, min_agreement, overwrite):
    """Convert MODEL_FILE to a TFLite model with LCE and verify it.

    Prints the operator inventory; fails, writing nothing, if any binary convolution did
    not become an LceBconv2d or if Keras and LCE's interpreter disagree.
    """
    with one_line_errors():
        output = Path(output)
        report_path = output.with_suffix(".json")
        for path in (output, report_path):
            if path.exists() and not overwrite:
                raise saving.FileError(f"{path} already exists; pass --overwrite to replace it")
            saving.check_writable(path)
        model = saving.load_model(model_file)
        size, chans = model_input(model)
        if dataset:
            _, eval_split = data.default_splits(dataset)
            source = data.load(dataset, f"{eval_split}[:{samples}]", data_dir)
            inputs = data.sample_inputs(source, image_size=size, channels=chans, count=samples)
            input_desc = f"{dataset}:{source.split}"
        else:
            rng = np.random.default_rng(0)
            inputs = rng.uniform(-1, 1, (samples, size, size, chans)).astype(np.float32)
            input_desc = "uniform random in [-1, 1]"
        with native_stderr_silenced():  # grappler's and MLIR's notices
            flatbuffer, report = lqconvert.convert_and_verify(model, inputs, min_agreement=min_agreement)
        report = {"model_file": str(model_file), "tflite_file": str(output), **report}
        report["parity"]["inputs"] = input_desc
        saving.write_bytes(output, flatbuffer)
        training.write_json(report_path, report)

    click.echo("Operators:")
    for op, n in report["operators"].items():
        click.echo(f"  {op:<22} {n}")
    p = report["parity"]
    click.echo(
        f"All {report['binary_convolutions']} binary convolutions are LceBconv2d.\n"
        f"Parity on {p['examples']} inputs ({p['inputs']}): max |diff| {p['max_abs_diff']:.2e}, "
        f"top-1 agreement {p['top1_agreement']:.1%}\n"
        f"Wrote {output} ({human_bytes(report['size_bytes'])}) and {report_path}"
    )


@lqm.command()
@click.argument("model_file", metavar="MODEL_FILE|NAME")
@data_options
@click.option("--split", help="Split to evaluate [default: test, or validation for ImageNet].")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="Interpreter threads for .tflite files.")
def evaluate(model_file, dataset, data_dir, split, batch_size, threads):
    """Top-1 accuracy of MODEL_FILE: a Keras model, a .tflite run by LCE's interpreter, or
    a registered model NAME with its pretrained weights for --dataset (`lqm download`)."""
    with one_line_errors():
        path = Path(model_file)
        if path.suffix == ".tflite":
            flatbuffer = saving.load_tflite(path)
            size, chans = model_input(lqconvert.interpreter(flatbuffer).input_shapes[0])
        elif path.exists() or path.suffix or len(path.parts) > 1:
            model = saving.load_model(path)
            size, chans = model_input(model)
        else:  # a model name: its pretrained weights
            zoo.get_entry(model_file)
            model = zoo.create_model(model_file, weights=dataset)
            size, chans = model_input(model)
        source = data.load(dataset, split or data.default_splits(dataset)[1], data_dir)
        batches = data.pipeline(source, image_size=size, channels=chans, batch_size=batch_size, training=False)
        labels = np.concatenate([y.numpy() for _, y in batches])
        start = time.perf_counter()
        if path.suffix == ".tflite":
            probs = lqconvert.tflite_predict(flatbuffer, (x for x, _ in batches.as_numpy_iterator()), num_threads=threads)
        else:
            probs = model.predict(batches.map(lambda x, y: x), verbose=0)
        seconds = time.perf_counter() - start
    accuracy = float(np.mean(probs.argmax(-1) == labels))
    click.echo(f"{source.name} {source.split}: top-1 accuracy {accuracy:.4f} on {len(labels)} images ({seconds:.1f} s)")
    click.echo(json.dumps({"accuracy": accuracy, "examples": len(labels), "seconds": round(seconds, 2)}))


# Commands that live in modules of their own (each defines one click command).
# (one `lqm.add_command(...)` line per module goes here)
from cli.benchmark import benchmark  # noqa: E402
from cli.download import download  # noqa: E402
from cli.search_af import search_af  # noqa: E402

lqm.add_command(benchmark)
lqm.add_command(download)
lqm.add_command(search_af)


if __name__ == "__main__":  # pragma: no cover
    lqm()
