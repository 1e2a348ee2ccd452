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
import numpy as np

import zoo
from cli.common import (
    data_options,
    human_bytes,
    larq_methods,
    model_input,
    native_stderr_silenced,
    one_line_errors,
    tf,
)
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


@lqm.command()
@click.argument("model_name", metavar="MODEL")
@data_options
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Adam's initial rate, decayed linearly to zero.")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Width multiplier.")
@click.option("--image-size", type=click.IntRange(min=8), help="Input height and width [default: the dataset's].")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Input channels [default: the dataset's].")
@click.option("--train-split", help="TFDS-style split, e.g. 'train[:10%]' [default: train].")
@click.option("--eval-split", help="Split to evaluate on [default: test, or validation for ImageNet].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(), help="Run folder; must not exist or be empty [default: runs/MODEL-DATASET-TIME].")
@_method_options
def train(model_name, dataset, data_dir, epochs, batch_size, learning_rate, alpha, image_size, channels, train_split, eval_split, seed, output, preset, threshold, activation, weight_binarisation, gamma, gaaf, groups, downsample):
    """Train MODEL and write a run folder: config.json, history.csv, model.h5.

    MODEL is a backbone or a named model (`lqm models`); the method options change its
    method part by part, e.g. `lqm train reactnet-18 --threshold insta --activation fprelu`.
    """
    with one_line_errors():
        zoo.get_entry(model_name)  # fail on a bad name before touching anything
        method = _method(
            model_name, preset, threshold=threshold, activation=activation,
            weights=weight_binarisation, gamma=gamma, gaaf=gaaf, groups=groups, downsample=downsample,
        )  # fmt: skip
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        # checked before the data loads; created only once the model is built
        run_dir = saving.check_new_run_folder(output or f"runs/{model_name}-{dataset}-{stamp}")
        default_train, default_eval = data.default_splits(dataset)
        train_set = data.load(dataset, train_split or default_train, data_dir)
        eval_set = data.load(dataset, eval_split or default_eval, data_dir)
        size = image_size or train_set.image_shape[0]
        if size is None:
            raise click.ClickException(f"{dataset} has images of varying size; pass --image-size")
        chans = int(channels or train_set.image_shape[2])

        tf.keras.utils.set_random_seed(seed)
        model = zoo.create_model(
            model_name, input_shape=(size, size, chans), num_classes=train_set.num_classes, alpha=alpha, method=method
        )
        steps = epochs * -(-train_set.num_examples // batch_size)
        training.compile_classifier(model, learning_rate=learning_rate, total_steps=steps)
        pipe = dict(image_size=size, channels=chans, batch_size=batch_size)
        train_data = data.pipeline(train_set, training=True, seed=seed, **pipe)
        eval_data = data.pipeline(eval_set, training=False, **pipe)

        model_costs = costs.count(model)
        config = {
            "model": model_name,
            "method": method.as_dict(),
            "dataset": dataset,
            "data_dir": data_dir,
            "train_split": train_set.split,
            "eval_split": eval_set.split,
            "input_shape": [size, size, chans],
            "num_classes": train_set.num_classes,
            "alpha": alpha,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "schedule": "linear decay to 0 per step",
            "optimizer": "adam",
            "seed": seed,
            "costs": model_costs.as_dict(),
            "versions": {"larq_methods": larq_methods.__version__, "tensorflow": tf.__version__},
            "command": " ".join(sys.argv),
        }
        saving.create_run_folder(run_dir)
        training.write_json(run_dir / "config.json", config)
        click.echo(
            f"Training {model_name} ({method}; alpha {alpha}, {size}x{size}x{chans}, "
            f"{model_costs.bops:.3g} BOPs, {model_costs.flops:.3g} FLOPs) on "
            f"{train_set.num_examples} {dataset} images for {epochs} epoch(s) -> {run_dir}"
        )
        start = time.perf_counter()
        history = training.fit(model, train_data, eval_data, epochs=epochs, run_dir=run_dir)
        seconds = time.perf_counter() - start
        losses = history.history.get("loss", [])
        if not losses or not np.isfinite(losses[-1]) or "val_accuracy" not in history.history:
            raise click.ClickException(
                f"the training loss became NaN in epoch {len(losses)}; no model was saved "
                f"(see {run_dir / 'history.csv'}); try a lower --learning-rate"
            )
        loss, accuracy = history.history["val_loss"][-1], history.history["val_accuracy"][-1]
        saving.save_model(model, run_dir / "model.h5")
        results = {"eval_loss": loss, "eval_accuracy": accuracy, "eval_examples": eval_set.num_examples, "train_seconds": seconds}
        training.write_json(run_dir / "results.json", results)
    click.echo(
        f"{eval_set.split} accuracy {accuracy:.4f} on {eval_set.num_examples} images after "
        f"{seconds:.0f} s; model saved to {run_dir / 'model.h5'}"
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
@click.argument("model_file", type=click.Path())
@data_options
@click.option("--split", help="Split to evaluate [default: test, or validation for ImageNet].")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="Interpreter threads for .tflite files.")
def evaluate(model_file, dataset, data_dir, split, batch_size, threads):
    """Top-1 accuracy of MODEL_FILE: a Keras model, or a .tflite run by LCE's interpreter."""
    with one_line_errors():
        path = Path(model_file)
        if not path.exists():
            raise saving.FileError(f"{path}: no such file")
        if path.suffix == ".tflite":
            flatbuffer = path.read_bytes()
            try:
                shape = lqconvert.interpreter(flatbuffer).input_shapes[0]
            except Exception as e:
                raise saving.FileError(f"{path} is not a TFLite model: {e}") from None
            size, chans = model_input(shape)
        else:
            model = saving.load_model(path)
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
from cli.download import download  # noqa: E402

lqm.add_command(download)


if __name__ == "__main__":  # pragma: no cover
    lqm()
