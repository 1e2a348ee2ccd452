"""`lqm benchmark`: latency in LCE's interpreter, size, parameters, BOPs/FLOPs/OPs and the
operator inventory of a converted model."""

from __future__ import annotations  # annotations name lazy modules

from dataclasses import dataclass
from pathlib import Path

import click

from cli.common import human_bytes, lazy, model_input, native_stderr_silenced, one_line_errors, tf, zoo

lqbench = lazy("larq_methods.benchmark")
lqconvert = lazy("larq_methods.convert")
costs = lazy("larq_methods.costs")
saving = lazy("larq_methods.saving")
training = lazy("larq_methods.training")


@dataclass(frozen=True)
class _Converted:
    """A model to benchmark: its flatbuffer, and its counts (from Keras where there is a
    Keras model, else from the flatbuffer)."""

    label: str
    flatbuffer: bytes
    counts: costs.Costs
    counted_on: str  # "keras" or "tflite"


def _convert(model: tf.keras.Model, label: str) -> _Converted:
    with native_stderr_silenced():  # grappler's and MLIR's notices
        flatbuffer = lqconvert.convert(model)
    # A float fallback would time and count another model than the one asked for.
    lqconvert.check_binarised(model, lqconvert.inventory(flatbuffer))
    converted = _Converted(label, flatbuffer, costs.count(model), "keras")
    tf.keras.backend.clear_session()
    return converted


# a registered model's configuration when it has no pretrained weights and none is given
_DEFAULT_SIZE, _DEFAULT_ALPHA, _DEFAULT_CLASSES = 224, 1.0, 1000


def _pretrained(spec: str, dataset: str):
    """`spec`'s registered `dataset` weights, or None."""
    return next((w for w in zoo.pretrained.entries(spec) if w.dataset == dataset), None)


def _load(spec: str, *, input_shape: tuple | None, alpha: float | None, num_classes: int | None, weights: str = "fashion_mnist") -> _Converted:
    """A .tflite file as it is; a Keras model file, converted; or a registered model.

    A registered model is the one `lqm evaluate NAME` measures: with its pretrained
    `weights` at their configuration, where it has them and none of `input_shape`, `alpha`,
    `num_classes` is given, or where they fit those; otherwise it is built as given (224x224x3,
    alpha 1, 1000 classes for what is not), its weights perturbed (`lqbench.perturb` says
    why)."""
    path = Path(spec)
    if path.suffix == ".tflite":
        flatbuffer = saving.load_tflite(path)
        return _Converted(spec, flatbuffer, lqbench.count(flatbuffer), "tflite")
    if path.exists() or path.suffix or len(path.parts) > 1:
        return _convert(saving.load_model(path), spec)
    zoo.get_entry(spec)  # an unknown name gets the registry's own hint
    trained = _pretrained(spec, weights)
    given = (input_shape, alpha, num_classes)
    if trained and all(g is None or g == t for g, t in zip(given, (trained.input_shape, trained.alpha, trained.num_classes))):
        model = zoo.create_model(spec, weights=weights)
        return _convert(model, f"{spec} ({zoo.pretrained.describe(trained)})")
    input_shape = input_shape or (_DEFAULT_SIZE, _DEFAULT_SIZE, 3)
    alpha, num_classes = alpha or _DEFAULT_ALPHA, num_classes or _DEFAULT_CLASSES
    model = zoo.create_model(spec, input_shape=input_shape, alpha=alpha, num_classes=num_classes)
    size, _, chans = input_shape
    return _convert(lqbench.perturb(model), f"{spec} ({size}x{size}x{chans}, alpha {alpha:g}, {num_classes} classes, untrained, weights perturbed)")


def _shape_and_classes(flatbuffer: bytes) -> tuple[tuple, int]:
    runner = lqconvert.interpreter(flatbuffer)
    size, chans = model_input(runner.input_shapes[0])
    return (size, size, chans), runner.output_shapes[0][-1]


def _echo_counts(title: str, counts: dict, signed=False):
    click.echo(f"{title}:" + ("" if counts else " none"))
    for op, n in counts.items():
        click.echo(f"  {op:<22} {n:+d}" if signed else f"  {op:<22} {n}")


@click.command()
@click.argument("model", metavar="MODEL_OR_TFLITE")
@click.option("--image-size", type=click.IntRange(min=8), help="Input height and width of a registered model [default: its pretrained weights', else 224].")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), help="Width multiplier of a registered model [default: its pretrained weights', else 1].")
@click.option("--num-classes", type=click.IntRange(min=1), help="Classes of a registered model [default: its pretrained weights', else 1000].")
@click.option("--weights", "weights_dataset", default="fashion_mnist", show_default=True, help="Dataset of a registered model's pretrained weights.")
@click.option("--baseline", metavar="NAME_OR_FILE", help="Compare the operators with this model [default: a registered model's backbone].")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Interpreter threads.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed runs first.")
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs.")
@click.option("--indirect-bgemm", is_flag=True, help="Run every binary convolution with LCE's indirect BGEMM kernel [default: only grouped ones, which need it].")
@click.option("--json", "json_path", type=click.Path(), help="Also write the figures to this JSON file.")
def benchmark(model, image_size, alpha, num_classes, weights_dataset, baseline, threads, warmup, runs, indirect_bgemm, json_path):
    """Latency, size, parameters, BOPs, FLOPs, OPs and operators of MODEL_OR_TFLITE.

    MODEL_OR_TFLITE is a .tflite file, a Keras model file (converted with LCE first), or a
    registered model name. A name means the model that `lqm evaluate NAME` measures: its
    pretrained --weights at their configuration (`lqm models` lists them). Given
    --image-size, --alpha or --num-classes it is built so instead, its weights moved off
    their initial values so that nothing folds away in conversion. The first line printed
    says which configuration is measured. The float operators it adds are listed against
    --baseline, or against a registered model's backbone; a registered baseline is built
    with the input shape, classes and width of the model.

    Latency is one example per run in LCE's interpreter. On x86 LCE runs reference kernels:
    compare BNN variants with each other there, never with float models, and only timings
    taken with the same binary-convolution kernel (the indirect BGEMM one is several times
    faster there).
    """
    with one_line_errors():
        if json_path:
            saving.check_writable(json_path)
        options = dict(input_shape=(image_size, image_size, 3) if image_size else None, alpha=alpha, num_classes=num_classes)
        target = _load(model, **options, weights=weights_dataset)
        if baseline is None and model in zoo.list_models() and zoo.get_entry(model).backbone != model:
            baseline = zoo.get_entry(model).backbone
        shape, classes = _shape_and_classes(target.flatbuffer)
        if baseline and alpha is None:  # the target's width, where it is a registered model
            trained = _pretrained(model, weights_dataset) if image_size is None and num_classes is None else None
            alpha = trained.alpha if trained else _DEFAULT_ALPHA
        base = _load(baseline, input_shape=shape, alpha=alpha, num_classes=classes, weights=weights_dataset) if baseline else None
        timing = lqbench.latency(target.flatbuffer, threads=threads, warmup=warmup, runs=runs, indirect_bgemm=indirect_bgemm)

    ops = lqconvert.inventory(target.flatbuffer)
    c = target.counts
    figures = {
        "model": target.label,
        "input_shape": list(shape),
        "latency_ms": timing,
        "note": lqbench.timing_note(),
        "size_bytes": len(target.flatbuffer),
        "counted_on": target.counted_on,
        **{k: getattr(c, k) for k in ("params", "binary_params", "bops", "flops", "ops")},
        "operators": lqbench.operators(ops),
    }
    if base:
        figures["baseline"] = base.label
        figures["added_operators"] = lqbench.added_operators(ops, lqconvert.inventory(base.flatbuffer))

    click.echo(f"{target.label}, converted with LCE")
    click.echo(
        f"Latency: min {timing['min']:.2f} ms, median {timing['median']:.2f} ms, p90 {timing['p90']:.2f} ms "
        f"({runs} runs after {warmup} warm-up, {threads} thread(s), LCE interpreter, {timing['kernel']} kernel)"
    )
    if figures["note"]:
        click.echo(figures["note"])
    click.echo(f"Size: {human_bytes(figures['size_bytes'])} ({figures['size_bytes']} bytes)")
    how = "counted on the Keras model" if target.counted_on == "keras" else "in the .tflite, BatchNorm folded"
    click.echo(f"Parameters: {c.params:,} ({c.binary_params:,} binary; {how})")
    click.echo(f"BOPs: {c.bops:.4g}  FLOPs: {c.flops:.4g}  OPs: {c.ops:.4g}")
    _echo_counts("Binary operators (LCE)", figures["operators"]["binary"])
    _echo_counts("Float operators", figures["operators"]["float"])
    if base:
        _echo_counts(f"Operators added over {base.label}", figures["added_operators"], signed=True)
    if json_path:
        training.write_json(Path(json_path), figures)
        click.echo(f"Wrote {json_path}")
