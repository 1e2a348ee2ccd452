"""Training recipes: schedule, losses, weight decay, distillation, two-step transfer,
checkpoints, resume, interruption and NaN handling."""

import signal

import numpy as np
import pytest
import tensorflow as tf

from cli.train import _sigterm_interrupts
from larq_methods import costs, hooks, losses, saving, training
from larq_methods.methods import rebnn
from larq_methods.method import Method
from larq_methods.training.interrupts import CheckSignals, DeferredSignals
from tests.helpers import mini_data, mini_model, perturb


def _batches(x, y, batch_size=16):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


# -- optimisation -------------------------------------------------------------------------


def test_warmup_linear_decay_by_hand():
    schedule = training.WarmupLinearDecay(0.1, total_steps=10, warmup_steps=4)
    got = [float(schedule(t)) for t in (0, 1, 3, 4, 7, 10, 12)]
    # warm-up: 0.1 (t+1)/4; decay: 0.1 (10 - t)/6, floored at 0
    expected = [0.025, 0.05, 0.1, 0.1, 0.05, 0.0, 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_linear_decay_without_warmup_is_reactnets():
    schedule = training.WarmupLinearDecay(1e-3, 100)
    np.testing.assert_allclose([float(schedule(t)) for t in (0, 25, 100)], [1e-3, 7.5e-4, 0.0], rtol=1e-6, atol=1e-12)


def test_schedule_round_trips():
    schedule = training.WarmupLinearDecay(0.5, 20, 3)
    copy = tf.keras.optimizers.schedules.deserialize(tf.keras.optimizers.schedules.serialize(schedule))
    assert copy.get_config() == schedule.get_config()


def test_label_smoothing_by_hand():
    probs = np.array([[0.7, 0.2, 0.1]], np.float32)
    loss = losses.SparseCrossentropy(label_smoothing=0.3)(np.array([0]), probs)
    # q = 0.7 [c = 0] + 0.1 = (0.8, 0.1, 0.1)
    expected = -(0.8 * np.log(0.7) + 0.1 * np.log(0.2) + 0.1 * np.log(0.1))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    plain = losses.SparseCrossentropy()(np.array([[1]]), probs)
    np.testing.assert_allclose(float(plain), -np.log(0.2), rtol=1e-5)


def test_sparse_crossentropy_round_trips():
    loss = losses.SparseCrossentropy(0.1, from_logits=True)
    copy = tf.keras.losses.deserialize(tf.keras.losses.serialize(loss))
    assert (copy.label_smoothing, copy.from_logits) == (0.1, True)


def test_weight_decay_covers_convolution_kernels_only():
    model = perturb(mini_model())
    training.add_weight_decay(model, 1e-2)
    kernels = [model.get_layer("stem").kernel, model.get_layer("b1_bconv").kernel]
    expected = 1e-2 / 2 * sum(float(np.sum(k.numpy() ** 2)) for k in kernels)
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), expected, rtol=1e-5)
    assert {id(k) for k in training.conv_kernels(model)} == {id(k) for k in kernels}


def test_weight_decay_gradient_is_coupled():
    """d/dW of the decay term is lambda W, as torch.optim.Adam(weight_decay=lambda) adds."""
    model = perturb(mini_model())
    training.add_weight_decay(model, 0.5)
    kernel = model.get_layer("stem").kernel
    with tf.GradientTape() as tape:
        loss = model.losses[0]
    np.testing.assert_allclose(tape.gradient(loss, kernel).numpy(), 0.5 * kernel.numpy(), rtol=1e-5)


# -- distillation -------------------------------------------------------------------------


def test_distillation_loss_by_hand():
    x, y = mini_data(8)
    student, teacher = perturb(mini_model()), perturb(mini_model(Method(binarise="none")), seed=1)
    distiller = training.compile_classifier(student, learning_rate=1e-3, total_steps=10, teacher=teacher)
    assert isinstance(distiller, training.Trainer) and distiller.teacher is teacher
    p_s, p_t = student(x).numpy(), teacher(x).numpy()
    expected = np.mean(-np.sum(p_t * np.log(p_s), axis=-1))
    got = distiller.compute_loss(tf.constant(x), tf.constant(y), tf.constant(p_s))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_distillation_trains_the_student_only():
    x, y = mini_data(32)
    student, teacher = mini_model(), perturb(mini_model(Method(binarise="none")), seed=1)
    frozen = [w.numpy() for w in teacher.weights]
    before = [w.numpy() for w in student.trainable_weights]
    distiller = training.compile_classifier(student, learning_rate=1e-2, total_steps=4, teacher=teacher)
    distiller.fit(_batches(x, y), epochs=1, verbose=0)
    for w, value in zip(teacher.weights, frozen):
        np.testing.assert_array_equal(w.numpy(), value)
    assert any(not np.array_equal(w.numpy(), b) for w, b in zip(student.trainable_weights, before))


def test_distilling_a_rebnn_student_updates_its_gamma():
    """ReBNN's adaptive balance is a training hook of its layers: the one training step
    updates it for any model, a distilled student included (no model subclass)."""
    x, y = mini_data(32)
    student = mini_model(Method(weights="learned", gamma="adaptive"))
    teacher = perturb(mini_model(Method(binarise="none")), seed=1)
    distiller = training.compile_classifier(student, learning_rate=1e-2, total_steps=2, teacher=teacher)
    distiller.fit(_batches(x, y), epochs=1, verbose=0)
    assert float(tf.reduce_max(student.get_layer("b1_bconv").balance)) > 0


class _CountingHook(hooks.TrainingHook, tf.keras.layers.Layer):
    """Scales its input by a non-trainable `v`; records what the training step hands it."""

    def build(self, input_shape):
        self.v = self.add_weight(name="v", shape=(), initializer="ones", trainable=False)
        self.steps = self.add_weight(name="steps", shape=(), initializer="zeros", trainable=False)
        self.last_grad = self.add_weight(name="last_grad", shape=(), initializer="zeros", trainable=False)

    def call(self, x):
        return x * self.v

    def hook_variables(self):
        return [self.v]

    def before_update(self):
        return self.steps + 0.0

    def after_update(self, state, grads):
        self.steps.assign(state + 1.0)
        self.last_grad.assign(grads[0])


def test_training_step_calls_every_hooked_layer():
    """The trainer watches a hook's variables, and hands it dL/dv after the update."""
    x, y = mini_data(16)
    inputs = tf.keras.Input((8, 8, 1))
    hook = _CountingHook()
    outputs = tf.keras.layers.Dense(4)(tf.keras.layers.Flatten()(hook(inputs)))
    model = tf.keras.Model(inputs, outputs)
    trainer = training.compile_classifier(model, learning_rate=0.0, total_steps=2)
    with tf.GradientTape() as tape:
        tape.watch(hook.v)
        loss = trainer.compute_loss(x, tf.constant(y), model(x, training=True))
    expected = float(tape.gradient(loss, hook.v))
    trainer.fit(_batches(x, y), epochs=1, verbose=0)  # one step, learning rate 0: weights stay
    assert float(hook.steps) == 1.0
    np.testing.assert_allclose(float(hook.last_grad), expected, rtol=1e-5)


# -- two-step -----------------------------------------------------------------------------


def test_step1_has_real_weights_and_binary_activations():
    recipe = training.Recipe(recipe="two-step", epochs=2)
    (n1, m1, wd1), (n2, m2, wd2) = recipe.steps(Method())
    assert (n1, m1.binarise, wd1) == ("step1", "activations", 1e-5)
    assert (n2, m2.binarise, wd2) == ("step2", "all", 0.0)
    step1 = mini_model(m1)
    conv = step1.get_layer("b1_bconv")
    assert conv.kernel_quantizer is None and conv.kernel_constraint is None
    assert isinstance(step1.get_layer("b1_sign"), tf.keras.layers.Layer)


@pytest.mark.parametrize("method", [Method(), Method(weights="learned"), Method(threshold="insta+", activation="dyprelu")])
def test_two_step_transfer(method):
    step1 = perturb(mini_model(method.replace(binarise="activations")))
    step2 = mini_model(method)
    copied = training.transfer_weights(step1, step2)
    assert copied == len(step1.weights)
    for layer1, layer2 in zip(step1.layers, step2.layers):
        assert layer1.name == layer2.name
        step2_weights = {w.name: w for w in layer2.weights}
        for w in layer1.weights:
            np.testing.assert_array_equal(w.numpy(), step2_weights[w.name].numpy(), err_msg=w.name)
    conv = step2.get_layer("b1_bconv")
    assert costs.has_binary_kernel(conv)  # binary after step 2
    if isinstance(conv, rebnn.ReBNNConv2D):  # alpha follows the transferred kernel
        np.testing.assert_allclose(conv.alpha.numpy(), np.abs(step1.get_layer("b1_bconv").kernel.numpy()).mean((0, 1, 2)), rtol=1e-6)
    x, _ = mini_data(4)
    binary = conv.kernel_quantizer(tf.convert_to_tensor(conv.kernel.latent_variable)).numpy().reshape(-1, conv.filters)
    for channel in binary.T:  # one magnitude per output channel: a scaled sign
        assert np.unique(np.abs(channel)).size == 1
    assert np.all(np.isfinite(step2(x).numpy()))


def test_transfer_refuses_a_weight_without_a_place():
    step1 = mini_model(Method(binarise="activations"), filters=32)
    wider = mini_model(Method(), filters=64)
    with pytest.raises(training.TrainingError, match=r"cannot transfer .* step-1 weight\(s\) into step 2: stem/kernel"):
        training.transfer_weights(step1, wider)
    other = mini_model(Method(binarise="none"))  # no sign layers: fewer layers
    with pytest.raises(training.TrainingError, match="layers in step 1"):
        training.transfer_weights(step1, other)


def _train(tmp_path, recipe, *, x, y, resume=False, callbacks=(), name="run", method=Method()):
    def build(m):
        tf.keras.utils.set_random_seed(0)
        return mini_model(m)

    return training.train(
        build, method, _batches(x, y), _batches(x[:16], y[:16]), recipe, tmp_path / name,
        steps_per_epoch=-(-len(x) // recipe.batch_size), resume=resume, callbacks=callbacks,
        verbose=0,
    )  # fmt: skip


def test_two_step_run_folder(tmp_path):
    x, y = mini_data(32)
    recipe = training.Recipe(recipe="two-step", epochs=1, batch_size=16, learning_rate=1e-2)
    model = _train(tmp_path, recipe, x=x, y=y)
    run = tmp_path / "run"
    for step in ("step1", "step2"):
        for part in ("model.h5", "history.csv", "curves.png", "checkpoints/checkpoint", "logs"):
            assert (run / step / part).exists(), f"{step}/{part}"
    step1, final = saving.load_model(run / "step1" / "model.h5"), saving.load_model(run / "model.h5")
    assert step1.get_layer("b1_bconv").kernel_quantizer is None
    assert costs.has_binary_kernel(final.get_layer("b1_bconv"))
    for a, b in zip(model.weights, final.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# -- checkpoints, resume, interruption, NaN -------------------------------------------------


class _InterruptAt(tf.keras.callbacks.Callback):
    """Raises KeyboardInterrupt (as Ctrl-C does) before batch `batch` of epoch `epoch`."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            self.weights = [w.numpy() for w in self.model.weights]
            raise KeyboardInterrupt


@pytest.mark.parametrize("epoch, batch", [(1, 0), (1, 2), (0, 3), (0, 0)])
def test_resume_equals_the_uninterrupted_run(tmp_path, epoch, batch):
    """Ctrl-C at an epoch boundary, mid-epoch or before the first step, then resume: the
    same number of steps, the same batches, bit-identical weights, optimiser state and history."""
    x, y = mini_data(64)
    recipe = training.Recipe(epochs=3, batch_size=16, learning_rate=1e-2)
    straight = _train(tmp_path, recipe, x=x, y=y, name="straight")

    with pytest.raises(training.Interrupted, match=f"interrupted during epoch {epoch + 1}"):
        _train(tmp_path, recipe, x=x, y=y, name="cut", callbacks=[_InterruptAt(epoch, batch)])
    history = training.read_history(tmp_path / "cut" / "history.csv") if epoch else {"epoch": []}
    assert history["epoch"] == list(range(epoch))

    resumed = _train(tmp_path, recipe, x=x, y=y, name="cut", resume=True)
    assert (tmp_path / "cut" / "history.csv").read_text() == (tmp_path / "straight" / "history.csv").read_text()
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    straight_ckpt, cut_ckpt = (tf.train.latest_checkpoint(str(tmp_path / r / "checkpoints")) for r in ("straight", "cut"))
    assert tf.train.load_variable(cut_ckpt, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 12
    names = [n for n, _ in tf.train.list_variables(straight_ckpt) if not n.startswith(("seconds", "save_counter", "_CHECKPOINTABLE"))]
    assert sum(n.startswith("optimizer/_variables/") for n in names) > 10  # Adam's moments are compared too
    for name in names:
        np.testing.assert_array_equal(tf.train.load_variable(straight_ckpt, name), tf.train.load_variable(cut_ckpt, name), err_msg=name)


def test_extending_a_finished_run(tmp_path):
    """A finished run of 1 epoch extended to 2 continues from its last state: 2 rows, 8
    steps, and the same weights as a run planned for 2 epochs whose schedule was cut at 1."""
    x, y = mini_data(64)
    _train(tmp_path, training.Recipe(epochs=1, batch_size=16, learning_rate=1e-2), x=x, y=y)
    first = [w.numpy() for w in saving.load_model(tmp_path / "run" / "model.h5").weights]
    model = _train(tmp_path, training.Recipe(epochs=2, batch_size=16, learning_rate=1e-2), x=x, y=y, resume=True)
    assert training.read_history(tmp_path / "run" / "history.csv")["epoch"] == [0, 1]
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert tf.train.load_variable(latest, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 8
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(first, model.weights))


def restore_weights(folder, model) -> int:
    """Loads the model weights of the latest checkpoint in `folder` (no optimiser);
    returns its number of completed epochs."""
    latest = tf.train.latest_checkpoint(str(folder))
    assert latest is not None, f"no checkpoint in {folder}"
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    tf.train.Checkpoint(model=model, epoch=epoch).restore(latest).expect_partial().assert_existing_objects_matched()
    return int(epoch.numpy())


def test_an_interrupted_run_leaves_a_loadable_checkpoint(tmp_path):
    x, y = mini_data(64)
    recipe = training.Recipe(epochs=2, batch_size=16, learning_rate=1e-2)
    stop = _InterruptAt(0, 2)  # in the middle of the first epoch: no epoch checkpoint yet
    with pytest.raises(training.Interrupted, match="checkpointed in"):
        _train(tmp_path, recipe, x=x, y=y, callbacks=[stop])
    fresh = mini_model()
    assert restore_weights(tmp_path / "run" / "checkpoints", fresh) == 0  # no epoch completed
    for w, value in zip(fresh.weights, stop.weights):
        np.testing.assert_array_equal(w.numpy(), value, err_msg=w.name)


class _SignalAt(tf.keras.callbacks.Callback):
    """Sends this process `signum` (`times` times) before batch `batch` of the first epoch."""

    def __init__(self, batch, signum=signal.SIGINT, times=1):
        super().__init__()
        self.batch, self.signum, self.times = batch, signum, times

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.batch and self.times:
            self.times, times = 0, self.times
            for _ in range(times):
                signal.raise_signal(self.signum)


def _iterations(run_dir) -> int:
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    return int(tf.train.load_variable(latest, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.fixture
def sigterm_interrupts():
    """SIGTERM as `lqm train` handles it (Ctrl-C's path); yields the signals it saw."""
    with _sigterm_interrupts() as received:
        yield received


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_after_the_step_it_arrived_in(tmp_path, signum, sigterm_interrupts):
    """Ctrl-C or SIGTERM before batch 2: batch 2 still trains (3 steps checkpointed), the
    handler that was held back runs then, and the process's handlers are as before."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    x, y = mini_data(64)
    recipe = training.Recipe(epochs=2, batch_size=16, learning_rate=1e-2)
    with pytest.raises(training.Interrupted, match="interrupted during epoch 1; its state is checkpointed"):
        _train(tmp_path, recipe, x=x, y=y, callbacks=[_SignalAt(2, signum)])
    assert _iterations(tmp_path / "run") == 3
    assert sigterm_interrupts == ([signal.SIGTERM] if signum == signal.SIGTERM else [])
    assert {s: signal.getsignal(s) for s in handlers} == handlers


def test_a_second_signal_interrupts_at_once(tmp_path):
    x, y = mini_data(64)
    recipe = training.Recipe(epochs=2, batch_size=16, learning_rate=1e-2)
    with pytest.raises(training.Interrupted, match="interrupted during epoch 1"):
        _train(tmp_path, recipe, x=x, y=y, callbacks=[_SignalAt(2, times=2)])
    assert _iterations(tmp_path / "run") == 2  # batch 2 did not run


def test_a_signal_while_tensorflow_traces_waits_until_the_trace_is_done(tmp_path):
    """Ctrl-C while `Dataset.map` traces epoch 2's pipeline (Python inside TensorFlow,
    where a KeyboardInterrupt can leave its function bookkeeping broken): the trace
    finishes, and the run stops before epoch 2's first step."""
    x, y = mini_data(64)
    traces = []

    def augment(images, labels):  # traced once per epoch: each epoch builds its pipeline
        if len(traces) == 1:
            signal.raise_signal(signal.SIGINT)
        traces.append(len(traces))
        return images, labels

    recipe = training.Recipe(epochs=3, batch_size=16, learning_rate=1e-2)
    with pytest.raises(training.Interrupted, match="interrupted during epoch 2"):
        training.train(
            lambda m: mini_model(m), Method(), lambda epoch, skip: _batches(x, y).map(augment).skip(skip),
            _batches(x[:16], y[:16]), recipe, tmp_path / "run", steps_per_epoch=4, verbose=0,
        )  # fmt: skip
    assert traces == [0, 1]
    assert _iterations(tmp_path / "run") == 4


def test_evaluation_checks_for_signals_after_each_batch():
    """`CheckSignals` runs a held-back Ctrl-C after the evaluation batch it arrived in."""
    model = mini_model()
    model.compile(loss="sparse_categorical_crossentropy")
    x, y = mini_data(64)
    seen = []

    class SignalAtBatch1(tf.keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append(batch)
            if batch == 1:
                signal.raise_signal(signal.SIGINT)

    with DeferredSignals() as signals:
        with pytest.raises(KeyboardInterrupt):
            model.evaluate(x, y, batch_size=16, verbose=0, callbacks=[SignalAtBatch1(), CheckSignals(signals)])
    assert seen == [0, 1]


def test_signals_without_a_python_handler_are_left_alone():
    """A SIGTERM that ends the process (its default) is not turned into a Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with DeferredSignals():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


class _PoisonAt(tf.keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            w = self.model.get_layer("logits").kernel
            w.assign(tf.fill(w.shape, np.nan))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    x, y = mini_data(32)
    recipe = training.Recipe(epochs=3, batch_size=16)
    with pytest.raises(training.TrainingError, match=r"NaN in epoch 2; the last good checkpoint \(epoch 1\)"):
        _train(tmp_path, recipe, x=x, y=y, callbacks=[_PoisonAt(1)])
    fresh = mini_model()
    assert restore_weights(tmp_path / "run" / "checkpoints", fresh) == 1
    assert all(np.isfinite(w.numpy()).all() for w in fresh.weights)
    assert not (tmp_path / "run" / "model.h5").exists()


def test_resume_of_a_complete_run_is_refused(tmp_path):
    x, y = mini_data(16)
    recipe = training.Recipe(epochs=1, batch_size=16)
    _train(tmp_path, recipe, x=x, y=y)
    with pytest.raises(training.TrainingError, match="is complete"):
        _train(tmp_path, recipe, x=x, y=y, resume=True)


def test_recipe_errors():
    with pytest.raises(training.TrainingError, match="recipe must be one of"):
        training.Recipe(recipe="three-step")
    with pytest.raises(training.TrainingError, match="warm-up"):
        training.Recipe(epochs=2, warmup_epochs=2)


def test_batch_must_split_over_replicas(tmp_path):
    class TwoReplicas:
        num_replicas_in_sync = 2

    x, y = mini_data(16)
    with pytest.raises(training.TrainingError, match="global batch size 15 does not split over 2 replicas"):
        training.train(mini_model, Method(), _batches(x, y), _batches(x, y), training.Recipe(batch_size=15), tmp_path, steps_per_epoch=1, strategy=TwoReplicas())


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(training.TrainingError, match="TF_CONFIG"):
        training.make_strategy("multi-worker")


def test_resume_after_a_nan_epoch_keeps_one_row_per_epoch(tmp_path):
    x, y = mini_data(32)
    recipe = training.Recipe(epochs=3, batch_size=16)
    with pytest.raises(training.TrainingError, match="NaN in epoch 2"):
        _train(tmp_path, recipe, x=x, y=y, callbacks=[_PoisonAt(1)])
    history = training.read_history(tmp_path / "run" / "history.csv")
    assert history["epoch"] == [0, 1] and np.isnan(history["loss"][1])  # the NaN epoch has its row
    _train(tmp_path, recipe, x=x, y=y, resume=True)  # from the checkpoint of epoch 1
    history = training.read_history(tmp_path / "run" / "history.csv")
    assert history["epoch"] == [0, 1, 2] and np.isfinite(history["loss"]).all()


def test_truncate_history(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,2.5\n1,2.0\n2,nan\n")
    training.truncate_history(path, 2)
    assert path.read_text() == "epoch,loss\n0,2.5\n1,2.0\n"
    training.truncate_history(path, 5)  # nothing to cut
    assert path.read_text() == "epoch,loss\n0,2.5\n1,2.0\n"
    training.truncate_history(tmp_path / "absent.csv", 1)  # no file: nothing to do


def test_transfer_keeps_a_received_rebnn_scale_and_initialises_a_missing_one():
    """Between two ReBNN models (--init) the learned scale is copied as it is; from a
    real-weight step 1, which has none, it starts at mean|W| of the received kernel."""
    source = perturb(mini_model(Method(weights="learned")))
    target = mini_model(Method(weights="learned"))
    training.transfer_weights(source, target, what="initial weight(s)")
    alpha = source.get_layer("b1_bconv").alpha.numpy()
    assert not np.allclose(alpha, np.mean(np.abs(source.get_layer("b1_bconv").kernel.latent_variable.numpy()), axis=(0, 1, 2)))
    np.testing.assert_array_equal(target.get_layer("b1_bconv").alpha.numpy(), alpha)
    step1 = perturb(mini_model(Method(weights="learned", binarise="activations")))
    training.transfer_weights(step1, target)
    kernel = step1.get_layer("b1_bconv").kernel.numpy()
    np.testing.assert_allclose(target.get_layer("b1_bconv").alpha.numpy(), np.mean(np.abs(kernel), axis=(0, 1, 2)), rtol=1e-6)
