"""`lqm predict`: the top classes of images, from a .tflite, a Keras file or a registered
pretrained model; and the model loading that `lqm evaluate` shares."""

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click
import numpy as np
from tqdm import tqdm

from cli.common import lazy, model_input, one_line_errors, tf, zoo

lqconvert = lazy("larq_methods.convert")
data = lazy("larq_methods.data")
saving = lazy("larq_methods.saving")


@dataclass(frozen=True)
class Classifier:
    """A model to run: its input size and channels, class names if known, and `predict`,
    which takes a batch of images in [-1, 1] and gives class probabilities."""

    label: str
    image_size: int
    channels: int
    class_names: tuple | None
    predict: Callable[[np.ndarray], np.ndarray]
    classes: int  # of its output


def load_classifier(spec: str, *, dataset: str = "fashion_mnist", threads: int | None = None) -> Classifier:
    """A .tflite (LCE's interpreter with `threads` threads, default 1), a Keras model file,
    or a registered model name with its pretrained `dataset` weights.

    One thread by default: LCE runs one image a call, and for small models (28x28) the
    threads' hand-overs cost more than they share; on this 2-core machine under load, 2
    threads evaluated Fashion-MNIST's test set 8x slower than 1 (README, "Your own images")."""
    path = Path(spec)
    if path.suffix == ".tflite":
        lite = lqconvert.TFLiteModel(saving.load_tflite(path), threads or 1)
        size, chans = model_input(lite.input_shape)
        names = lite.class_names or _card_class_names(path)
        classes = int(lite.runner.output_shapes[0][-1])
        _check_names(spec, names, classes)
        return Classifier(str(path), size, chans, tuple(names) if names else None, lite.predict, classes)
    if path.exists() or path.suffix or len(path.parts) > 1:
        run = saving.run_files(path)  # a model file, or a run folder's model.h5
        model = saving.load_model(run.model)
        names = (run.config.get("info") or {}).get("class_names") or None
        _check_names(spec, names, model.output_shape[-1])
    else:  # a model name: its pretrained weights
        zoo.get_entry(spec)
        if data.is_folder(dataset):
            raise zoo.WeightsError(f"{spec} has pretrained weights for named datasets only, not for the folder {dataset}; pass a trained model file")
        model = zoo.create_model(spec, weights=dataset)
        names = zoo.pretrained.class_names(spec, dataset)
        weights = zoo.pretrained.get(spec, dataset)
        spec = f"{spec} ({zoo.pretrained.describe(weights)})"
    size, chans = model_input(model)
    return Classifier(spec, size, chans, tuple(names) if names else None, lambda x: model.predict_on_batch(x), int(model.output_shape[-1]))


def _check_names(spec: str, names, classes: int) -> None:
    """Refuses class names (a card's, a run's) whose number differs from the model's output."""
    if names and len(names) != classes:
        raise saving.FileError(f"{spec} gives {classes} classes, but {len(names)} class names are recorded for it; the model and its card or run do not belong together")


def check_fits(classifier: Classifier, source) -> None:
    """Refuses a dataset split whose classes are not the model's, naming both."""
    classes = classifier.classes
    if classes != source.num_classes:
        height, width, channels = source.image_shape
        shape = f"{height}x{width}x{channels}" if height else f"?x?x{channels}"
        raise data.DatasetError(
            f"the model gives {classes} classes and takes {classifier.image_size}x{classifier.image_size}x{classifier.channels} "
            f"images; {source.name} {source.split} has {source.num_classes} classes of {shape} images"
        )


def _card_class_names(path: Path):
    try:
        return json.loads(path.with_suffix(".json").read_text()).get("class_names")
    except (OSError, ValueError, AttributeError):
        return None


def image_files(paths) -> list[Path]:
    """The files given, with the images (PNG, JPEG, BMP, GIF) under any folder given."""
    files = []
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.suffix.lower() in data.IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise data.DatasetError(f"{saving.shown(given)} holds no images (PNG, JPEG, BMP or GIF)")
            files += found
        elif given.is_file():
            files.append(given)
        else:
            raise saving.FileError(f"{saving.shown(given)}: no such file or folder")
    return files


def read_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """One image as the model takes it: decoded (PNG, JPEG, BMP, GIF's first frame), with
    the model's channels (grey copied to RGB, RGB to luma, alpha dropped, as the folder
    datasets do), preprocessed as for evaluation."""
    try:
        image = tf.io.decode_image(tf.io.read_file(os.fsencode(path)), channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        # TensorFlow's eager errors start with the op's internal name: {{function_node ...}}
        reason = re.sub(r"\{\{[^}]*\}\}\s*", "", str(e).strip()).splitlines()[0].split(" [Op:")[0]
        raise data.DatasetError(f"unreadable image {saving.shown(path)}: {reason}") from None
    return data.preprocess(image, image_size, channels, training=False).numpy()


@click.command()
@click.argument("model", metavar="MODEL_FILE|NAME")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE|FOLDER...")
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="Classes to show per image.")
@click.option("--dataset", default="fashion_mnist", show_default=True, help="The pretrained weights of a registered model NAME.")
@click.option("--threads", type=click.IntRange(min=1), help="Interpreter threads for a .tflite [default: 1; more pay only for large inputs on idle cores].")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image, one a line.")
def predict(model, images, top_k, dataset, threads, batch_size, as_json):
    """The top classes of each IMAGE (PNG, JPEG, BMP or GIF; a FOLDER means the images under
    it) by MODEL_FILE (.tflite run by LCE's interpreter, or a Keras file) or a registered
    model NAME with its pretrained --dataset weights.

    Images are resized to the model's input and scaled as in evaluation; class names come
    from the .tflite's metadata, the run folder of a Keras file, or the weights' dataset.
    """
    with one_line_errors():
        files = image_files(images)
        classifier = load_classifier(model, dataset=dataset, threads=threads)
        names = classifier.class_names
        results = []
        # on a terminal, for more than a batch
        progress = tqdm(total=len(files), unit="image", disable=None if len(files) > batch_size else True, leave=False)
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            batch = np.stack([read_image(f, classifier.image_size, classifier.channels) for f in chunk])
            probs = np.asarray(classifier.predict(batch))
            for path, p in zip(chunk, probs):
                top = np.argsort(-p, kind="stable")[:top_k]
                results.append({"image": saving.shown(path), "top": [{"class": int(i), "name": names[i] if names else str(i), "probability": float(p[i])} for i in top]})
            progress.update(len(chunk))
        progress.close()
    for result in results:
        if as_json:
            click.echo(json.dumps(result))
        else:
            best = ", ".join(f"{t['name']} {t['probability']:.1%}" for t in result["top"])
            click.echo(f"{result['image']}: {best}")
