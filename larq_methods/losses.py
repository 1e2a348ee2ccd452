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
