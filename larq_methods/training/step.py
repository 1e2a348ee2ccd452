"""The one training step of every run: `Trainer`, and `compile_classifier`, which compiles
it with Adam, the loss (cross-entropy, or distillation from a teacher) and weight decay."""

from __future__ import annotations

import tensorflow as tf

from larq_methods import costs, hooks, losses
from larq_methods.training.schedules import WarmupLinearDecay


def conv_kernels(model) -> list:
    """The kernels of every convolution (regular, grouped, depthwise; real or binary)."""
    kernels = []
    for layer in costs.flat_layers(model):
        if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
            kernels.append(layer.depthwise_kernel)
        elif isinstance(layer, tf.keras.layers.Conv2D):
            kernels.append(layer.kernel)
    return kernels


def add_weight_decay(model, weight_decay: float) -> None:
    r"""Adds \\(\frac{\lambda}{2} \sum \lVert W \rVert^2\\) over the convolution kernels to
    the model's losses: the gradient gains \\(\lambda W\\), the coupled weight decay of the
    papers' `torch.optim.Adam(weight_decay=...)`, applied to kernels only (not to
    BatchNorm, biases, thresholds or the dense classifier)."""
    if weight_decay <= 0:
        return
    kernels = conv_kernels(model)
    model.add_loss(lambda: weight_decay / 2 * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels]))


def outputs_logits(model) -> bool:
    """Whether the model ends in logits (no softmax)."""
    return getattr(model.layers[-1], "activation", None) is not tf.keras.activations.softmax


class Trainer(tf.keras.Model):
    """The one training step of every run: trains `student`, on the labels or, with a
    frozen `teacher`, on the distributional loss against it.

    Calling it calls the student; its metrics are the loss and the top-1 accuracy against
    the labels, held in its own `loss_tracker` and `accuracy` (so a checkpoint can carry
    them across an interruption mid-epoch). Every layer of the student that is a
    `hooks.TrainingHook` takes part in each step: its `hook_variables()` are watched on the
    tape, and `before_update()` / `after_update(state, grads)` run around the optimiser's
    update (ReBNN's adaptive balance is one such layer).
    """

    def __init__(self, student, teacher=None, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
            self._teacher_logits = outputs_logits(teacher)
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")
        self.accuracy = tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        target = y
        y_pred = tf.cast(y_pred, tf.float32)  # the loss in float32 under mixed precision
        if self.teacher is not None:
            target = tf.cast(self.teacher(x, training=False), tf.float32)
            if self._teacher_logits:
                target = tf.nn.softmax(target)
        return self.compiled_loss(target, y_pred, sample_weight, regularization_losses=self.losses)

    def _update_metrics(self, loss, y, y_pred, sample_weight):
        # weighted by batch size, as Keras' own loss tracker: a short last batch counts less
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(y_pred)[0])
        self.accuracy.update_state(y, y_pred, sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        layers = hooks.hooked_layers(self.student)
        watched = [layer.hook_variables() for layer in layers]
        extra = [v for vs in watched for v in vs]
        scaled = hasattr(self.optimizer, "get_scaled_loss")  # a loss-scaling optimiser
        with tf.GradientTape() as tape:
            tape.watch(extra)  # hook variables need not be trainable
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
            target = self.optimizer.get_scaled_loss(loss) if scaled else loss
        variables = self.trainable_variables
        grads = tape.gradient(target, variables + extra)
        if scaled:
            grads = self.optimizer.get_unscaled_gradients(grads)
        extra_grads = [tf.zeros_like(v) if g is None else g for v, g in zip(extra, grads[len(variables) :])]
        if extra_grads:  # each replica holds its share; hooks get the whole batch's
            extra_grads = tf.distribute.get_replica_context().all_reduce("sum", extra_grads)
        states = [layer.before_update() for layer in layers]
        self.optimizer.apply_gradients(zip(grads[: len(variables)], variables))
        for layer, state, vs in zip(layers, states, watched):
            layer.after_update(state, extra_grads[: len(vs)])
            extra_grads = extra_grads[len(vs) :]
        return self._update_metrics(loss, y, y_pred, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        return self._update_metrics(self.compute_loss(x, y, y_pred, sample_weight), y, y_pred, sample_weight)


def compile_classifier(
    model,
    *,
    learning_rate: float,
    total_steps: int,
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    label_smoothing: float = 0.0,
    teacher=None,
    jit_compile: bool = False,
    schedule=None,
) -> Trainer:
    """A compiled `Trainer` of `model`: Adam with warm-up and linear decay to zero per
    step, and accuracy on the labels.

    The loss is the cross-entropy on the labels (with `label_smoothing`), or, with a
    `teacher`, the distributional loss against it. Fit the trainer; save `model`.
    Weight decay: `add_weight_decay`. `schedule` replaces the warm-up and linear decay.
    """
    add_weight_decay(model, weight_decay)
    from_logits = outputs_logits(model)
    trainer = Trainer(model, teacher)
    if teacher is not None:
        loss = losses.DistributionalLoss(from_logits=from_logits)
    else:
        loss = losses.SparseCrossentropy(label_smoothing, from_logits=from_logits)
    trainer.compile(
        optimizer=tf.keras.optimizers.Adam(schedule or WarmupLinearDecay(learning_rate, total_steps, warmup_steps)),
        loss=loss,
        jit_compile=jit_compile,
    )
    return trainer
