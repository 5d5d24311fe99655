"""Full-resolution inference: exact size and L, the bilinear ab upsampling, the tiled LAB -> sRGB
kernel against scikit-image, gamut handling, every kind of input, batches, bounded memory, and the
shipped-model registry.

A tiny generator (width 8) or a stub that predicts one fixed ab stands in for a trained model: the
properties tested here do not depend on the weights.
"""
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

import colorizerutils as cu
from colorizerutils import inference
from conftest import ROOT

PHOTO = ROOT / "resources" / "data" / "photos" / "lomiri__Bridge_by_Sander_Klootwijk.jpg"


class ConstantAbGenerator:
    """Predicts the same ab_norm everywhere (a stand-in for a model; saturated values on demand)."""

    def __init__(self, a_norm, b_norm, size=64):
        self.input_shape = (None, size, size, 1)
        self.ab = (a_norm, b_norm)

    def __call__(self, l_norm, training=False):
        shape = tf.shape(l_norm)[:3]
        return tf.stack([tf.fill(shape, self.ab[0]), tf.fill(shape, self.ab[1])], axis=-1)


@pytest.fixture(scope="module")
def tiny_generator():
    tf.keras.utils.set_random_seed(1)
    return cu.build_generator(64, width=8, max_width=16)


@pytest.fixture(scope="module")
def photo():
    return cu.read_image(PHOTO)


def _max_dl(output, l_expected):
    return float(np.abs(rgb2lab(output)[:, :, 0] - l_expected).max())


# ---------------------------------------------------------------------------------------------
# Upsampling
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("height,width", [(1, 1), (3, 700), (300, 240), (1001, 77)])
def test_upsample_ab_is_tensorflow_bilinear(height, width):
    ab = np.random.default_rng(0).uniform(-60, 60, (64, 64, 2)).astype(np.float32)
    expected = tf.image.resize(ab[None], [height, width], method="bilinear")[0].numpy()
    assert np.abs(cu.upsample_ab(ab, height, width) - expected).max() < 1e-3


def test_bilinear_weights_rows_sum_to_one_and_keep_a_constant():
    weights = cu.bilinear_weights(37, 64)
    assert weights.shape == (37, 64)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    assert ((weights > 0).sum(axis=1) <= 2).all()  # bilinear: at most two neighbours


# ---------------------------------------------------------------------------------------------
# The tiled kernel against scikit-image
# ---------------------------------------------------------------------------------------------
def _photo_tiles(photo):
    """A real photo stretched over several tiles in both directions (tile seams included)."""
    height, width = cu.TILE_ROWS * 2 + 45, cu.TILE_COLS + 77
    return np.asarray(Image.fromarray(photo).resize((width, height), Image.Resampling.BILINEAR))


def test_render_matches_skimage_lab2rgb_within_one_level(photo):
    rgb = _photo_tiles(photo)
    l_full = cu.image_l(rgb)
    ab_small = np.random.default_rng(1).uniform(-20, 20, (64, 64, 2)).astype(np.float32)
    output = cu.render(cu.as_pixels(rgb), ab_small)
    lab = np.concatenate([l_full[:, :, None], cu.upsample_ab(ab_small, *l_full.shape)], axis=2)
    reference_float = lab2rgb(lab.astype(np.float64))
    in_gamut = np.all((reference_float > 1e-6) & (reference_float < 1 - 1e-6), axis=2)
    reference = (np.clip(reference_float, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert in_gamut.mean() > 0.9
    diff = np.abs(output.astype(int) - reference)[in_gamut]
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_out_of_gamut_colours_keep_l_and_hue(photo):
    # ab_norm 0.9 / -0.9 = (99, -99): far outside sRGB for most L. Clipping each channel, as
    # lab2rgb does, would change L by several units; desaturating keeps it.
    rgb = photo[:200, :300]
    output = cu.colorize_image(ConstantAbGenerator(0.9, -0.9), rgb)
    assert _max_dl(output, cu.image_l(rgb)) < 0.6
    lab = np.dstack([cu.image_l(rgb), np.full(rgb.shape[:2], 99.0), np.full(rgb.shape[:2], -99.0)])
    clipped = (np.clip(lab2rgb(lab), 0, 1) * 255).astype(np.uint8)
    assert _max_dl(clipped, cu.image_l(rgb)) > 3  # the problem being avoided is real here
    # the hue stays that of (a, b) = (+, -): purple-magenta, where the output has colour
    lab_out = rgb2lab(output)
    coloured = np.hypot(lab_out[..., 1], lab_out[..., 2]) > 5
    assert coloured.mean() > 0.5
    assert (lab_out[..., 1][coloured] > 0).all() and (lab_out[..., 2][coloured] < 0).all()


# ---------------------------------------------------------------------------------------------
# colorize_image: size, L, input kinds
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("height,width", [(1, 1), (2, 3), (63, 1100), (300, 201)])
def test_output_has_the_input_size_and_l(tiny_generator, photo, height, width):
    grey = np.asarray(Image.fromarray(photo).convert("L").resize((width, height)))
    output = cu.colorize_image(tiny_generator, grey)
    assert output.shape == (height, width, 3) and output.dtype == np.uint8
    assert _max_dl(output, cu.grey_to_l(grey)) < 0.6


def test_colour_input_is_reduced_to_its_l(tiny_generator, photo):
    rgb = photo[:150, :220]
    output = cu.colorize_image(tiny_generator, rgb)
    assert _max_dl(output, rgb2lab(rgb)[:, :, 0]) < 0.6
    # only L is used: the same photo given as its grey version gives the same colours
    same_l_grey = cu.grayscale_baseline(rgb)
    np.testing.assert_allclose(cu.colorize_image(tiny_generator, same_l_grey), output, atol=2)


def test_colour_from_the_model_reaches_the_output(photo):
    output = cu.colorize_image(ConstantAbGenerator(0.2, 0.3), photo[:100, :100])
    lab = rgb2lab(output)
    mid_tones = (lab[..., 0] > 30) & (lab[..., 0] < 80)  # away from the gamut's tips
    assert np.median(lab[..., 1][mid_tones]) == pytest.approx(22, abs=1.5)
    assert np.median(lab[..., 2][mid_tones]) == pytest.approx(33, abs=1.5)


def test_path_uint16_float_rgba_and_single_channel_inputs_agree(tmp_path, photo):
    generator = ConstantAbGenerator(0.1, -0.15)
    grey8 = np.asarray(Image.fromarray(photo[:90, :130]).convert("L"))
    expected = cu.colorize_image(generator, grey8)
    path = tmp_path / "grey.png"
    Image.fromarray(grey8).save(path)
    rgba = np.dstack([grey8, grey8, grey8, np.full_like(grey8, 255)])
    variants = {"path": path, "uint16": grey8.astype(np.uint16) * 257,
                "float": grey8.astype(np.float32) / 255, "rgba": rgba, "hw1": grey8[:, :, None],
                "grey as rgb": np.repeat(grey8[:, :, None], 3, axis=2)}
    for name, image in variants.items():
        output = cu.colorize_image(generator, image)
        assert np.abs(output.astype(int) - expected).max() <= 1, name


def test_as_pixels_keeps_grey_as_one_channel_and_refuses_empty_images(photo):
    assert cu.as_pixels(np.repeat(photo[:5, :5, :1], 3, axis=2)).shape == (5, 5)
    assert cu.as_pixels(photo[:5, :5]).shape == (5, 5, 3)
    assert cu.as_pixels(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4)
    with pytest.raises(ValueError, match="shape"):
        cu.as_pixels(np.zeros((0, 5, 3), np.uint8))


def test_model_input_of_a_uniform_grey_is_its_normalised_l():
    grey = np.full((37, 90), 140, np.uint8)
    model_in = cu.model_input(grey, 64)
    assert model_in.shape == (1, 64, 64, 1) and model_in.dtype == np.float32
    np.testing.assert_allclose(model_in, cu.normalize_l(cu.grey_to_l(np.uint8(140))), atol=1e-5)


def test_grayscale_baseline_of_a_grey_image_is_the_image(photo):
    grey = np.asarray(Image.fromarray(_photo_tiles(photo)).convert("L"))
    baseline = cu.grayscale_baseline(grey)
    assert np.abs(baseline.astype(int) - grey[:, :, None]).max() <= 1


# ---------------------------------------------------------------------------------------------
# Batches and memory
# ---------------------------------------------------------------------------------------------
def test_batches_of_different_sizes_give_the_single_image_results(tiny_generator, photo):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    images = [photo[:50, :80], photo[100:301, 10:45], grey]
    outputs = cu.colorize_images(tiny_generator, images, batch_size=2)
    assert [o.shape[:2] for o in outputs] == [im.shape[:2] for im in images]
    for image, output in zip(images, outputs):
        single = cu.colorize_image(tiny_generator, image)
        assert np.abs(single.astype(int) - output).max() <= 1


def test_working_memory_is_a_few_tiles_not_the_image():
    # 6 MP grey: a float32 L, ab or LAB of the whole image would be 24-72 MB of numpy memory on
    # top of the 18 MB output; tiling keeps the extra to a few MB.
    grey = np.random.default_rng(0).integers(0, 256, (2000, 3000), dtype=np.uint8)
    ab_small = np.zeros((64, 64, 2), np.float32)
    cu.render(grey[:10, :10], ab_small)  # compile outside the measurement
    tracemalloc.start()
    try:
        output = cu.render(grey, ab_small)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    extra_mb = (peak - output.nbytes) / 2 ** 20
    assert extra_mb < 12, f"{extra_mb:.1f} MB beyond the output"


# ---------------------------------------------------------------------------------------------
# Shipped models
# ---------------------------------------------------------------------------------------------
def test_default_model_prefers_gan_and_missing_models_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "MODELS_DIR", tmp_path)
    assert cu.shipped_models() == [] and cu.default_model_name() == "mse"
    with pytest.raises(cu.ModelNotFoundError, match="not shipped yet"):
        cu.load_model("gan")
    generator = cu.build_generator(64, width=8, max_width=16)
    for name in ("mse", "gan"):
        cu.save_generator(generator, tmp_path / f"{name}_generator", width=8, max_width=16)
    assert cu.shipped_models() == ["mse", "gan"] and cu.default_model_name() == "gan"
    loaded = cu.load_model("gan")
    grey = np.full((20, 30), 100, np.uint8)
    np.testing.assert_array_equal(cu.colorize_image(loaded, grey),
                                  cu.colorize_image(generator, grey))
    assert cu.load_model(tmp_path / "mse_generator.weights.h5").input_shape == (None, 64, 64, 1)
    with pytest.raises(cu.ModelNotFoundError, match="not a saved generator"):
        cu.load_model(tmp_path / "nothing_here")
