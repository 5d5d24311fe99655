"""Losses, per-step training functions and the step-based training loop.

One loop in a fixed order (evaluate and checkpoint, step, log, stop), as in nanoGPT's train.py. The
checkpoint holds everything needed to resume: models, optimisers, step, best validation loss; the
run's settings are in run_dir/config.json. Everything runs under a tf.distribute strategy (the
default one on a single device), so the notebooks need no change for several GPUs or machines.
"""
import dataclasses
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .colour import l_ab_to_rgb
from .data import make_train_dataset
from .models import build_discriminator, build_generator, load_generator, save_generator


# =============================================================================================
# Seeding
# =============================================================================================
def set_seed(seed, deterministic_ops=False):
    """Seed Python, numpy, TensorFlow and Keras. `deterministic_ops` also makes TF pick
    deterministic kernels (slower; only needed where a reduction order could differ, e.g. on GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)  # seeds python, numpy and tf as well
    tf.random.set_seed(seed)
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()


# =============================================================================================
# Losses. Each returns per-example values; the steps average them over the *global* batch so that
# the update is the same on one device or on several replicas.
# =============================================================================================
def mse_per_example(ab_true, ab_pred):
    """Mean squared error on normalised ab, per example: (B,)."""
    return tf.reduce_mean(tf.square(ab_true - ab_pred), axis=[1, 2, 3])


def _bce_logits_per_example(labels_value, logits):
    labels = tf.fill(tf.shape(logits), labels_value)
    loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(loss, axis=[1, 2, 3])  # mean over the patch grid


def discriminator_loss(real_logits, fake_logits):
    """Per-example (total, real, fake): BCE of real patches against 1 and generated ones against 0.

    For reading the curves: a discriminator that cannot tell real from fake outputs 0.5 everywhere,
    and each part is then log(2) = 0.69 (total 1.39).
    """
    real = _bce_logits_per_example(1.0, real_logits)
    fake = _bce_logits_per_example(0.0, fake_logits)
    return real + fake, real, fake


def generator_loss(fake_logits, ab_true, ab_pred, mse_weight):
    """Per-example (total, adversarial, mse): total = adversarial + mse_weight * mse."""
    adversarial = _bce_logits_per_example(1.0, fake_logits)
    mse = mse_per_example(ab_true, ab_pred)
    return adversarial + mse_weight * mse, adversarial, mse


# =============================================================================================
# Per-step functions. They take the models and optimisers as arguments (no globals) and return a
# dict of losses, each already averaged over the global batch.
# =============================================================================================
def mse_step(generator, optimizer, l_norm, ab_norm, global_batch_size):
    """One MSE update of the generator on this replica's share of the batch."""
    with tf.GradientTape() as tape:
        ab_pred = generator(l_norm, training=True)
        loss = tf.nn.compute_average_loss(mse_per_example(ab_norm, ab_pred),
                                          global_batch_size=global_batch_size)
    grads = tape.gradient(loss, generator.trainable_variables)
    optimizer.apply_gradients(zip(grads, generator.trainable_variables))
    return {"mse": loss}


def gan_step(generator, discriminator, gen_optimizer, disc_optimizer, l_norm, ab_norm,
             global_batch_size, mse_weight):
    """One pix2pix update: the discriminator and the generator both step on the same batch."""
    def avg(per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)

    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        ab_pred = generator(l_norm, training=True)
        real_logits = discriminator([l_norm, ab_norm], training=True)
        fake_logits = discriminator([l_norm, ab_pred], training=True)
        gen_total, gen_adv, gen_mse = (avg(x) for x in
                                       generator_loss(fake_logits, ab_norm, ab_pred, mse_weight))
        disc_total = avg(discriminator_loss(real_logits, fake_logits)[0])
    gen_grads = gen_tape.gradient(gen_total, generator.trainable_variables)
    disc_grads = disc_tape.gradient(disc_total, discriminator.trainable_variables)
    gen_optimizer.apply_gradients(zip(gen_grads, generator.trainable_variables))
    disc_optimizer.apply_gradients(zip(disc_grads, discriminator.trainable_variables))
    return {"disc_loss": disc_total, "gen_adv_loss": gen_adv, "gen_mse_loss": gen_mse,
            "gen_total_loss": gen_total}


def make_distributed_step(strategy, state, global_batch_size):
    """A tf.function running one step of `state.kind` on every replica; returns summed losses."""
    def replica_step(l_norm, ab_norm):
        if state.kind == "mse":
            return mse_step(state.generator, state.gen_optimizer, l_norm, ab_norm,
                            global_batch_size)
        return gan_step(state.generator, state.discriminator, state.gen_optimizer,
                        state.disc_optimizer, l_norm, ab_norm, global_batch_size,
                        state.mse_weight)

    @tf.function
    def step(l_norm, ab_norm):
        per_replica = strategy.run(replica_step, args=(l_norm, ab_norm))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}
    return step


# =============================================================================================
# Settings and state
# =============================================================================================
@dataclasses.dataclass
class TrainConfig:
    """A run's settings. Everything but `steps` must match when a run is resumed."""
    kind: str = "mse"            # "mse" (generator alone) or "gan" (pix2pix: adversarial + MSE)
    steps: int = 6000            # optimiser steps in total (a resumed run continues up to here)
    batch_size: int = 32         # global batch, over all replicas
    image_size: int = 64
    width: int = 32              # generator's first-layer filters; doubles per level...
    max_width: int = 128         # ...up to this (keeps the weights file under 16 MB)
    dropout: float = 0.5         # in the n_dropout deepest decoder blocks, as in pix2pix
    n_dropout: int = 2
    weight_decay: float = 0.0    # > 0: AdamW (decoupled weight decay) for the generator
    disc_width: int = 32
    learning_rate: float = 2e-4  # Adam, beta_1 = 0.5, as in pix2pix
    beta_1: float = 0.5
    mse_weight: float = 100.0    # lambda in gen_total = adversarial + lambda * mse (GAN only)
    eval_every: int = 250        # validation loss, best-model bookkeeping, early stopping
    log_every: int = 25          # training scalars to TensorBoard
    sample_every: int = 500      # a few colorized validation crops as TensorBoard images
    checkpoint_every: int = 250
    patience: int = 0            # stop after this many evaluations without improvement (0: never)
    seed: int = 0
    init_generator: str = ""     # optional saved generator to start from (e.g. the image GAN)

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainState:
    kind: str
    generator: keras.Model
    discriminator: object
    gen_optimizer: keras.optimizers.Optimizer
    disc_optimizer: object
    step: tf.Variable
    best_val: tf.Variable
    evals_since_best: tf.Variable
    mse_weight: float


def build_train_state(config, strategy=None):
    """Models, optimisers and counters, built under the strategy's scope."""
    if config.kind not in ("mse", "gan"):
        raise ValueError(f"kind must be 'mse' or 'gan', got {config.kind!r}")
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        generator = build_generator(config.image_size, config.width, config.max_width,
                                    config.dropout, config.n_dropout)
        if config.init_generator:
            generator.set_weights(load_generator(config.init_generator).get_weights())
        discriminator = (build_discriminator(config.image_size, config.disc_width)
                         if config.kind == "gan" else None)
        gen_opt = (keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay,
                                          beta_1=config.beta_1)
                   if config.weight_decay > 0 else
                   keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1))
        disc_opt = (keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
                    if config.kind == "gan" else None)
        # Create the optimiser slots now so that a checkpoint restores into them.
        gen_opt.build(generator.trainable_variables)
        if disc_opt is not None:
            disc_opt.build(discriminator.trainable_variables)
        state = TrainState(config.kind, generator, discriminator, gen_opt, disc_opt,
                           tf.Variable(0, dtype=tf.int64, trainable=False, name="step"),
                           tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="best_val"),
                           tf.Variable(0, dtype=tf.int64, trainable=False, name="evals_since"),
                           config.mse_weight)
    return state


def _checkpoint(state):
    items = dict(generator=state.generator, gen_optimizer=state.gen_optimizer, step=state.step,
                 best_val=state.best_val, evals_since_best=state.evals_since_best)
    if state.discriminator is not None:
        items.update(discriminator=state.discriminator, disc_optimizer=state.disc_optimizer)
    return tf.train.Checkpoint(**items)


# =============================================================================================
# Evaluation and samples
# =============================================================================================
def evaluate_mse(generator, dataset):
    """Mean squared error on normalised ab over a finite dataset (inference mode)."""
    total, count = 0.0, 0
    for l_norm, ab_norm in dataset:
        ab_pred = generator(l_norm, training=False)
        total += float(tf.reduce_sum(mse_per_example(ab_norm, ab_pred)))
        count += int(l_norm.shape[0])
    return total / max(count, 1)


def sample_grid(generator, l_norm, ab_norm):
    """(n, S, 3S, 3) RGB rows: grayscale | predicted | original, for TensorBoard and figures."""
    ab_pred = generator(l_norm, training=False)
    grey = l_ab_to_rgb(l_norm, tf.zeros_like(ab_norm))
    return tf.concat([grey, l_ab_to_rgb(l_norm, ab_pred), l_ab_to_rgb(l_norm, ab_norm)], axis=2)


class NonFiniteLossError(RuntimeError):
    """Training produced NaN or infinity; the last good checkpoint is kept."""


def _check_finite_outputs(state, l_norm, ab_norm, step, manager):
    """Raise NonFiniteLossError unless the networks give finite outputs on a sample batch."""
    outputs = [state.generator(l_norm, training=False)]
    if state.discriminator is not None:
        outputs.append(state.discriminator([l_norm, ab_norm], training=False))
    if not all(bool(tf.reduce_all(tf.math.is_finite(x))) for x in outputs):
        raise NonFiniteLossError(
            f"the model gives non-finite outputs after step {step}: training diverged. Stopped "
            f"before checkpointing it; the last good checkpoint is kept "
            f"({manager.latest_checkpoint or 'none yet'}). Try a lower learning rate.")


# =============================================================================================
# The loop
# =============================================================================================
def train(config, data, run_dir, strategy=None, progress=True):
    """Train (or resume) a run in `run_dir`; returns a dict with the history and final numbers.

    `data` is an ImageData (load_image_dataset / load_video_frame_dataset). run_dir receives
    config.json, checkpoints/ (models, optimisers, step: every `checkpoint_every` steps and at the
    end), tensorboard/scalars and tensorboard/samples (event files), best_generator.* (lowest
    validation MSE so far) and generator.* (the last step). Started again with the same settings, a
    killed run continues from its last checkpoint, logging into the same TensorBoard run.
    """
    strategy = strategy or tf.distribute.get_strategy()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_or_write_config(config, run_dir / "config.json")

    state = build_train_state(config, strategy)
    ckpt = _checkpoint(state)
    manager = tf.train.CheckpointManager(ckpt, run_dir / "checkpoints", max_to_keep=2)
    start = 0
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        # .numpy(): under a multi-device strategy the counters are MirroredVariables, which
        # int() and float() refuse
        start = int(state.step.numpy())
        print(f"Resuming {run_dir} from step {start} ({manager.latest_checkpoint})")

    train_ds = make_train_dataset(data.images["train"], config.image_size, config.batch_size,
                                  config.seed, start_step=start)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = iter(strategy.experimental_distribute_dataset(train_ds.with_options(options)))
    step_fn = make_distributed_step(strategy, state, config.batch_size)
    sample_l, sample_ab = next(iter(data.val.unbatch().batch(6)))

    scalars = tf.summary.create_file_writer(str(run_dir / "tensorboard" / "scalars"))
    samples = tf.summary.create_file_writer(str(run_dir / "tensorboard" / "samples"))
    save_args = dict(image_size=config.image_size, width=config.width,
                     max_width=config.max_width, dropout=config.dropout,
                     n_dropout=config.n_dropout, kind=config.kind,
                     run=str(run_dir.name))
    prefix = "mse" if config.kind == "mse" else "gan"
    history = {"step": [], "val_mse": []}
    bar = _progress_bar(start, config.steps, progress)
    t_last, step_last, last_losses = time.time(), start, {}
    stopped_early = False
    step = start
    while True:
        # 1. evaluate, keep the best generator, decide whether to stop
        if step % config.eval_every == 0 or step >= config.steps:
            val_mse = evaluate_mse(state.generator, data.val)
            history["step"].append(step)
            history["val_mse"].append(val_mse)
            with scalars.as_default(step=step):
                tf.summary.scalar(f"{prefix}/validation_mse", val_mse)
            if val_mse < float(state.best_val.numpy()):
                state.best_val.assign(val_mse)
                state.evals_since_best.assign(0)
                save_generator(state.generator, run_dir / "best_generator", step=step,
                               val_mse=val_mse, **save_args)
            elif step > start:
                state.evals_since_best.assign_add(1)
            bar.set_postfix(val_mse=f"{val_mse:.5f}", **{k: f"{v:.4f}" for k, v in last_losses.items()})
            if config.patience and int(state.evals_since_best.numpy()) >= config.patience:
                print(f"\nStopping early at step {step}: validation MSE has not improved for "
                      f"{config.patience} evaluations (best {float(state.best_val.numpy()):.5f}).")
                stopped_early = True
        if step % config.sample_every == 0 or step >= config.steps or stopped_early:
            with samples.as_default(step=step):
                tf.summary.image("samples/grey_predicted_original",
                                 sample_grid(state.generator, sample_l, sample_ab), max_outputs=6)
        # 2. checkpoint
        if step > start and (step % config.checkpoint_every == 0 or step >= config.steps
                             or stopped_early):
            # A diverging step can leave huge but finite weights whose next loss is NaN: only
            # weights that still give finite outputs become the "last good checkpoint".
            _check_finite_outputs(state, sample_l, sample_ab, step, manager)
            manager.save(checkpoint_number=step)
        if step >= config.steps or stopped_early:
            break
        # 3. one step
        l_norm, ab_norm = next(batches)
        losses = {k: float(v) for k, v in step_fn(l_norm, ab_norm).items()}
        if not all(math.isfinite(v) for v in losses.values()):
            raise NonFiniteLossError(
                f"non-finite loss at step {step + 1}: {losses}. Stopped; the last good checkpoint "
                f"is kept ({manager.latest_checkpoint or 'none yet'}). Try a lower learning rate.")
        step += 1
        state.step.assign(step)
        last_losses = losses
        # 4. log
        if step % config.log_every == 0:
            now = time.time()
            with scalars.as_default(step=step):
                for name, value in losses.items():
                    tag = f"{prefix}/train_mse" if name == "mse" else f"{prefix}/{name}"
                    tf.summary.scalar(tag, value)
                tf.summary.scalar("perf/images_per_second",
                                  (step - step_last) * config.batch_size / max(now - t_last, 1e-9))
            t_last, step_last = now, step
        bar.update(1)
    bar.close()
    scalars.flush()
    samples.flush()
    save_generator(state.generator, run_dir / "generator", step=step,
                   val_mse=history["val_mse"][-1], **save_args)
    return {"steps": step, "stopped_early": stopped_early,
            "best_val_mse": float(state.best_val.numpy()),
            "final_val_mse": history["val_mse"][-1], "last_train_losses": last_losses,
            "history": history, "state": state}


def _check_or_write_config(config, path):
    new = config.to_dict()
    if path.exists():
        old = json.loads(path.read_text())
        defaults = TrainConfig().to_dict()
        # A setting added to TrainConfig after the run started counts as its default.
        diff = {k: (old.get(k, defaults[k]), v) for k, v in new.items()
                if k != "steps" and old.get(k, defaults[k]) != v}
        if diff:
            raise ValueError(f"{path.parent} holds a run with other settings {diff} (old, new). "
                             "Use a new run folder, or the same settings to resume.")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(new, indent=2) + "\n")
    os.replace(tmp, path)


def _progress_bar(start, total, enabled):
    # Plain text tqdm, also in notebooks: a widget bar shows only its first state in a saved
    # notebook, the text bar its last.
    from tqdm import tqdm
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    return tqdm(total=total, initial=start, disable=not enabled, unit="step", dynamic_ncols=True,
                mininterval=2.0 if interactive else 30.0, smoothing=0.05)


def read_scalars(log_dir):
    """{tag: (steps array, values array)} from the TensorBoard event files under `log_dir`.

    For drawing the curves with matplotlib on a static page; steps repeated by a resumed run keep
    the value written last.
    """
    from tensorboard.backend.event_processing import event_accumulator
    out = {}
    for events in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        acc = event_accumulator.EventAccumulator(str(events), size_guidance={"tensors": 0})
        acc.Reload()
        for tag in acc.Tags().get("tensors", []):
            series = out.setdefault(tag, {})
            for ev in acc.Tensors(tag):
                series[ev.step] = float(tf.make_ndarray(ev.tensor_proto))
    return {tag: (np.array(sorted(s)), np.array([s[k] for k in sorted(s)])) for tag, s in out.items()}


def ship_run(run_dir, name, resources_dir=None, which="best_generator"):
    """Copy a finished run's generator and its TensorBoard scalars into resources/ (atomically).

    resources/models/NAME_generator.{json,weights.h5} and resources/logs/NAME/ (scalars only: the
    sample images stay in the run folder, to keep the repository small).
    """
    import shutil
    run_dir = Path(run_dir)
    resources = Path(resources_dir) if resources_dir else Path(__file__).resolve().parent.parent / "resources"
    generator = load_generator(run_dir / which)
    config = dict(generator.colorizer_config)
    config.pop("format", None)
    config.pop("normalisation", None)
    save_generator(generator, resources / "models" / f"{name}_generator", **config)
    logs = resources / "logs" / name
    tmp = logs.with_name(name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run_dir / "tensorboard" / "scalars", tmp)
    shutil.rmtree(logs, ignore_errors=True)
    os.replace(tmp, logs)
    return resources / "models" / f"{name}_generator.weights.h5", logs
