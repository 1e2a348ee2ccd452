"""The base of every binary activation layer, and the test that costs and conversion ask.

Every sign layer of the project (RSign, INSTA-Th, INSTA-Th+, DySign, GAAFSign) outputs
+-1 and subclasses `BinarySign`, a larq `Quantizer` of precision 1: larq's model summary,
the cost counter and the conversion check then recognise it as they recognise larq's own
quantizers (`ste_sign`, `approx_sign`, used as layers or as kernel quantizers).
"""

import larq as lq
import tensorflow as tf


@tf.custom_gradient
def approx_sign(x):
    r"""sign(x) (sign(0) = +1) with Bi-Real Net's ApproxSign gradient, in one custom gradient:

    \\[ \frac{\partial x_b}{\partial x} = \max(0,\, 2 - 2|x|) \\]

    The same values as larq's `approx_sign`, forward and backward, with a cheaper
    backward pass: ABS, MUL, SUB, RELU, MUL instead of larq's ABS, ZEROS_LIKE, LESS_EQUAL,
    SUB, MUL, MUL, SELECT (2 - 2|x| is exactly 2 (1 - |x|), a power-of-two scaling). The
    forward pass is larq's `math.sign`, the pattern LCE's converter turns into
    `LceQuantize`.
    """

    def grad(dy):
        return dy * tf.nn.relu(2.0 - 2.0 * tf.abs(x))

    return lq.math.sign(x), grad


class BinarySign(lq.quantizers.Quantizer):
    """A Keras layer whose output is +-1 (sign(0) = +1): a larq quantizer of precision 1.

    Subclasses compute the sign of their input minus a threshold in `call`; the base
    only marks the output binary, so that it is declared in one place. It computes in
    float32 whatever the global dtype policy (mixed precision): the threshold, the
    statistics that move it and the comparison keep float32's resolution, and the +-1 it
    outputs is exact in any dtype.
    """

    precision = 1

    def __init__(self, *args, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(*args, **kwargs)


def is_binary(obj) -> bool:
    """Whether `obj` (a layer, or a layer's kernel or input quantizer) outputs +-1: a larq
    quantizer of precision 1, such as any `BinarySign`."""
    return isinstance(obj, lq.quantizers.Quantizer) and obj.precision == 1
