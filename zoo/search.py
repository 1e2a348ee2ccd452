"""The proxy fitness of the GAAF search: a short training of a backbone with each genome."""

import math
from typing import Callable

import tensorflow as tf

from larq_methods import data, gaaf, training
from zoo.named import PRESETS
from zoo.registry import create_model


class _StopOnNaN(tf.keras.callbacks.Callback):
    """Keras' TerminateOnNaN without its message: a search meets many diverging genomes,
    and scores them (NaN) rather than reporting each under its progress bar."""

    def on_train_batch_end(self, batch, logs=None):
        if not math.isfinite((logs or {}).get("loss", 0.0)):
            self.model.stop_training = True


def proxy_fitness(
    backbone: str,
    train_set: data.Dataset,
    eval_set: data.Dataset,
    *,
    input_shape: tuple[int, int, int],
    alpha: float,
    epochs: int,
    batch_size: int,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> Callable[[gaaf.Genome], float]:
    """A fitness function for `gaaf.search`: the best validation accuracy of `backbone`
    with ReActNet's method and the genome's complementary activation before every sign,
    trained for `epochs` epochs on `train_set` and evaluated on `eval_set` after each.

    Each genome trains from the same seed (initial weights, batch order), so that genomes
    differ by their activation rather than by their luck with the draw. A training whose loss
    becomes NaN stops and scores NaN, which the search ranks last.
    """
    size, _, channels = input_shape
    steps = epochs * -(-train_set.num_examples // batch_size)

    def fitness(genome: gaaf.Genome) -> float:
        tf.keras.backend.clear_session()  # drop the previous genome's model and graph
        tf.keras.utils.set_random_seed(seed)
        model = create_model(
            backbone,
            method=PRESETS["reactnet"].replace(gaaf=str(genome)),
            alpha=alpha,
            input_shape=input_shape,
            num_classes=train_set.num_classes,
        )
        training.compile_classifier(model, learning_rate=learning_rate, total_steps=steps)
        # Built after the seed is set, so that every genome gets the same batch order.
        pipe = dict(image_size=size, channels=channels, batch_size=batch_size)
        train_data = data.pipeline(train_set, training=True, seed=seed, **pipe)
        eval_data = data.pipeline(eval_set, training=False, **pipe)
        history = model.fit(
            train_data,
            validation_data=eval_data,
            epochs=epochs,
            callbacks=[_StopOnNaN()],
            verbose=0,
        ).history
        if not all(map(math.isfinite, history.get("loss", [math.nan]))):
            return math.nan
        return max(history.get("val_accuracy", [math.nan]))

    return fitness
