"""Training: optimiser and schedule, compilation, and the fit loop with its run folder."""

import json
from pathlib import Path

import tensorflow as tf

from larq_methods import rebnn, saving


def linear_decay(learning_rate: float, total_steps: int):
    """Learning rate decayed linearly to zero over `total_steps` (ReActNet's schedule)."""
    return tf.keras.optimizers.schedules.PolynomialDecay(
        learning_rate, decay_steps=max(1, total_steps), end_learning_rate=0.0, power=1.0
    )


def compile_classifier(model: tf.keras.Model, *, learning_rate: float, total_steps: int):
    """Adam with a linear decay to zero, cross-entropy on integer labels, accuracy."""
    from_logits = getattr(model.layers[-1], "activation", None) is not tf.keras.activations.softmax
    model.compile(
        optimizer=tf.keras.optimizers.Adam(linear_decay(learning_rate, total_steps)),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def write_json(path, data: dict) -> None:
    saving.write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def fit(model, train_data, eval_data, *, epochs: int, run_dir, verbose=1):
    """Trains, logging each epoch to `run_dir/history.csv` (with ReBNN's weight-oscillation
    ratio per layer when the model has ReBNN convolutions); stops on a NaN loss."""
    run_dir = Path(run_dir)
    callbacks = [
        tf.keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        tf.keras.callbacks.TerminateOnNaN(),
    ]
    if rebnn.rebnn_layers(model):
        # before the CSV logger, which writes the oscillation ratios it adds to the logs
        callbacks.insert(0, rebnn.OscillationLogger())
    return model.fit(
        train_data,
        validation_data=eval_data,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
