"""Parts shared by the backbones: BatchNorm, pooling, widths, inputs, heads."""

import os

import tensorflow as tf

from zoo import pretrained

# PyTorch's BatchNorm defaults, as in the papers' code.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
# At or below this input size a backbone uses the small-input (CIFAR-style) stem.
SMALL_INPUT = 64


def batch_norm(name, **kwargs):
    """BatchNorm with PyTorch's defaults (`kwargs` go to Keras' layer). Built under a
    strategy with several replicas, it takes its batch statistics over the global batch
    (synchronised), so that training does not depend on how many devices share a batch."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return tf.keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=replicas > 1, name=name, **kwargs
    )


def avg_pool_2x2(x, *, name):
    # "same" padding matches the output size of a stride-2 "same" convolution on odd sizes.
    return tf.keras.layers.AveragePooling2D(2, strides=2, padding="same", name=name)(x)


def scaled(channels: int, alpha: float) -> int:
    """Width multiplier as in Keras' MobileNet: int(channels * alpha), at least 1."""
    return max(1, int(channels * alpha))


def resolve_input(input_shape, input_tensor, default=(224, 224, 3)):
    """Returns (input layer tensor, shape) the way Keras applications do."""
    if input_tensor is not None:
        if not tf.keras.backend.is_keras_tensor(input_tensor):
            input_tensor = tf.keras.Input(tensor=input_tensor, shape=input_shape)
        shape = tuple(input_tensor.shape[1:])
        return input_tensor, shape
    shape = tuple(input_shape) if input_shape is not None else default
    if len(shape) != 3 or any(d is None or d < 1 for d in shape):
        raise ValueError(f"input_shape must be (height, width, channels), got {shape}")
    return tf.keras.Input(shape=shape, name="input"), shape


def is_small_input(shape) -> bool:
    return min(shape[0], shape[1]) <= SMALL_INPUT


def head(x, *, include_top, num_classes, pooling, classifier_activation):
    """Keras-applications head: global average pool and a real Dense classifier."""
    if include_top:
        x = tf.keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
        x = tf.keras.layers.Dense(num_classes, name="logits")(x)
        if classifier_activation is not None:
            # Kept float32 so that the probabilities stay exact under mixed precision.
            x = tf.keras.layers.Activation(
                classifier_activation, dtype="float32", name="predictions"
            )(x)
    elif pooling == "avg":
        x = tf.keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    elif pooling == "max":
        x = tf.keras.layers.GlobalMaxPooling2D(name="global_pool")(x)
    elif pooling is not None:
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    return x


def finish(inputs, outputs, *, name, weights):
    """Wraps the graph in a plain `tf.keras.Model` and loads `weights` (None or a
    weights-file path; `zoo.create_model` turns a dataset name into the pretrained
    weights' path)."""
    model = tf.keras.Model(inputs, outputs, name=name)
    if weights is not None:
        if not os.path.exists(str(weights)):
            raise ValueError(
                f"weights must be None or the path to a weights file; {weights!r} is "
                "neither (pretrained weights by dataset name: zoo.create_model(name, weights=...))"
            )
        pretrained.load_weights(model, weights)
    return model


def backbone(stack_fn, *, input_shape, input_tensor, weights, include_top, num_classes, pooling,
             classifier_activation, name, head_relu=False):  # fmt: skip
    """The skeleton every backbone shares, as Keras applications build theirs: the input,
    `stack_fn(inputs, small)` (the stem and the blocks; `small`: an input of 64 px or less),
    a ReLU before the head if `head_relu` (and a head is built), the head (`head`), and the
    model with its `weights` (`finish`)."""
    inputs, shape = resolve_input(input_shape, input_tensor)
    x = stack_fn(inputs, is_small_input(shape))
    if head_relu and (include_top or pooling is not None):
        x = tf.keras.layers.ReLU(name="head_relu")(x)
    x = head(x, include_top=include_top, num_classes=num_classes, pooling=pooling, classifier_activation=classifier_activation)
    return finish(inputs, x, name=name, weights=weights)


def stage_blocks(stages):
    """(block number from 1, stride, *stage) of every block of `stages`, a sequence of
    (channels, depth, ...) per stage: stride 2 at the first block of every stage but the
    first, as ResNets downsample."""
    block = 0
    for index, (channels, depth, *rest) in enumerate(stages):
        for i in range(depth):
            block += 1
            yield block, 2 if index > 0 and i == 0 else 1, channels, *rest
