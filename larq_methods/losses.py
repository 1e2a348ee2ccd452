"""Losses for training binary networks."""

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="lqm")
class DistributionalLoss(tf.keras.losses.Loss):
    r"""Distributional loss: cross-entropy of the student's softmax against a teacher's.

    \\[ \mathcal{L} = -\frac{1}{n} \sum_{i=1}^{n} \sum_{c} p^{T}_{c}(x_i)
        \log p^{S}_{c}(x_i) \\]

    `y_true` is the frozen real-valued teacher's output and `y_pred` the binary student's,
    both probabilities (softmax, temperature 1) unless `from_logits=True`, in which case
    each is passed through a softmax first. The teacher receives no gradient.

    # References
    - Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized
      Activation Functions, ECCV 2020. https://arxiv.org/abs/2003.03488
    """

    def __init__(self, from_logits=False, name="distributional_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        teacher = tf.stop_gradient(
            tf.nn.softmax(y_true, axis=-1) if self.from_logits else y_true
        )
        return tf.keras.losses.categorical_crossentropy(
            teacher, y_pred, from_logits=self.from_logits
        )

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@tf.keras.utils.register_keras_serializable(package="lqm")
class SparseCrossentropy(tf.keras.losses.Loss):
    r"""Cross-entropy on integer labels, with label smoothing (which Keras 2's
    `SparseCategoricalCrossentropy` lacks).

    \\[ \mathcal{L} = -\sum_{c=1}^{C} q_c \log p_c, \qquad
        q_c = (1 - \varepsilon)\,[c = y] + \varepsilon / C \\]

    With \\(\varepsilon = 0\\) it is the plain cross-entropy.

    # References
    - Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016
      (label smoothing). https://arxiv.org/abs/1512.00567
    """

    def __init__(self, label_smoothing=0.0, from_logits=False, name="sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        labels = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(y_pred)[:-1])
        one_hot = tf.one_hot(labels, tf.shape(y_pred)[-1], dtype=y_pred.dtype)
        return tf.keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }
