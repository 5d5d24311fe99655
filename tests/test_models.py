"""The networks: shapes, value ranges, the PatchGAN grid, the default weights-file size, seeding of
the initial weights, and saving/loading a generator for inference (JSON settings + weights, no
code).

Small widths (8/16) keep every test well under a second or two on a busy CPU.
"""
import json

import numpy as np
import pytest
import tensorflow as tf

import colorizerutils as cu

SMALL = dict(width=8, max_width=16)


def _l_batch(n, size, seed=0):
    return tf.random.stateless_uniform((n, size, size, 1), (seed, 1), -1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64])
def test_generator_maps_l_to_ab_in_tanh_range(size):
    gen = cu.build_generator(size, **SMALL, dropout=0.0)
    assert gen.input_shape == (None, size, size, 1)
    assert gen.output_shape == (None, size, size, 2)
    # Inputs far outside [-1, 1] push the last layer into saturation: a tanh output stays in
    # [-1, 1], a linear one would not.
    ab = gen(_l_batch(2, size) * 1e4, training=False).numpy()
    assert ab.shape == (2, size, size, 2)
    assert np.all(np.abs(ab) <= 1.0) and np.all(np.isfinite(ab))
    assert np.abs(ab).max() > 0.5, "a saturated input should reach the tanh plateau"


def test_generator_is_a_unet_down_to_1x1():
    gen = cu.build_generator(64, **SMALL)
    # six stride-2 encoder blocks for 64x64, the deepest one at 1x1, widths capped at max_width
    downs = [gen.get_layer(f"down{i}") for i in range(1, 7)]
    assert [d.output.shape[1] for d in downs] == [32, 16, 8, 4, 2, 1]
    assert [d.output.shape[3] for d in downs] == [8, 16, 16, 16, 16, 16]
    with pytest.raises(ValueError, match="power of two"):
        cu.build_generator(48, **SMALL)
    with pytest.raises(ValueError, match="power of two"):
        cu.build_generator(4, **SMALL)


def test_generator_dropout_only_in_training_mode():
    gen = cu.build_generator(32, **SMALL, dropout=0.5)
    l_norm = _l_batch(2, 32)
    np.testing.assert_array_equal(gen(l_norm, training=False), gen(l_norm, training=False))
    assert not np.allclose(gen(l_norm, training=True), gen(l_norm, training=True))


def test_default_generator_weights_file_at_most_16_mb(tmp_path):
    """The generator that TrainConfig() trains is the one built, and its file is <= 16 MB."""
    config = cu.TrainConfig()
    state = cu.build_train_state(config)
    gen = state.generator
    # build_train_state must build what the config says...
    assert gen.input_shape == (None, config.image_size, config.image_size, 1)
    assert gen.get_layer("down1").output.shape[3] == config.width
    assert max(gen.get_layer(f"down{i}").output.shape[3] for i in range(1, 7)) == config.max_width
    # ...and its float32 weights file is within the limit.
    weights = cu.save_generator(gen, tmp_path / "default", width=config.width,
                                max_width=config.max_width, dropout=config.dropout)
    size = weights.stat().st_size
    assert size <= 16 * 1024 ** 2, f"{size / 1024 ** 2:.1f} MiB"
    # float32 arrays plus a little HDF5 metadata (float64 would double it)
    assert 4 * gen.count_params() <= size < 4 * gen.count_params() + 1024 ** 2


def test_initial_weights_follow_set_seed():
    """set_seed decides the initial weights: same seed, same weights; another seed, others.

    Also no two layers start from the same kernel. Fails while models.py shares one seeded
    initializer instance (`_INIT`) between all layers: its seed is drawn once at import, so the
    weights ignore set_seed (and differ between processes) and same-shaped kernels are copies.
    """
    cu.set_seed(0)
    first = cu.build_generator(32, **SMALL).get_weights()
    cu.set_seed(0)
    again = cu.build_generator(32, **SMALL).get_weights()
    cu.set_seed(1)
    other = cu.build_generator(32, **SMALL).get_weights()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    kernels = [(i, w) for i, w in enumerate(first) if w.ndim == 4]
    assert not np.array_equal(kernels[0][1], other[kernels[0][0]]), \
        "set_seed(1) gave the same initial kernel as set_seed(0)"
    for (i, a), (j, b) in zip(kernels, kernels[1:]):
        if a.shape == b.shape:
            assert not np.array_equal(a, b), f"weights {i} and {j} start identical"


# ---------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, grid", [(32, 2), (64, 6), (128, 14)])
def test_patchgan_grid(size, grid):
    disc = cu.build_discriminator(size, width=8)
    assert cu.patch_grid_size(size) == grid
    assert [tuple(s) for s in disc.input_shape] == [(None, size, size, 1), (None, size, size, 2)]
    logits = disc([_l_batch(3, size), tf.zeros((3, size, size, 2))], training=False)
    assert logits.shape == (3, grid, grid, 1)
    # logits, not probabilities: the losses apply the sigmoid
    assert disc.get_layer("patch_logits").activation.__name__ == "linear"


def test_patchgan_receptive_field_is_70_pixels():
    """Each logit sees a 70x70 patch (pix2pix's 70x70 PatchGAN): 4 + 3*(2 + 4 + 8 + 8) = 70.

    Measured from the gradient of one central logit of a 128x128 input (so the patch is not cut by
    the border). LeakyReLU's slope never vanishes, so every pixel in the field has a non-zero
    gradient.
    """
    size = 128
    disc = cu.build_discriminator(size, width=8)
    l_norm = tf.Variable(_l_batch(1, size))
    ab_norm = tf.Variable(tf.zeros((1, size, size, 2)))
    with tf.GradientTape() as tape:
        logits = disc([l_norm, ab_norm], training=False)
        centre = logits[0, 7, 7, 0]
    grad = tape.gradient(centre, l_norm)[0, :, :, 0].numpy()
    rows = np.flatnonzero(np.abs(grad).sum(axis=1) > 0)
    cols = np.flatnonzero(np.abs(grad).sum(axis=0) > 0)
    assert rows[-1] - rows[0] + 1 == 70
    assert cols[-1] - cols[0] + 1 == 70


# ---------------------------------------------------------------------------------------------
# Saving and loading for inference
# ---------------------------------------------------------------------------------------------
SETTINGS = dict(image_size=32, width=8, max_width=16, dropout=0.5)


@pytest.fixture
def saved(tmp_path):
    gen = cu.build_generator(**SETTINGS)
    # Move the BatchNorm moving statistics away from their initial values, so that the round trip
    # is shown to carry non-trainable weights too.
    gen(_l_batch(4, 32, seed=3), training=True)
    base = tmp_path / "models" / "tiny_generator"
    weights = cu.save_generator(gen, base, run="unit-test", step=7, **SETTINGS)
    return gen, base, weights


def test_save_writes_json_and_weights(saved):
    gen, base, weights = saved
    assert weights == base.with_name("tiny_generator.weights.h5") and weights.is_file()
    config = json.loads(base.with_name("tiny_generator.json").read_text())
    assert config["format"] == cu.GENERATOR_FORMAT
    assert config["normalisation"] == {"l_center": cu.L_CENTER, "l_norm": cu.L_NORM,
                                       "ab_norm": cu.AB_NORM}
    assert {k: config[k] for k in SETTINGS} == SETTINGS and config["step"] == 7
    assert not list(base.parent.glob("*tmp*")), "temporary files left behind"


@pytest.mark.parametrize("name", ["tiny_generator", "tiny_generator.json",
                                  "tiny_generator.weights.h5"])
def test_reloaded_generator_gives_identical_outputs(saved, name):
    gen, base, _ = saved
    loaded = cu.load_generator(base.with_name(name))
    assert loaded.colorizer_config["run"] == "unit-test"
    l_norm = _l_batch(3, 32, seed=5)
    np.testing.assert_array_equal(loaded(l_norm, training=False), gen(l_norm, training=False))
    for a, b in zip(loaded.weights, gen.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def _edit_json(base, **changes):
    path = base.with_name(base.name + ".json")
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))
    return path


def test_load_refuses_another_format(saved):
    _, base, _ = saved
    path = _edit_json(base, format="keras-model/3")
    with pytest.raises(ValueError, match="tiny_generator.json.*not a colorizer generator"):
        cu.load_generator(base)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="tiny_generator.json.*not valid JSON"):
        cu.load_generator(base)


def test_load_refuses_another_normalisation(saved):
    _, base, _ = saved
    _edit_json(base, normalisation={"l_center": 50.0, "l_norm": 100.0, "ab_norm": 110.0})
    with pytest.raises(ValueError, match="tiny_generator.json.*normalisation"):
        cu.load_generator(base)


def test_load_refuses_settings_that_do_not_fit_the_weights(saved):
    _, base, _ = saved
    _edit_json(base, width=16)
    with pytest.raises(ValueError, match="tiny_generator.weights.h5.*do not fit"):
        cu.load_generator(base)


def test_load_never_runs_code_from_the_settings(saved, tmp_path):
    """A settings value is data: a string of code is refused (naming the file), never evaluated.

    Fails while load_generator hands the values to build_generator unchecked (a string width gives
    a bare TypeError from inside Keras that names no file).
    """
    _, base, _ = saved
    marker = tmp_path / "pwned"
    _edit_json(base, width=f"__import__('pathlib').Path({str(marker)!r}).touch() or 8")
    with pytest.raises(ValueError, match="tiny_generator.json"):
        cu.load_generator(base)
    assert not marker.exists()


def test_load_missing_files(saved):
    _, base, weights = saved
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="tiny_generator.weights.h5"):
        cu.load_generator(base)
    with pytest.raises(FileNotFoundError, match="nothing_here.json"):
        cu.load_generator(base.with_name("nothing_here"))

