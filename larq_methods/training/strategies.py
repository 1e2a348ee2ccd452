"""`tf.distribute` strategies by name, and what a run needs of them."""

from __future__ import annotations

import os

import tensorflow as tf

from larq_methods.training.errors import TrainingError

STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """A `tf.distribute` strategy by name.

    - "default": one device.
    - "mirrored": every local GPU (or, without GPUs, every logical CPU device).
    - "multi-worker": `MultiWorkerMirroredStrategy`; each process reads its role from
      the `TF_CONFIG` environment variable.
    - "tpu": the TPU named by `TPU_NAME` (or the local one).

    Batch sizes are global: each of the N replicas gets batch_size / N examples.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError(
                "`strategy` multi-worker needs TF_CONFIG (the cluster and this worker's task) in the environment",
                parameters=("strategy",),
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as e:
            raise TrainingError(f"no TPU found: {str(e).splitlines()[0]}") from None
        return tf.distribute.TPUStrategy(resolver)
    raise TrainingError(f"`strategy` must be one of {', '.join(STRATEGIES)}; got {name!r}", parameters=("strategy",))


def is_chief(strategy) -> bool:
    """Whether this process writes the run folder (the only one, or worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def distribute(data: tf.data.Dataset) -> tf.data.Dataset:
    """Shards by example across workers (the data are in memory, not in files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)
