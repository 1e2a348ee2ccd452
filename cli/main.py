"""`lqm`: train binary networks, convert them with LCE, evaluate and list them.

Every expected failure becomes one line, `Error: ...`, and exit code 1 (click's
`ClickException`); usage errors exit with 2.
"""

import fnmatch
import hashlib
import json
import sys
import time
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from cli import catalogue
from cli.common import data_options, human_bytes, larq_methods, lazy, model_input, native_stderr_silenced, one_line_errors, tf, zoo

# imported when a command first uses them (`lazy`), so that `lqm --help` needs no TensorFlow
lqconvert = lazy("larq_methods.convert")
costs = lazy("larq_methods.costs")
data = lazy("larq_methods.data")
saving = lazy("larq_methods.saving")
lqmethod = lazy("larq_methods.method")


class _Lqm(click.Group):
    """Keeps the command line it was given, so that a run can record it (`argv`)."""

    argv: list = []

    def main(self, args=None, *rest, **kwargs):
        _Lqm.argv = ["lqm", *(sys.argv[1:] if args is None else args)]
        return super().main(args, *rest, **kwargs)


@click.group(cls=_Lqm, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(catalogue.VERSION, prog_name="lqm")
def lqm():
    """Binary neural networks with recent methods, deployed with the Larq Compute Engine."""


@lqm.command()
@click.argument("pattern", default="*")
@click.option("--costs", "with_costs", is_flag=True, help="Also count BOPs, FLOPs and OPs at 224x224, 1000 classes, and the OPs over the backbone's baseline.")
def models(pattern, with_costs):
    """List the registered models whose names match PATTERN (shell-style, default *), each
    with what it follows (code: the authors' released code; paper; ours; larq-zoo) and its
    downloadable pretrained weights: dataset and top-1 accuracy (`lqm download`)."""
    entries = {m["name"]: m for m in catalogue.MODELS}  # without TensorFlow; the same as zoo's
    names = sorted(n for n in entries if fnmatch.fnmatchcase(n, pattern))
    if not names:
        raise click.ClickException(f"no model matches {pattern!r}")
    width = max(len(n) for n in names)
    if not with_costs:
        weights = {}
        for w in catalogue.pretrained():
            weights.setdefault(w["model"], []).append(f"{w['dataset']} {w['accuracy']:.1%}")
        click.echo(f"{'model':<{width}}  {'follows':<8}  {'pretrained (top-1)':<20}  description")
        for name in names:
            entry = entries[name]
            click.echo(f"{name:<{width}}  {entry['follows']:<8}  {', '.join(weights.get(name, ['-'])):<20}  {entry['description']}")
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


def _run_metadata(run) -> dict:
    """What the run folder of a model file says of it (`saving.run_files`): model name,
    method, dataset, class names (config.json) and accuracy (results.json)."""
    config, results = run.config, run.results
    meta = {
        "model": config.get("model"),
        "method": config.get("method"),
        "dataset": _dataset_name((config.get("data") or {}).get("dataset")),
        "class_names": (config.get("info") or {}).get("class_names") or None,
        "accuracy": results.get("eval_accuracy"),
        "accuracy_split": results.get("eval_split"),
    }
    return {k: v for k, v in meta.items() if v is not None}


def _dataset_name(dataset: str | None) -> str | None:
    """A dataset as a shared card names it: a registered name as it is, a folder by its
    own name (a card says nothing of the machine it was made on)."""
    if dataset is None or not data.is_folder(dataset):
        return dataset
    return Path(dataset).expanduser().resolve().name


def _check_convert_outputs(model_file: Path, output: Path, card: Path, overwrite: bool) -> None:
    """Refuses, before anything is converted or written, an output that is not a .tflite,
    that would replace the input, a run's own file, or a file that is not a model or card
    of `lqm convert` (even with --overwrite), or that exists without --overwrite."""
    if output.suffix != ".tflite":
        raise saving.FileError(f"the output must be a .tflite file (its model card goes beside it as .json), not {output}")
    for path in (output, card):
        if path.exists() and model_file.exists() and path.resolve() == model_file.resolve():
            raise saving.FileError(f"{path} is the model being converted; choose another output")
        if saving.is_run_file(path):
            raise saving.FileError(f"{path} is a file of the run folder {path.parent}; choose another output")
        if path.is_dir():
            raise saving.FileError(f"{path} is a folder; choose a .tflite file's path")
        if path.exists() and not overwrite:
            raise saving.FileError(f"{path} already exists; pass --overwrite to replace it")
    if output.exists() and output.read_bytes()[4:8] != b"TFL3":
        raise saving.FileError(f"{output} exists and is not a TFLite model; --overwrite replaces only a converted model")
    if card.exists():
        try:
            written_by_convert = "tflite_sha256" in (saving.read_json(card) or {})
        except saving.FileError:
            written_by_convert = False
        if not written_by_convert:
            raise saving.FileError(
                f"{card}, where the model card of {output.name} goes, exists and is not a card of `lqm convert`; "
                "choose another output"
            )
    for path in (output, card):
        saving.check_writable(path)


def _parity_inputs(dataset, data_dir, samples, size, chans, input_kind, metadata):
    """(the inputs of the parity check, their description): images of `dataset`'s
    evaluation split (which also name the classes in `metadata`), or uniform noise."""
    if not dataset:
        rng = np.random.default_rng(0)
        inputs = rng.uniform(-1, 1, (samples, size, size, chans)).astype(np.float32)
        return inputs, "uniform random in [-1, 1]" + (", as 0-255 pixels" if input_kind == "raw" else "")
    _, eval_split = data.default_splits(dataset)
    try:
        source = data.load(dataset, f"{eval_split}[:{samples}]", data_dir)
    except data.DatasetError:
        if not data.is_folder(dataset):
            raise
        # a folder of class folders alone: parity needs images, not held-out ones
        source = data.load(dataset, f"train[:{samples}]")
    inputs = data.sample_inputs(source, image_size=size, channels=chans, count=samples)
    if source.class_names and "class_names" not in metadata:
        metadata["class_names"] = list(source.class_names)
    metadata.setdefault("dataset", _dataset_name(dataset))
    return inputs, f"{_dataset_name(dataset)}:{source.split}"


@lqm.command()
@click.argument("model_file", type=click.Path())
@click.option("-o", "--output", type=click.Path(), required=True, help="The .tflite file to write; its model card (.json) goes beside it. Never a file of a run folder; --overwrite replaces only an earlier converted model and its card.")
@click.option("--dataset", metavar="NAME|PATH", help="Check parity on this dataset's evaluation images, and take its class names [default: random inputs].")
@click.option("--data-dir", type=click.Path(), help="Dataset folder, as for `lqm train`.")
@click.option("--input", "input_kind", type=click.Choice(catalogue.CHOICES["inputs"]), default="raw", show_default=True, help="raw: the model takes 0-255 pixels and scales them itself; scaled: it takes x / 127.5 - 1.")
@click.option("--class-names", type=click.Path(dir_okay=False), help="A text file of class names, one a line [default: the run's, or --dataset's].")
@click.option("--samples", type=click.IntRange(min=1), default=64, show_default=True, help="Inputs for the parity check.")
@click.option("--min-agreement", type=click.FloatRange(0, 1), default=0.95, show_default=True, help="Least top-1 agreement between Keras and LCE.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def convert(model_file, output, dataset, data_dir, input_kind, class_names, samples, min_agreement, overwrite):
    """Convert MODEL_FILE to a TFLite model with LCE and verify it.

    Prints the operator inventory; fails, writing nothing, if any binary convolution did
    not become an LceBconv2d or if Keras and LCE's interpreter disagree. The .tflite carries
    its model card (input shape, range and scaling, class names, model, method, accuracy)
    as TFLite metadata, with the sha256 of the flatbuffer it rides on, and the same card is
    written beside it as a .json file; both are written, or neither.
    """
    with one_line_errors():
        output, model_path = Path(output), Path(model_file)
        report_path = output.with_suffix(".json")
        _check_convert_outputs(model_path, output, report_path, overwrite)
        run = saving.run_files(model_path)
        model = saving.load_model(run.model)
        size, chans = model_input(model)
        metadata = _run_metadata(run)
        inputs, input_desc = _parity_inputs(dataset, data_dir, samples, size, chans, input_kind, metadata)
        if class_names:
            try:
                metadata["class_names"] = [line.strip() for line in Path(class_names).read_text().splitlines() if line.strip()]
            except (OSError, UnicodeDecodeError) as e:
                raise saving.FileError(f"cannot read --class-names {class_names}: {getattr(e, 'strerror', None) or e}") from None
        if isinstance(metadata.get("method"), dict):
            metadata["method"] = str(lqmethod.Method(**metadata["method"]))
        metadata["version"] = larq_methods.__version__
        with native_stderr_silenced():  # grappler's and MLIR's notices
            flatbuffer, report = lqconvert.convert_and_verify(model, inputs, min_agreement=min_agreement, input=input_kind, metadata=metadata)
        card = report.pop("card")
        # file names, not this machine's paths: the card travels with the model
        source_name = str(run.model.resolve().relative_to(run.folder.resolve())) if run.folder else run.model.name
        report = {
            **card, "model_file": source_name, "tflite_file": output.name,
            "tflite_sha256": hashlib.sha256(flatbuffer).hexdigest(), **report,
        }  # fmt: skip
        report["parity"]["inputs"] = input_desc
        # both or neither: a full disk leaves an earlier model and card as they were
        saving.write_files({output: flatbuffer, report_path: (json.dumps(report, indent=2, default=str) + "\n").encode()})

    click.echo("Operators:")
    for op, n in report["operators"].items():
        click.echo(f"  {op:<22} {n}")
    p = report["parity"]
    names = report["class_names"]
    click.echo(
        f"All {report['binary_convolutions']} binary convolutions are LceBconv2d.\n"
        f"Parity on {p['examples']} inputs ({p['inputs']}): max |diff| {p['max_abs_diff']:.2e}, "
        f"top-1 agreement {p['top1_agreement']:.1%}\n"
        f"Input: {report['input']['scaling']}; classes: {', '.join(names) if names else 'unnamed (pass --class-names or --dataset)'}\n"
        f"Wrote {output} ({human_bytes(report['size_bytes'])}, with TFLite metadata) and {report_path}"
    )


@lqm.command()
@click.argument("model_file", metavar="MODEL_FILE|NAME")
@data_options
@click.option("--split", help="Split to evaluate [default: test, or validation for ImageNet].")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="Interpreter threads for .tflite files [default: 1; more pay only for large inputs on idle cores].")
def evaluate(model_file, dataset, data_dir, validation_split, skip_bad_images, split, batch_size, threads):
    """Top-1 accuracy of MODEL_FILE: a Keras model, a .tflite run by LCE's interpreter, or
    a registered model NAME with its pretrained weights for --dataset (`lqm download`).

    A progress bar on stderr shows the images done."""
    with one_line_errors():
        classifier = load_classifier(model_file, dataset=dataset, threads=threads)
        source = data.load(
            dataset, split or data.default_splits(dataset)[1], data_dir,
            validation_split=validation_split, skip_bad_images=skip_bad_images,
        )  # fmt: skip
        check_fits(classifier, source)
        batches = data.pipeline(source, image_size=classifier.image_size, channels=classifier.channels, batch_size=batch_size, training=False)
        probs, labels = [], []
        start = time.perf_counter()
        try:
            with tqdm(total=source.num_examples, unit="image", leave=False, disable=None) as progress:  # on a terminal only
                for x, y in batches.as_numpy_iterator():
                    probs.append(np.asarray(classifier.predict(x)))
                    labels.append(y)
                    progress.update(len(y))
        except tf.errors.InvalidArgumentError:  # an image whose pixels do not decode
            bad = data.find_unreadable(source)
            raise data.DatasetError(f"unreadable image {saving.shown(bad)}; pass --skip-bad-images to leave such files out" if bad else "an image of the dataset cannot be decoded") from None
        seconds = time.perf_counter() - start
    if not labels:
        raise click.ClickException(f"{source.name} {source.split} holds no images")
    probs, labels = np.concatenate(probs), np.concatenate(labels)
    accuracy = float(np.mean(probs.argmax(-1) == labels))
    click.echo(f"{classifier.label} on {source.name} {source.split}: top-1 accuracy {accuracy:.4f} on {len(labels)} images ({seconds:.1f} s)")
    click.echo(json.dumps({"accuracy": accuracy, "examples": len(labels), "seconds": round(seconds, 2)}))


# Commands that live in modules of their own (each defines one click command).
# (one `lqm.add_command(...)` line per module goes here)
from cli.benchmark import benchmark  # noqa: E402
from cli.compare import compare  # noqa: E402
from cli.train import train  # noqa: E402
from cli.download import download  # noqa: E402
from cli.predict import check_fits, load_classifier, predict  # noqa: E402
from cli.search_af import search_af  # noqa: E402

lqm.add_command(benchmark)
lqm.add_command(compare)
lqm.add_command(train)
lqm.add_command(download)
lqm.add_command(predict)
lqm.add_command(search_af)


if __name__ == "__main__":  # pragma: no cover
    lqm()
