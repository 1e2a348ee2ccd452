"""Mixed precision: every method trains under bfloat16 on this CPU with a finite loss, keeps
its signs and statistics in float32, and saves a float32 model that LCE converts with
parity, as it converts a float32-trained one."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from larq_methods import convert, saving, training
from larq_methods.quantizers import is_binary
from tests.helpers import mini_data, mini_model

# one method per named preset; FTBNN's two groups need 32 channels per group
METHODS = {name: method for name, method in zoo.PRESETS.items()}


@pytest.fixture(scope="module")
def batches():
    x, y = mini_data(64, shape=(8, 8, 1))
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16), x


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(METHODS))
def test_every_method_trains_in_bfloat16_and_converts_with_parity(preset, batches, tmp_path):
    data, x = batches
    method = METHODS[preset]
    build = lambda m: mini_model(m, filters=64)  # noqa: E731
    recipe = training.Recipe(epochs=2, batch_size=16, learning_rate=1e-2, precision="mixed_bfloat16")

    seen = {}

    def watch(m):  # the model trained (built first; the float32 copy saved comes after)
        model = build(m)
        seen.setdefault("policies", {layer.name: layer.dtype_policy.name for layer in model.layers})
        seen.setdefault("signs", [layer.name for layer in model.layers if is_binary(layer)])
        return model

    saved = training.train(watch, method, data, data, recipe, tmp_path, steps_per_epoch=4, verbose=0)
    history = training.read_history(tmp_path / "history.csv")
    assert all(np.isfinite(history["loss"])) and len(history["loss"]) == 2
    # signs (and INSTA's and DyBNN's statistics) in float32, the convolutions in bfloat16
    policies = seen["policies"]
    assert policies["b1_bconv"] == "mixed_bfloat16" and policies["stem"] == "mixed_bfloat16"
    assert seen["signs"] and all(policies[name] == "float32" for name in seen["signs"])
    if method.activation in ("insta-prelu", "dyprelu"):
        assert policies["b1_act"] == "float32"
    # the saved model is float32 and converts as a float32 model does
    model = saving.load_model(tmp_path / "model.h5")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert saved.count_params() == model.count_params()
    flatbuffer = convert.convert(model)
    convert.check_binarised(model, convert.inventory(flatbuffer))
    parity = convert.parity(model, flatbuffer, x[:32])
    assert parity["max_abs_diff"] < 1e-4 and parity["top1_agreement"] == 1.0, parity


@pytest.mark.slow
def test_float16_scales_the_loss_and_a_mixed_run_resumes(batches, tmp_path):
    data, _ = batches
    recipe = training.Recipe(epochs=1, batch_size=16, precision="mixed_float16")
    method = zoo.PRESETS["rebnn"].replace(gamma="adaptive", weights="learned")
    training.train(mini_model, method, data, data, recipe, tmp_path, steps_per_epoch=4, verbose=0)
    assert np.isfinite(training.read_history(tmp_path / "history.csv")["loss"]).all()
    # the checkpoint holds the loss-scaling optimiser; extending the run restores it
    longer = training.Recipe(epochs=2, batch_size=16, precision="mixed_float16")
    training.train(mini_model, method, data, data, longer, tmp_path, steps_per_epoch=4, verbose=0, resume=True)
    assert len(training.read_history(tmp_path / "history.csv")["loss"]) == 2
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored after training
