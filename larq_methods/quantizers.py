"""The base of every binary activation layer, and the test that costs and conversion ask.

Every sign layer of the project (RSign, INSTA-Th, INSTA-Th+, DySign, GAAFSign) outputs
+-1 and subclasses `BinarySign`, a larq `Quantizer` of precision 1: larq's model summary,
the cost counter and the conversion check then recognise it as they recognise larq's own
quantizers (`ste_sign`, `approx_sign`, used as layers or as kernel quantizers).
"""

import larq as lq


class BinarySign(lq.quantizers.Quantizer):
    """A Keras layer whose output is +-1 (sign(0) = +1): a larq quantizer of precision 1.

    Subclasses compute the sign of their input minus a threshold in `call`; the base
    only marks the output binary, so that it is declared in one place.
    """

    precision = 1


def is_binary(obj) -> bool:
    """Whether `obj` (a layer, or a layer's kernel or input quantizer) outputs +-1: a larq
    quantizer of precision 1, such as any `BinarySign`."""
    return isinstance(obj, lq.quantizers.Quantizer) and obj.precision == 1
