"""Benchmarks of converted models: latency in LCE's interpreter, and the counts (BOPs,
FLOPs, parameters) and operators of a .tflite, read from the flatbuffer alone.

LCE is optimised for 64-bit ARM; on x86 its interpreter runs unoptimised kernels, so x86
timings rank BNN variants against one another and say nothing of a float model's speed, nor
of a phone's. There its indirect BGEMM kernel runs binary convolutions several times faster
than its default one, with the same outputs: compare models timed with the same kernel.
"""

import functools
import platform
import time
from collections import Counter

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from larq_methods import convert, costs

X86_NOTE = (
    "x86: LCE's reference kernels; compare BNN variants with each other, not with float models"
)


def timing_note() -> str | None:
    """What a reader of this machine's timings must know, or None on 64-bit ARM."""
    return None if platform.machine().lower() in ("aarch64", "arm64") else X86_NOTE


def latency(flatbuffer: bytes, *, threads=1, warmup=3, runs=20, indirect_bgemm=False) -> dict:
    """Milliseconds per inference of one example in LCE's interpreter: the minimum, median
    and 90th percentile of `runs` timed runs that follow `warmup` untimed ones, and the
    binary-convolution kernel that ran.

    A run is one call of the interpreter: copying the input in, invoking, copying the
    output out (the copies are small against the inference). The kernel is LCE's default
    BGEMM, or its indirect BGEMM if `indirect_bgemm` or where grouped binary convolutions
    need it; both give the same outputs, at speeds that differ several times on x86.
    """
    timings = latencies(
        {"": flatbuffer}, threads=threads, warmup=warmup, runs=runs, indirect_bgemm=indirect_bgemm
    )
    return timings[""]


def interleaved(calls: dict, *, rounds: int, steps: int = 1, progress: bool = False) -> dict:
    """Seconds per call of each function in `calls`, keyed as `calls` is: a list of `rounds`
    windows of `steps` calls each. The windows take turns, one of each function in a round,
    so that a change in the machine's load while they run (other processes, clock speed)
    falls on all alike and their ratios hold.
    """
    windows = {key: [] for key in calls}
    for r in range(rounds):
        for key, call in calls.items():
            start = time.perf_counter()
            for _ in range(steps):
                call()
            windows[key].append((time.perf_counter() - start) / steps)
        if progress:
            print(f"round {r + 1} of {rounds} done", flush=True)
    return windows


def latencies(flatbuffers: dict, *, threads=1, warmup=3, runs=20, indirect_bgemm=False) -> dict:
    """`latency` of each of several models, keyed as `flatbuffers` is, their runs taking
    turns (`interleaved`)."""
    rng = np.random.default_rng(0)
    runners, inputs, kernels = {}, {}, {}
    for key, flatbuffer in flatbuffers.items():
        indirect = indirect_bgemm or convert.has_grouped_bconv(flatbuffer)
        kernels[key] = "indirect BGEMM" if indirect else "BGEMM"
        # the wrapper itself: one call per example, without the Python-side batching
        runners[key] = convert.interpreter(flatbuffer, threads, indirect_bgemm=indirect).interpreter
        inputs[key] = [
            rng.uniform(-1, 1, shape).astype(dtype)
            for shape, dtype in zip(runners[key].input_shapes, runners[key].input_types)
        ]
        for _ in range(warmup):
            runners[key].predict(inputs[key])
    calls = {key: functools.partial(runner.predict, inputs[key]) for key, runner in runners.items()}
    times = {key: np.array(t) * 1e3 for key, t in interleaved(calls, rounds=runs).items()}
    return {
        key: {
            "min": float(np.min(t)),
            "median": float(np.median(t)),
            "p90": float(np.percentile(t, 90)),
            "runs": runs,
            "threads": threads,
            "kernel": kernels[key],
        }
        for key, t in times.items()
    }


def _bconv_weights_per_output(op: convert.Op) -> int:
    """kh * kw * input channels per group of an LceBconv2d.

    Its filter is bit-packed, 32 input channels to an int32 word, so its last dimension is
    the words of one group; the options give the true input channels.
    """
    _, kh, kw, words = op.input_shapes[1]
    channels_in = dict(op.options)["channels_in"]
    groups = max(1, channels_in // (32 * words))  # LCE groups only multiples of 32 channels
    return kh * kw * channels_in // groups


def macs(op: convert.Op) -> int:
    """Multiply-accumulates of one operator, as `costs.macs` counts its Keras layer."""
    if op.type == "LceBconv2d":
        _, h, w, _ = op.output_shapes[0]
        return h * w * op.input_shapes[1][0] * _bconv_weights_per_output(op)
    if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        # filter (out, kh, kw, in per group), depthwise (1, kh, kw, out)
        _, h, w, _ = op.output_shapes[0]
        return h * w * int(np.prod(op.input_shapes[1]))
    if op.type == "FULLY_CONNECTED":
        # weights (units, in); every output element takes `in` of them
        return int(np.prod(op.output_shapes[0])) * op.input_shapes[1][1]
    return 0


def _constant_float_elements(flatbuffer: bytes) -> int:
    """Elements of the main subgraph's float tensors that hold data: its weights."""
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    graph = model.Subgraphs(0)
    total = 0
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        buffer = model.Buffers(tensor.Buffer())
        if tensor.Type() == schema.TensorType.FLOAT32 and (buffer.DataLength() or buffer.Size()):
            total += int(np.prod(tensor.ShapeAsNumpy()))
    return total


def count(flatbuffer: bytes) -> costs.Costs:
    """BOPs, FLOPs and parameters of a converted model, as `costs.count` counts them.

    LceBconv2d multiply-accumulates are BOPs; those of CONV_2D, DEPTHWISE_CONV_2D and
    FULLY_CONNECTED are FLOPs: both agree with `costs.count` on the Keras model. The
    parameters do not quite: the converter folds each BatchNorm (4 numbers a channel in
    Keras) into the convolution before it (1 a channel: a float convolution's bias; 2:
    LceBconv2d's multiplier and bias) and constant-folds whatever depends on weights only.
    Here they are the elements of constant float tensors, plus the binary weights of every
    LceBconv2d, one each (not the int32 words they are packed into).
    """
    ops = convert.inventory(flatbuffer)
    bconvs = [op for op in ops if op.type == "LceBconv2d"]
    bops = sum(macs(op) for op in bconvs)
    flops = sum(macs(op) for op in ops) - bops
    binary = sum(op.input_shapes[1][0] * _bconv_weights_per_output(op) for op in bconvs)
    return costs.Costs(bops, flops, _constant_float_elements(flatbuffer) + binary, binary)


def operators(ops: list[convert.Op]) -> dict[str, dict[str, int]]:
    """Operator counts, split into LCE's binary operators and TFLite's float ones."""
    counts = convert.op_counts(ops)
    return {
        "binary": {k: n for k, n in counts.items() if k.startswith("Lce")},
        "float": {k: n for k, n in counts.items() if not k.startswith("Lce")},
    }


def added_operators(ops: list[convert.Op], baseline: list[convert.Op]) -> dict[str, int]:
    """Operators per type that `ops` has more (or, negative, fewer) than `baseline`."""
    delta = Counter(op.type for op in ops)
    delta.subtract(op.type for op in baseline)
    return {k: n for k, n in sorted(delta.items()) if n}


def perturb(model: tf.keras.Model, *, seed: int = 0, stddev: float = 0.05) -> tf.keras.Model:
    """Moves every trainable weight and moving statistic of `model` off its initial value.

    An untrained model's zero thresholds, shifts and zero-initialised instance terms fold
    away in conversion, which a trained model's do not; benchmark a perturbed model to time
    and count the operators that a trained one runs.
    """
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.trainable or "moving" in w.name:
            w.assign(w.numpy() + rng.normal(0, stddev, w.shape).astype(np.float32))
    return model
