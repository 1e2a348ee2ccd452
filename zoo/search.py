"""The proxy fitness of the GAAF search: a short training of a backbone with each genome,
run as any other run (`zoo.run`)."""

import math
import shutil
import tempfile
from typing import Callable

import tensorflow as tf

from larq_methods import training
from larq_methods.methods import gaaf
from zoo.registry import get_entry
from zoo.run import DataConfig, RunConfig, run


class _StopBelow(tf.keras.callbacks.Callback):
    """Stops after an epoch whose best validation accuracy so far is below `threshold`,
    as the authors' proxy does (`if best_prec1 < 11: return`)."""

    def __init__(self, threshold):
        super().__init__()
        self.threshold = threshold
        self.best = -math.inf

    def on_epoch_end(self, epoch, logs=None):
        self.best = max(self.best, (logs or {}).get("val_accuracy", -math.inf))
        if self.best < self.threshold:
            self.model.stop_training = True


def proxy_config(
    backbone: str,
    *,
    dataset: str = "fashion_mnist",
    data_dir: str | None = None,
    train_split: str = "train[:10%]",
    eval_split: str = "train[90%:]",
    image_size: int | None = None,
    alpha: float = 0.25,
    epochs: int = 1,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    schedule: str = "linear",
    seed: int = 0,
) -> RunConfig:
    """The run that scores a genome: `backbone` with its own method (the genome is set per
    call). Ours: `reactnet-18` (RSign's threshold in front of f, RPReLU), Adam 1e-3 decayed
    linearly to 0. The authors' (GAAF's `net_01.py`): `resnete-18`, `learning_rate=5e-3`
    with `schedule="step"`, 15 epochs."""
    return RunConfig(
        model=backbone,
        method=get_entry(backbone).method,
        recipe=training.Recipe(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, schedule=schedule),
        data=DataConfig(dataset=dataset, data_dir=data_dir, train_split=train_split, eval_split=eval_split, image_size=image_size),
        alpha=alpha,
        seed=seed,
        checkpoint_seconds=math.inf,  # epoch checkpoints only: a proxy run is cheap to redo
    )


def proxy_fitness(config: RunConfig, *, early_stop_below: float = 0.0) -> Callable[[gaaf.Genome], float]:
    """A fitness function for `gaaf.search`: the best validation accuracy of the run
    `config` with the genome's complementary activation before every sign, evaluated on
    its evaluation split after each epoch (`proxy_config` makes one).

    `early_stop_below`: a training whose best accuracy is below it after an epoch stops
    there (the authors' `net_01.py` stops below 0.11; their `net_02.py`, a two-level search
    that their `evo.py` does not import, below 0.2).

    Each genome trains from the same seed (initial weights, batch order: the runs are
    deterministic), so that genomes differ by their activation rather than by their luck
    with the draw. A training whose loss becomes NaN stops and scores NaN, which the search
    ranks last. Run folders go to a temporary folder, removed after each genome.
    """

    def fitness(genome: gaaf.Genome) -> float:
        tf.keras.backend.clear_session()  # drop the previous genome's model and graph
        folder = tempfile.mkdtemp(prefix="lqm-proxy-")
        try:
            stop = [_StopBelow(early_stop_below)] if early_stop_below > 0 else []
            genome_config = config.replace(method=config.method.replace(gaaf=str(genome)))
            run(genome_config, f"{folder}/run", verbose=0, echo=lambda _: None, callbacks=stop)
            history = training.read_history(f"{folder}/run/history.csv")
        except training.NonFiniteLoss:
            return math.nan
        except training.Interrupted:
            # its checkpoint goes with the temporary folder: the search stops as at Ctrl-C,
            # and a resumed one trains this genome again
            raise KeyboardInterrupt from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return max(history.get("val_accuracy", [math.nan]))

    return fitness
