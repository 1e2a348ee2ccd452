"""PreciseBN: statistics re-estimated as the mean of their batch values, an evaluation
that leaves the model as it was, and a training run that measures it trains as one that
does not."""

import numpy as np
import pytest
import tensorflow as tf

from larq_methods import precise_bn, training
from larq_methods.methods.insta import InstanceStatistics
from larq_methods.method import Method
from tests.helpers import mini_data, mini_model


def _pairs(*images):
    return tf.data.Dataset.from_tensor_slices([np.asarray(x, np.float32) for x in images]).map(lambda x: (x, 0))


def test_batchnorm_statistics_are_the_mean_of_the_batches_by_hand():
    inputs = tf.keras.Input((2,))
    bn = tf.keras.layers.BatchNormalization(momentum=0.9)
    model = tf.keras.Model(inputs, bn(inputs))
    # batch means (2, 3) and (6, 0); batch variances, as Keras trains with them, (1, 1) and (1, 0)
    batches = _pairs([[1, 2], [3, 4]], [[5, 0], [7, 0]], [[100, 100], [-100, 0]])
    assert precise_bn.reestimate(model, batches, max_batches=2) == 2  # the third is not read
    np.testing.assert_allclose(bn.moving_mean.numpy(), [4.0, 1.5])
    np.testing.assert_allclose(bn.moving_variance.numpy(), [1.0, 0.5])
    assert bn.momentum == 0.9  # training's own momentum is back


def test_fused_batchnorm_statistics_are_the_mean_of_its_own_batch_values():
    """BatchNorm over a conv's channels takes TensorFlow's fused path, whose batch variance
    for the moving average has Bessel's correction: the mean of those is what training
    would converge to, so that is what is set."""
    inputs = tf.keras.Input((1, 2, 1))
    bn = tf.keras.layers.BatchNormalization(momentum=0.9)
    model = tf.keras.Model(inputs, bn(inputs))
    images = [[[[[1], [3]]]], [[[[5], [9]]]]]  # one image each: pixels (1, 3), then (5, 9)
    assert precise_bn.reestimate(model, _pairs(*images), max_batches=5) == 2
    np.testing.assert_allclose(bn.moving_mean.numpy(), [(2 + 7) / 2])
    np.testing.assert_allclose(bn.moving_variance.numpy(), [(2 + 8) / 2])  # (1-2)²+(3-2)² = 2, (5-7)²+(9-7)² = 8, over n-1


class _SpatialMean(InstanceStatistics):
    def call(self, inputs, training=None):
        return self.centred_statistics(inputs, training)[0]


def test_insta_instance_statistics_are_the_mean_of_the_batches_by_hand():
    inputs = tf.keras.Input((1, 2, 1))
    stats = _SpatialMean(momentum=0.99)
    model = tf.keras.Model(inputs, stats(inputs))
    assert [type(layer) for layer in precise_bn.statistics_layers(model)] == [_SpatialMean]
    # per-image spatial means 1 and 3 (batch mean 2), then 6 and 0 (batch mean 3)
    batches = _pairs([[[[0], [2]]], [[[3], [3]]]], [[[[6], [6]]], [[[-1], [1]]]])
    precise_bn.reestimate(model, batches, max_batches=2)
    np.testing.assert_allclose(stats.moving_means[0].numpy(), [2.5])
    assert stats.momentum == 0.99


def test_every_statistics_layer_of_an_insta_model_is_found():
    model = mini_model(Method(threshold="insta"))
    found = {type(layer).__name__ for layer in precise_bn.statistics_layers(model)}
    assert found == {"BatchNormalization", "InstaThreshold"}


def _trained_mini_model():
    x, y = mini_data(64)
    tf.keras.utils.set_random_seed(0)
    model = mini_model()
    model.compile(tf.keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    return model, data, x, y


def test_accuracy_ignores_the_moving_averages_and_leaves_the_model_as_it_was():
    model, data, x, y = _trained_mini_model()
    before = [w.numpy() for w in model.weights]
    precise = precise_bn.accuracy(model, data, data, max_batches=4)
    for w, value in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), value, err_msg=w.name)

    # the same weights with moving averages far off: the moving-average accuracy falls, this one does not
    for layer in precise_bn.statistics_layers(model):
        layer.moving_mean.assign(layer.moving_mean + 50.0)
    assert np.mean(model.predict(x, verbose=0).argmax(-1) == y) < precise
    assert precise_bn.accuracy(model, data, data, max_batches=4) == precise

    # and it is the count of right answers with the re-estimated statistics, one-hot labels alike
    precise_bn.reestimate(model, data, max_batches=4)
    expected = np.mean(model.predict(x, verbose=0).argmax(-1) == y)
    one_hot = tf.data.Dataset.from_tensor_slices((x, tf.one_hot(y, 4))).batch(16)
    assert precise == pytest.approx(expected) and precise_bn.accuracy(model, data, one_hot, max_batches=4) == pytest.approx(expected)


def test_no_training_batch_is_an_error_and_changes_nothing():
    model, data, _, _ = _trained_mini_model()
    before = [w.numpy() for w in model.weights]
    with pytest.raises(ValueError, match="no training batch"):
        precise_bn.accuracy(model, data.take(0), data, max_batches=4)
    for w, value in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), value)


def _run(tmp_path, name, precise, resume=False):
    x, y = mini_data(64)
    recipe = training.Recipe(recipe="two-step", epochs=2, batch_size=16, learning_rate=1e-2, precise_bn=precise)

    def build(method):
        tf.keras.utils.set_random_seed(0)
        return mini_model(method)

    data = lambda epoch, skip: tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=epoch).batch(16).skip(skip)  # noqa: E731
    eval_data = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(16)
    return training.train(build, Method(), data, eval_data, recipe, tmp_path / name, steps_per_epoch=4, resume=resume, verbose=0)


def test_a_run_that_measures_it_trains_as_one_that_does_not(tmp_path):
    plain, measured = _run(tmp_path, "plain", 0), _run(tmp_path, "measured", 2)
    for a, b in zip(plain.weights, measured.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    for step in ("step1", "step2"):
        without = training.read_history(tmp_path / "plain" / step / "history.csv")
        with_it = training.read_history(tmp_path / "measured" / step / "history.csv")
        assert set(with_it) - set(without) == {"val_precise_bn_accuracy"}
        assert all(with_it[k] == without[k] for k in without)
        assert len(with_it["val_precise_bn_accuracy"]) == 2
        assert all(0.0 <= a <= 1.0 for a in with_it["val_precise_bn_accuracy"])


def test_ctrl_c_during_the_measurement_resumes_to_the_same_run(tmp_path, monkeypatch):
    """Stopped while it measures, the run keeps the epoch's training state, and resumed it
    measures again: the same history and weights as a run never stopped."""
    straight = _run(tmp_path, "straight", 2)
    measure, calls = precise_bn.accuracy, []

    def interrupted_once(*args):
        calls.append(1)
        if len(calls) == 2:  # step 1, second epoch
            raise KeyboardInterrupt
        return measure(*args)

    monkeypatch.setattr(precise_bn, "accuracy", interrupted_once)
    with pytest.raises(training.Interrupted, match="interrupted during epoch 2"):
        _run(tmp_path, "cut", 2)
    monkeypatch.setattr(precise_bn, "accuracy", measure)
    resumed = _run(tmp_path, "cut", 2, resume=True)
    for step in ("step1", "step2"):
        assert (tmp_path / "cut" / step / "history.csv").read_text() == (tmp_path / "straight" / step / "history.csv").read_text()
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


def test_precise_bn_errors(tmp_path):
    with pytest.raises(training.TrainingError, match="precise_bn is a number of batches, 0 or more; got -1"):
        training.Recipe(precise_bn=-1)

    class TwoReplicas:
        num_replicas_in_sync = 2

    x, y = mini_data(16)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.raises(training.TrainingError, match="runs on one device"):
        training.train(mini_model, Method(), data, data, training.Recipe(batch_size=8, precise_bn=2), tmp_path, steps_per_epoch=1, strategy=TwoReplicas())
