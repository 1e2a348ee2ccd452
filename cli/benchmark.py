"""`lqm benchmark`: latency in LCE's interpreter, size, parameters, BOPs/FLOPs/OPs and the
operator inventory of a converted model."""

from dataclasses import dataclass
from pathlib import Path

import click

from cli.common import human_bytes, model_input, native_stderr_silenced, one_line_errors, tf, zoo
from larq_methods import benchmark as lqbench
from larq_methods import convert as lqconvert
from larq_methods import costs, saving, training


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


def _load(spec: str, *, input_shape: tuple, alpha: float, num_classes: int) -> _Converted:
    """A .tflite file as it is; a Keras model file, converted; or a registered model, built
    with its weights perturbed (`lqbench.perturb` says why) and converted."""
    path = Path(spec)
    if path.suffix == ".tflite":
        flatbuffer = saving.load_tflite(path)
        return _Converted(spec, flatbuffer, lqbench.count(flatbuffer), "tflite")
    if path.exists() or path.suffix or len(path.parts) > 1:
        return _convert(saving.load_model(path), spec)
    zoo.get_entry(spec)  # an unknown name gets the registry's own hint
    model = zoo.create_model(spec, input_shape=input_shape, alpha=alpha, num_classes=num_classes)
    size, _, chans = input_shape
    return _convert(lqbench.perturb(model), f"{spec} ({size}x{size}x{chans}, alpha {alpha}, {num_classes} classes)")


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
@click.option("--image-size", type=click.IntRange(min=8), default=224, show_default=True, help="Input height and width of a registered model.")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Width multiplier of a registered model.")
@click.option("--num-classes", type=click.IntRange(min=1), default=1000, show_default=True, help="Classes of a registered model.")
@click.option("--baseline", metavar="NAME_OR_FILE", help="Compare the operators with this model [default: a registered model's backbone].")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Interpreter threads.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed runs first.")
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs.")
@click.option("--indirect-bgemm", is_flag=True, help="Run every binary convolution with LCE's indirect BGEMM kernel [default: only grouped ones, which need it].")
@click.option("--json", "json_path", type=click.Path(), help="Also write the figures to this JSON file.")
def benchmark(model, image_size, alpha, num_classes, baseline, threads, warmup, runs, indirect_bgemm, json_path):
    """Latency, size, parameters, BOPs, FLOPs, OPs and operators of MODEL_OR_TFLITE.

    MODEL_OR_TFLITE is a .tflite file, a Keras model file (converted with LCE first), or a
    registered model name (built with --image-size, --alpha and --num-classes, its weights
    moved off their initial values so that nothing folds away in conversion, and
    converted). The float operators it adds are listed against --baseline, or against a
    registered model's backbone; a registered baseline is built with the input shape and
    classes of the model, and --alpha.

    Latency is one example per run in LCE's interpreter. On x86 LCE runs reference kernels:
    compare BNN variants with each other there, never with float models, and only timings
    taken with the same binary-convolution kernel (the indirect BGEMM one is several times
    faster there).
    """
    with one_line_errors():
        if json_path:
            saving.check_writable(json_path)
        options = dict(input_shape=(image_size, image_size, 3), alpha=alpha, num_classes=num_classes)
        target = _load(model, **options)
        if baseline is None and model in zoo.list_models() and zoo.get_entry(model).backbone != model:
            baseline = zoo.get_entry(model).backbone
        shape, classes = _shape_and_classes(target.flatbuffer)
        base = _load(baseline, input_shape=shape, alpha=alpha, num_classes=classes) if baseline else None
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
