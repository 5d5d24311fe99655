"""Losses, training steps and the training loop: values of the loss parts, what the steps update,
overfitting one batch, seeding, non-finite losses, resuming a killed run, and two replicas giving
the same update as one device.

Tiny networks (width 8/16, 32x32 crops, batch 4) keep it to seconds per test. What needs a fresh
process starts Python subprocesses: kill -9 and resume (two runs), and a CPU split into two logical
devices (one run shared by two tests); each takes ~10-20 s of CPU.
"""
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import colorizerutils as cu
from colorizerutils import training

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "resources" / "data" / "photos"
LOG2 = math.log(2.0)


def tiny_config(**changes):
    """A TrainConfig small enough for a test: 32x32 crops, widths 8/16, batch 4, a few steps."""
    settings = dict(kind="mse", steps=6, batch_size=4, image_size=32, width=8, max_width=16,
                    disc_width=8, eval_every=3, log_every=1, sample_every=1000,
                    checkpoint_every=3, seed=0)
    settings.update(changes)
    return cu.TrainConfig(**settings)


def photo_batch(n=4, size=32):
    """(l_norm, ab_norm) of n real photos (whole-photo centre crops), (n, size, size, 1|2)."""
    files = sorted(PHOTOS.glob("scratch__*.jpg"))[:n]
    rgb = tf.concat([cu.centre_crops(tf.constant(cu.read_image(f)), size, scales=(1.0,))
                     for f in files], axis=0)
    return cu.rgb_to_l_ab(rgb)


def write_tiny_photos(folder, n=10, seed=0):
    """n small PNGs (48x64): smooth colour ramps with a coloured disc, so colour relates to L."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:64].astype(np.float64)
    for i in range(n):
        c = rng.uniform(0.0, 1.0, (3, 3))
        rgb = np.stack([c[k, 0] + (c[k, 1] * yy + c[k, 2] * xx) / 64 for k in range(3)], axis=-1)
        cy, cx, r = rng.uniform(10, 38), rng.uniform(10, 54), rng.uniform(6, 14)
        rgb[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0.0, 1.0, 3)
        Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


@pytest.fixture(scope="module")
def tiny_photo_dir(tmp_path_factory):
    return write_tiny_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def tiny_data(tiny_photo_dir):
    return cu.load_image_dataset(tiny_photo_dir, image_size=32, batch_size=4, short_side=48,
                                 verbose=False)


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------
def test_discriminator_loss_parts():
    zeros = tf.zeros((2, 6, 6, 1))
    total, real, fake = cu.discriminator_loss(zeros, zeros)
    assert total.shape == real.shape == fake.shape == (2,)  # per example
    # a discriminator that outputs 0.5 everywhere: log(2) per part
    np.testing.assert_allclose(real, [LOG2, LOG2], rtol=1e-6)
    np.testing.assert_allclose(fake, [LOG2, LOG2], rtol=1e-6)
    np.testing.assert_allclose(total, [2 * LOG2, 2 * LOG2], rtol=1e-6)
    # confident and right: ~0; confident and wrong: ~|logit|
    total, real, fake = cu.discriminator_loss(zeros + 20.0, zeros - 20.0)
    assert np.all(total.numpy() < 1e-8)
    total, real, fake = cu.discriminator_loss(zeros - 20.0, zeros + 20.0)
    np.testing.assert_allclose(real, [20.0, 20.0], rtol=1e-6)
    np.testing.assert_allclose(fake, [20.0, 20.0], rtol=1e-6)
    # any logits: mean over the grid of softplus(-x) for real patches, softplus(x) for fake ones
    rng = np.random.default_rng(0)
    real_logits, fake_logits = rng.normal(0, 3, (2, 3, 2, 6, 6, 1)).astype(np.float32)
    total, real, fake = cu.discriminator_loss(real_logits, fake_logits)
    np.testing.assert_allclose(real, np.log1p(np.exp(-real_logits)).mean(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(fake, np.log1p(np.exp(fake_logits)).mean(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(total, real + fake, rtol=1e-6)


@pytest.mark.parametrize("mse_weight", [0.0, 1.0, 100.0])
def test_generator_loss_parts_and_lambda(mse_weight):
    fake_logits = tf.zeros((2, 6, 6, 1))
    ab_true = tf.zeros((2, 8, 8, 2))
    ab_pred = tf.constant([0.5, 0.1])[:, None, None, None] * tf.ones((2, 8, 8, 2))
    total, adversarial, mse = cu.generator_loss(fake_logits, ab_true, ab_pred, mse_weight)
    np.testing.assert_allclose(adversarial, [LOG2, LOG2], rtol=1e-6)
    np.testing.assert_allclose(mse, [0.25, 0.01], rtol=1e-6)
    np.testing.assert_allclose(total, LOG2 + mse_weight * np.array([0.25, 0.01]), rtol=1e-6)
    # the adversarial part rewards fooling the discriminator: high fake logits, low loss
    assert np.all(cu.generator_loss(fake_logits + 5.0, ab_true, ab_pred, mse_weight)[1] < 0.01)


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------
def _changed(before, model):
    return [not np.array_equal(a, b) for a, b in zip(before, model.get_weights())]


def test_mse_step_averages_over_the_global_batch():
    gen = cu.build_generator(32, width=8, max_width=16, dropout=0.0)
    opt = keras.optimizers.Adam(1e-3)
    l_norm, ab_norm = photo_batch()
    # with dropout off, the training-mode output is fixed by the weights and the batch
    expected = float(tf.reduce_mean(tf.square(ab_norm - gen(l_norm, training=True))))
    before = gen.get_weights()
    losses = cu.mse_step(gen, opt, l_norm, ab_norm, global_batch_size=4)
    assert set(losses) == {"mse"}
    np.testing.assert_allclose(float(losses["mse"]), expected, rtol=1e-5)
    assert int(opt.iterations) == 1 and any(_changed(before, gen))
    # this replica's 4 examples are half of a global batch of 8: the loss it returns is halved
    expected = float(tf.reduce_mean(tf.square(ab_norm - gen(l_norm, training=True))))
    half = cu.mse_step(gen, opt, l_norm, ab_norm, global_batch_size=8)["mse"]
    np.testing.assert_allclose(float(half), expected / 2, rtol=1e-5)


def test_gan_step_returns_its_parts_and_updates_both_networks():
    gen = cu.build_generator(32, width=8, max_width=16, dropout=0.0)
    disc = cu.build_discriminator(32, width=8)
    gen_opt, disc_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    l_norm, ab_norm = photo_batch()
    # the same forward passes as the step (BatchNorm in training mode uses each call's batch)
    ab_pred = gen(l_norm, training=True)
    real_logits = disc([l_norm, ab_norm], training=True)
    fake_logits = disc([l_norm, ab_pred], training=True)
    disc_total = cu.discriminator_loss(real_logits, fake_logits)[0]
    gen_parts = cu.generator_loss(fake_logits, ab_norm, ab_pred, 10.0)
    gen_before, disc_before = gen.get_weights(), disc.get_weights()

    losses = cu.gan_step(gen, disc, gen_opt, disc_opt, l_norm, ab_norm, global_batch_size=4,
                         mse_weight=10.0)
    assert set(losses) == {"disc_loss", "gen_adv_loss", "gen_mse_loss", "gen_total_loss"}
    np.testing.assert_allclose(float(losses["disc_loss"]), np.mean(disc_total), rtol=1e-5)
    for name, part in zip(("gen_total_loss", "gen_adv_loss", "gen_mse_loss"), gen_parts):
        np.testing.assert_allclose(float(losses[name]), np.mean(part), rtol=1e-5)
    np.testing.assert_allclose(float(losses["gen_total_loss"]),
                               float(losses["gen_adv_loss"]) + 10.0 * float(losses["gen_mse_loss"]),
                               rtol=1e-5)
    assert int(gen_opt.iterations) == 1 and int(disc_opt.iterations) == 1
    assert any(_changed(gen_before, gen)) and any(_changed(disc_before, disc))


def test_distributed_step_is_one_tf_function_over_models_passed_in():
    state = cu.build_train_state(tiny_config(dropout=0.0))
    step = cu.make_distributed_step(tf.distribute.get_strategy(), state, 4)
    l_norm, ab_norm = photo_batch()
    first = step(l_norm, ab_norm)
    second = step(l_norm, ab_norm)
    assert set(first) == {"mse"} and float(second["mse"]) != float(first["mse"])
    assert step.experimental_get_tracing_count() == 1  # traced once, not per call
    assert int(state.gen_optimizer.iterations) == 2


# ---------------------------------------------------------------------------------------------
# Overfitting one batch: the losses must fall
# ---------------------------------------------------------------------------------------------
def test_mse_training_overfits_one_batch():
    state = cu.build_train_state(tiny_config(dropout=0.0, learning_rate=2e-3))
    step = cu.make_distributed_step(tf.distribute.get_strategy(), state, 4)
    l_norm, ab_norm = photo_batch()
    losses = [float(step(l_norm, ab_norm)["mse"]) for _ in range(40)]
    assert losses[-1] < 0.3 * losses[0], losses


def test_gan_generator_mse_falls_on_one_batch():
    state = cu.build_train_state(tiny_config(kind="gan", dropout=0.0, learning_rate=2e-3,
                                             mse_weight=100.0))
    step = cu.make_distributed_step(tf.distribute.get_strategy(), state, 4)
    l_norm, ab_norm = photo_batch()
    history = [step(l_norm, ab_norm) for _ in range(40)]
    mse = [float(h["gen_mse_loss"]) for h in history]
    assert mse[-1] < 0.3 * mse[0], mse
    assert all(math.isfinite(float(v)) for h in history for v in h.values())


# ---------------------------------------------------------------------------------------------
# The loop: seeds, settings, non-finite losses
# ---------------------------------------------------------------------------------------------
def test_seeded_runs_give_the_same_losses(tiny_data, tmp_path):
    """Two short runs after set_seed(123), dropout on: same losses, validation and weights.

    (Both run in this process; that set_seed, not the process, decides the initial weights is
    tests/test_models.py::test_initial_weights_follow_set_seed.)
    """
    config = tiny_config(steps=4, eval_every=2, checkpoint_every=4, dropout=0.5)
    results = []
    for name in ("a", "b"):
        cu.set_seed(123)
        results.append(cu.train(config, tiny_data, tmp_path / name, progress=False))
    first, second = results
    assert first["steps"] == second["steps"] == 4
    assert first["history"] == second["history"]
    assert first["last_train_losses"] == second["last_train_losses"]
    weights = [r["state"].generator.get_weights() for r in results]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_rerun_with_other_settings_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(tiny_config().to_dict()))
    with pytest.raises(ValueError, match=r"run.*other settings.*learning_rate"):
        cu.train(tiny_config(learning_rate=1e-3), None, run_dir, progress=False)
    assert json.loads((run_dir / "config.json").read_text()) == tiny_config().to_dict()


def _restore(config, checkpoint):
    """A fresh state restored from a checkpoint file (through train()'s own checkpoint layout)."""
    state = cu.build_train_state(config)
    training._checkpoint(state).restore(str(checkpoint)).assert_existing_objects_matched()
    return state


def test_nan_batch_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path,
                                                                    monkeypatch):
    """The third training batch is poisoned with NaN: the run stops at step 3, ckpt-2 stays."""
    original = training.make_train_dataset

    def poisoned(*args, **kwargs):
        def poison(index, batch):
            l_norm, ab_norm = batch
            return tf.where(index == 2, tf.fill(tf.shape(l_norm), np.nan), l_norm), ab_norm
        return original(*args, **kwargs).enumerate().map(poison)

    monkeypatch.setattr(training, "make_train_dataset", poisoned)
    config = tiny_config(steps=6, checkpoint_every=1, eval_every=1)
    run_dir = tmp_path / "run"
    with pytest.raises(cu.NonFiniteLossError, match=r"step 3.*ckpt-2"):
        cu.train(config, tiny_data, run_dir, progress=False)
    checkpoints = run_dir / "checkpoints"
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-2")
    assert not list(checkpoints.glob("ckpt-3*")), "a checkpoint was written after the bad step"
    assert not (run_dir / "generator.json").exists()
    state = _restore(config, checkpoints / "ckpt-2")
    assert int(state.step) == 2 and int(state.gen_optimizer.iterations) == 2
    assert all(np.all(np.isfinite(w)) for w in state.generator.get_weights())
    assert math.isfinite(cu.evaluate_mse(state.generator, tiny_data.val))


def test_diverging_run_stops_without_keeping_a_broken_checkpoint(tiny_data, tmp_path):
    """A learning rate of 1e30 blows the weights up in one step (still finite, ~1e30); the next
    forward pass gives NaN. Every checkpoint left behind must still give finite outputs.

    Fails while the loop checkpoints without checking the model it saves: it keeps ckpt-1, whose
    weights are the ones that produced the NaN.
    """
    config = tiny_config(steps=5, learning_rate=1e30, checkpoint_every=1, eval_every=1)
    run_dir = tmp_path / "run"
    with pytest.raises(cu.NonFiniteLossError, match="non-finite"):
        cu.train(config, tiny_data, run_dir, progress=False)
    kept = tf.train.get_checkpoint_state(str(run_dir / "checkpoints"))
    for checkpoint in kept.all_model_checkpoint_paths if kept else []:
        state = _restore(config, checkpoint)
        val_mse = cu.evaluate_mse(state.generator, tiny_data.val)
        assert math.isfinite(val_mse), f"{checkpoint} gives a validation MSE of {val_mse}"


# ---------------------------------------------------------------------------------------------
# Resuming a run killed with kill -9
# ---------------------------------------------------------------------------------------------
_RESUME_CHILD = r"""
import json, os, sys, time
import numpy as np
import colorizerutils as cu
from colorizerutils import training

run_dir, photo_dir, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
delay = float(os.environ.get("COLORIZER_TEST_STEP_DELAY", "0"))
make_step = training.make_distributed_step


def reporting_make_step(strategy, state, global_batch_size):
    # train() builds its step function right after restoring the checkpoint: report the state.
    print("RESTORED " + json.dumps({
        "step": int(state.step),
        "optimizer": [float(np.abs(v.numpy()).sum()) for v in state.gen_optimizer.variables]}),
        flush=True)
    step = make_step(strategy, state, global_batch_size)
    if not delay:
        return step

    def slow_step(*batch):  # first launch only: leaves the test time to kill it mid-run
        time.sleep(delay)
        return step(*batch)
    return slow_step


training.make_distributed_step = reporting_make_step
data = cu.load_image_dataset(photo_dir, image_size=32, batch_size=4, short_side=48, verbose=False)
result = cu.train(cu.TrainConfig(**settings), data, run_dir, progress=False)
print("RESULT " + json.dumps({"steps": result["steps"],
                              "iterations": int(result["state"].gen_optimizer.iterations)}),
      flush=True)
"""


def _latest_checkpoint_step(run_dir):
    state = run_dir / "checkpoints" / "checkpoint"
    if not state.exists():
        return -1
    match = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', state.read_text(), re.M)
    return int(match.group(1)) if match else -1


def _child_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "COLORIZER_TEST_STEP_DELAY"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def test_killed_run_resumes_from_its_last_checkpoint(tiny_photo_dir, tmp_path):
    run_dir = tmp_path / "run"
    config = tiny_config(steps=20, checkpoint_every=4, eval_every=4, log_every=1)
    args = [sys.executable, "-c", _RESUME_CHILD, str(run_dir), str(tiny_photo_dir),
            json.dumps(config.to_dict())]

    # 1. start, wait for a checkpoint past step 8, kill -9
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(args, env=_child_env(COLORIZER_TEST_STEP_DELAY="0.25"),
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    try:
        while _latest_checkpoint_step(run_dir) < 8:
            assert proc.poll() is None, f"training exited early:\n{log.read_text()}"
            assert time.time() < deadline, f"no checkpoint past step 8:\n{log.read_text()}"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert "RESULT" not in log.read_text()
    resumed_from = _latest_checkpoint_step(run_dir)
    assert 8 <= resumed_from < config.steps
    # what that checkpoint holds, read here (also proves it holds Adam's state: moments > 0)
    saved = _restore(config, run_dir / "checkpoints" / f"ckpt-{resumed_from}")
    saved_optimizer = [float(np.abs(v.numpy()).sum()) for v in saved.gen_optimizer.variables]
    assert saved_optimizer[0] == resumed_from and sum(saved_optimizer[2:]) > 0

    # 2. the same command again: it continues from that checkpoint, with the optimiser's state
    second = subprocess.run(args, env=_child_env(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    assert f"Resuming {run_dir} from step {resumed_from} " in second.stdout
    restored = json.loads(re.search(r"^RESTORED (.*)$", second.stdout, re.M).group(1))
    result = json.loads(re.search(r"^RESULT (.*)$", second.stdout, re.M).group(1))
    assert restored["step"] == resumed_from
    # Adam's variables (iteration count, learning rate, first and second moments) as saved
    np.testing.assert_allclose(restored["optimizer"], saved_optimizer, rtol=1e-6)
    assert result == {"steps": config.steps, "iterations": config.steps}

    # 3. one run folder: both halves' TensorBoard events in the same scalars folder, no gap
    assert sorted(p.name for p in (run_dir / "tensorboard").iterdir()) == ["samples", "scalars"]
    events = list((run_dir / "tensorboard" / "scalars").glob("events.out.tfevents.*"))
    assert len(events) == 2
    steps, _ = cu.read_scalars(run_dir / "tensorboard" / "scalars")["mse/train_mse"]
    assert list(steps) == list(range(1, config.steps + 1))
    assert json.loads((run_dir / "generator.json").read_text())["step"] == config.steps


# ---------------------------------------------------------------------------------------------
# Two replicas (a CPU split into two logical devices) give the same update as one device
# ---------------------------------------------------------------------------------------------
_DISTRIBUTED_CHILD = r"""
import json, sys, traceback
from colorizerutils import distribute
devices = distribute.split_cpu(2)  # before TensorFlow initialises: hence a fresh process
import numpy as np
import tensorflow as tf
import colorizerutils as cu

out_path, mode, photo_dir, run_dir = sys.argv[1:5]
mirrored = distribute.make_strategy("mirrored", devices)
assert mirrored.num_replicas_in_sync == 2, mirrored.num_replicas_in_sync
l_norm = tf.random.stateless_uniform((4, 32, 32, 1), (1, 2), -1.0, 1.0)
ab_norm = 0.3 * tf.tanh(tf.random.stateless_normal((4, 32, 32, 2), (3, 4)) + 2.0 * l_norm)


def one_step(kind, strategy, initial=None):
    # dropout 0: its masks are random, the rest of the step is deterministic
    config = cu.TrainConfig(kind=kind, batch_size=4, image_size=32, width=8, max_width=16,
                            disc_width=8, dropout=0.0)
    state = cu.build_train_state(config, strategy)
    models = [state.generator] + ([state.discriminator] if kind == "gan" else [])
    optimizers = [state.gen_optimizer] + ([state.disc_optimizer] if kind == "gan" else [])
    if initial is None:
        initial = [m.get_weights() for m in models]
    for model, weights in zip(models, initial):
        model.set_weights(weights)
    batches = tf.data.Dataset.from_tensor_slices((l_norm, ab_norm)).batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(batches)))  # 2 per replica
    step = cu.make_distributed_step(strategy, state, 4)
    # "eager" runs the same step code without compiling it (tracing two replicas of the GAN step
    # takes about a minute on two busy cores); "graph" is the tf.function that train() runs.
    losses = (step if mode == "graph" else step.python_function)(*batch)
    result = {f"loss/{k}": v.numpy() for k, v in losses.items()}
    for m, model in enumerate(models):
        for i, var in enumerate(model.weights):  # BatchNorm moving statistics included
            copies = [v.numpy() for v in strategy.experimental_local_results(var.value)]
            for copy in copies[1:]:
                np.testing.assert_array_equal(copies[0], copy)  # replicas stay in sync
            result[f"model{m}/{i}"] = copies[0]
    for o, optimizer in enumerate(optimizers):
        for i, var in enumerate(optimizer.variables):  # Adam moments record the gradients
            result[f"optimizer{o}/{i}"] = var.numpy()
    return initial, result


out = {}
for kind in ("mse", "gan"):
    initial, one = one_step(kind, tf.distribute.get_strategy())
    _, two = one_step(kind, mirrored, initial)
    out.update({f"{kind}/one/{k}": v for k, v in one.items()})
    out.update({f"{kind}/two/{k}": v for k, v in two.items()})
    out[f"{kind}/initial/model0/0"] = initial[0][0]
np.savez(out_path, **out)

# The whole loop, train(), on one device and on the two replicas: same seed, same data
report = {}
if photo_dir:
    data = cu.load_image_dataset(photo_dir, image_size=32, batch_size=4, short_side=48,
                                 verbose=False)
    config = cu.TrainConfig(kind="mse", steps=2, batch_size=4, image_size=32, width=8,
                            max_width=16, dropout=0.0, eval_every=2, checkpoint_every=2,
                            log_every=1, sample_every=1000)
    for name, strategy in (("one", tf.distribute.get_strategy()), ("two", mirrored)):
        cu.set_seed(0)
        try:
            result = cu.train(config, data, f"{run_dir}/{name}", strategy=strategy,
                              progress=False)
            report[name] = {"steps": result["steps"], "losses": result["last_train_losses"],
                            "val_mse": result["history"]["val_mse"]}
        except Exception:
            report[name] = {"error": traceback.format_exc()}
with open(out_path + ".json", "w") as f:
    json.dump(report, f)
"""


def _run_distributed_child(folder, mode, photo_dir=""):
    out_path = folder / "steps.npz"
    child = subprocess.run([sys.executable, "-c", _DISTRIBUTED_CHILD, str(out_path), mode,
                            str(photo_dir), str(folder / "runs")],
                           env=_child_env(), capture_output=True, text=True, timeout=900)
    assert child.returncode == 0, (child.stdout + child.stderr)[-4000:]
    return np.load(out_path), json.loads(Path(f"{out_path}.json").read_text())


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory, tiny_photo_dir):
    """One subprocess for both tests below: its start-up is the expensive part."""
    return _run_distributed_child(tmp_path_factory.mktemp("replicas"), "eager", tiny_photo_dir)


def _assert_same_update(results):
    for kind, n_losses in (("mse", 1), ("gan", 4)):
        one = sorted(k for k in results.files if k.startswith(f"{kind}/one/"))
        assert sum(k.startswith(f"{kind}/one/loss/") for k in one) == n_losses
        for key in one:
            # float tolerance: the two replicas sum their gradients in another order (differences
            # of a few 1e-6 seen); a wrong batch scale or unsynchronised BatchNorm differs by far more
            np.testing.assert_allclose(results[key.replace("/one/", "/two/")], results[key],
                                       rtol=1e-3, atol=1e-5, err_msg=key)
        # not vacuous: the step moved the weights
        assert not np.allclose(results[f"{kind}/one/model0/0"],
                               results[f"{kind}/initial/model0/0"])


def test_two_replicas_make_the_same_update_as_one_device(two_replicas):
    """MirroredStrategy over two logical CPUs vs one device, same global batch of 4, same initial
    weights: same losses, weights (BatchNorm statistics included) and Adam moments after one MSE
    step and one GAN step.

    Adam's first step is ~lr * sign(gradient), nearly blind to the gradient's scale, so the
    moments (which hold the gradient itself) are compared too: a loss averaged over the replica's
    batch instead of the global one, or unsynchronized BatchNorm, fails here.
    """
    _assert_same_update(two_replicas[0])


@pytest.mark.skipif(not os.environ.get("COLORIZER_SLOW_TESTS"),
                    reason="compiled two-replica GAN step: 1-2 min on 2 CPUs; "
                           "set COLORIZER_SLOW_TESTS=1")
def test_two_replicas_make_the_same_update_as_one_device_compiled(tmp_path):
    _assert_same_update(_run_distributed_child(tmp_path, "graph")[0])


def test_train_on_two_replicas_matches_one_device(two_replicas):
    """train() itself under MirroredStrategy: it runs, and gives the losses of one device.

    Fails while train() converts its step counter with int(state.step): under a multi-device
    strategy that is a MirroredVariable, which int() refuses (TypeError).
    """
    report = two_replicas[1]
    for name in ("one", "two"):
        assert "error" not in report[name], report[name]["error"]
    one, two = report["one"], report["two"]
    assert one["steps"] == two["steps"] == 2
    for key in one["losses"]:
        np.testing.assert_allclose(two["losses"][key], one["losses"][key], rtol=1e-4)
    np.testing.assert_allclose(two["val_mse"], one["val_mse"], rtol=1e-4)


def test_make_strategy_kinds(monkeypatch):
    from colorizerutils import distribute
    assert distribute.make_strategy("default") is tf.distribute.get_strategy()
    if len(tf.config.list_physical_devices("GPU")) < 2:
        assert distribute.make_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="one of"):
        distribute.make_strategy("tpu-pod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{cluster")
    with pytest.raises(ValueError, match="not valid JSON"):
        distribute.read_tf_config()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 2}}))
    with pytest.raises(ValueError, match="not one of the cluster"):
        distribute.read_tf_config()
    assert distribute.is_chief(tf.distribute.get_strategy())
    tf.constant(1.0) + 1.0  # TensorFlow has initialised its devices now (if not before)...
    with pytest.raises(RuntimeError, match="before TensorFlow initialises"):
        distribute.split_cpu(2)  # ...so they can no longer be split
