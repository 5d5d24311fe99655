"""Distribution strategies for `train(..., strategy=...)`: one device, several GPUs or machines.

`train` runs every step under a tf.distribute strategy and averages the losses over the *global*
batch, and the networks' BatchNormalization layers are synchronized, so a step on N replicas gives
the same update as one device with the same global batch (tests/test_training.py checks this on a
CPU split into two logical devices with `split_cpu`).
"""
import json
import os

import tensorflow as tf

__all__ = ["STRATEGY_KINDS", "split_cpu", "read_tf_config", "make_strategy", "is_chief"]

STRATEGY_KINDS = ("auto", "default", "mirrored", "multiworker")


def split_cpu(n_devices):
    """Make the CPU appear as `n_devices` logical devices, e.g. to run MirroredStrategy on a laptop.

    Must run before TensorFlow initialises its devices (before the first tensor, model or strategy
    of the process). Returns the logical CPU device names.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n_devices)])
    except RuntimeError as err:
        raise RuntimeError(
            "split_cpu must run before TensorFlow initialises its devices: call it at the start of "
            f"a fresh process, before any tensor, model or strategy is made ({err})") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def read_tf_config():
    """The TF_CONFIG environment variable as a dict ({} when unset); ValueError when malformed."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}): {text[:200]!r}") from None
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError('TF_CONFIG needs "cluster" (e.g. {"worker": ["host1:12345", '
                         '"host2:12345"]}) and "task" (e.g. {"type": "worker", "index": 0}); '
                         f"got {text[:200]!r}")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ValueError(f"TF_CONFIG task {task} is not one of the cluster's {cluster}")
    return config


def make_strategy(kind="auto", devices=None):
    """A tf.distribute strategy for `train`.

    kind: "default" (one device: the CPU or the first GPU), "mirrored" (every local GPU, or the
    given `devices`, e.g. the logical CPUs of `split_cpu`), "multiworker" (several machines
    described by the TF_CONFIG environment variable; every worker runs the same script), or
    "auto": multiworker when TF_CONFIG is set, mirrored when there are several GPUs (or `devices`
    is given), else default.
    """
    if kind not in STRATEGY_KINDS:
        raise ValueError(f"strategy kind must be one of {STRATEGY_KINDS}, got {kind!r}")
    if kind == "auto":
        if read_tf_config():
            kind = "multiworker"
        elif devices or len(tf.config.list_physical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if not read_tf_config():
        raise ValueError("multiworker needs the TF_CONFIG environment variable: "
                         '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                         '"task": {"type": "worker", "index": 0}} (the index differs per machine)')
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy=None):
    """True on the worker that should write shared outputs (always true off a multi-worker cluster).

    The chief is task "chief", or worker 0 when the cluster has no chief.
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster
