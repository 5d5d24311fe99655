"""Image metrics on known answers, and the architecture figures drawn from the real models."""
import math

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.color import lab2rgb, rgb2lab  # noqa: E402

import colorizerutils as cu  # noqa: E402
from colorizerutils import figures, metrics  # noqa: E402
from conftest import ROOT  # noqa: E402

PHOTO = ROOT / "resources" / "data" / "photos" / "lomiri__Dragonfly_by_Bolly.jpg"  # 576x768


def _lab_image(lab):
    """LAB (H, W, 3) -> float64 sRGB in [0, 1], checked to be inside the gamut (not clipped)."""
    rgb = lab2rgb(lab)
    assert np.abs(rgb2lab(rgb) - lab).max() < 1e-6, "test colour outside the sRGB gamut"
    return rgb


# ---------------------------------------------------------------------------------------------
# PSNR and SSIM
def test_identical_images_score_infinite_psnr_and_ssim_one():
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert metrics.psnr(image, image) == math.inf
    assert metrics.ssim(image, image.copy()) == pytest.approx(1.0)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_uniform_shift_of_k_levels_gives_the_textbook_psnr(k):
    image = np.random.default_rng(k).integers(20, 230, (30, 40, 3), dtype=np.uint8)
    shifted = image + np.uint8(k)  # no overflow: values stay below 255
    assert metrics.psnr(image, shifted) == pytest.approx(20 * math.log10(255 / k), abs=1e-9)
    assert metrics.ssim(image, shifted) < 1.0


def test_psnr_and_ssim_refuse_images_of_different_sizes():
    with pytest.raises(ValueError, match=r"\(10, 12, 3\).*\(10, 10, 3\)"):
        metrics.psnr(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12, 3), np.uint8))


# ---------------------------------------------------------------------------------------------
# Colourfulness
def test_grey_image_has_zero_colourfulness():
    grey = np.random.default_rng(1).integers(0, 256, (300, 20), dtype=np.uint8)
    assert metrics.colourfulness(np.repeat(grey[:, :, None], 3, axis=2)) == 0.0


def test_two_colour_image_matches_a_hand_computation():
    # Half pure red (255, 0, 0), half pure blue (0, 0, 255):
    #   red:  rg = 255, yb = 127.5;  blue: rg = 0, yb = -255
    #   mean_rg = 127.5, std_rg = 127.5;  mean_yb = -63.75, std_yb = 191.25
    #   M = sqrt(127.5^2 + 191.25^2) + 0.3 sqrt(127.5^2 + 63.75^2) = 229.85 + 42.76 = 272.62
    image = np.zeros((300, 10, 3), np.uint8)  # taller than a block of rows
    image[:150, :, 0] = 255
    image[150:, :, 2] = 255
    expected = math.sqrt(127.5 ** 2 + 191.25 ** 2) + 0.3 * math.sqrt(127.5 ** 2 + 63.75 ** 2)
    assert metrics.colourfulness(image) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(272.62, abs=0.01)
    # the same image as uint16 and as float gives the same value (all on the 0-255 scale)
    assert metrics.colourfulness(image.astype(np.uint16) * 257) == pytest.approx(expected)
    assert metrics.colourfulness(image / 255.0) == pytest.approx(expected, rel=1e-6)


def test_colourfulness_in_blocks_equals_the_formula_on_the_whole_image():
    image = np.random.default_rng(2).integers(0, 256, (700, 30, 3), dtype=np.uint8)
    rgb = image.astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    expected = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    assert metrics.colourfulness(image) == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------------------------------------
# ab accuracy (Zhang et al.'s AuC)
def test_identical_images_have_auc_one():
    image = np.asarray(Image.open(PHOTO).convert("RGB"))[:100, :120]
    result = metrics.ab_accuracy(image, image)
    assert result["auc"] == 1.0 and result["auc_rebalanced"] == 1.0
    assert np.array_equal(result["thresholds"], np.arange(151))
    assert np.all(result["curve"] == 1.0)


def test_uniform_ab_shift_gives_a_step_curve_and_auc_one_minus_d_over_150():
    rng = np.random.default_rng(3)
    d = 20.5  # between two integer thresholds, so the step is unambiguous
    lab = np.stack([rng.uniform(45, 70, (300, 16)), rng.uniform(-10, 10, (300, 16)),
                    rng.uniform(-10, 10, (300, 16))], axis=-1)
    shifted = lab.copy()
    shifted[..., 1] += d * 0.6  # a shift of length d in the ab plane (0.6^2 + 0.8^2 = 1)
    shifted[..., 2] += d * 0.8
    result = metrics.ab_accuracy(_lab_image(lab), _lab_image(shifted))
    curve = result["curve"]
    assert np.all(curve[:21] == 0.0) and np.all(curve[21:] == 1.0)  # 0 below d, 1 at or above
    assert result["auc"] == pytest.approx(1 - d / 150, abs=1e-5)


def test_auc_is_the_pixel_average_and_rebalancing_weighs_rare_colours_up():
    # 270 rows of a near-grey colour predicted exactly, 30 rows of a saturated colour off by d.
    d = 30.5  # between two integer thresholds
    lab = np.zeros((300, 10, 3))
    lab[..., 0] = 60
    lab[270:, :, 1:] = [30, -20]
    output = lab.copy()
    output[270:, :, 1] += d
    result = metrics.ab_accuracy(_lab_image(lab), _lab_image(output))
    assert result["curve"][30] == pytest.approx(0.9) and result["curve"][31] == pytest.approx(1.0)
    assert result["auc"] == pytest.approx(0.9 + 0.1 * (1 - d / 150), abs=1e-5)
    # two colour classes, each counting half
    assert result["auc_rebalanced"] == pytest.approx(0.5 + 0.5 * (1 - d / 150), abs=1e-5)


def test_grayscale_baseline_on_a_photo_matches_a_whole_image_computation():
    image = cu.read_image(PHOTO)[:300, :240]  # 300 rows: two blocks of rows
    grey = cu.grayscale_baseline(image)
    result = metrics.image_metrics(image, grey, with_curve=True)
    error = np.linalg.norm(rgb2lab(grey)[..., 1:] - rgb2lab(image)[..., 1:], axis=-1)
    assert result["auc"] == pytest.approx(np.mean(np.clip(1 - error / 150, 0, 1)), abs=1e-4)
    assert result["ab_curve"][10] == pytest.approx(np.mean(error <= 10), abs=1e-3)
    assert 0.5 < result["auc"] < 1.0
    assert result["colourfulness_output"] < 1.0 < result["colourfulness_original"]
    assert result["colourfulness_diff"] == pytest.approx(
        result["colourfulness_output"] - result["colourfulness_original"])
    assert 10 < result["psnr"] < 60 and 0 < result["ssim"] < 1
    assert set(result) == set(metrics.METRIC_KEYS) | {"ab_curve"}


# ---------------------------------------------------------------------------------------------
# The table over models, always with the grayscale baseline
def test_compare_models_adds_the_grayscale_row_and_averages(tmp_path):
    photo = cu.read_image(PHOTO)
    originals = [photo[:96, :128], photo[200:296, 300:428]]
    path = tmp_path / "second.png"
    Image.fromarray(originals[1]).save(path)
    rows = metrics.compare_models([originals[0], path], {"perfect": originals})
    assert [r["model"] for r in rows] == ["grayscale", "perfect"]
    grey, perfect = rows
    assert perfect["n_images"] == 2 and perfect["psnr"] == math.inf and perfect["auc"] == 1.0
    assert perfect["colourfulness_diff"] == 0.0
    direct = [metrics.image_metrics(o, cu.grayscale_baseline(o)) for o in originals]
    for key in metrics.METRIC_KEYS:
        assert grey[key] == pytest.approx(np.mean([m[key] for m in direct]))
    assert grey["ab_curve"].shape == (151,)
    table = metrics.format_table(rows)
    assert "| grayscale | 2 |" in table and "| perfect | 2 | inf |" in table


def test_compare_models_names_the_model_whose_outputs_do_not_match():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="'short'.*1 outputs for 2"):
        metrics.compare_models([image, image], {"short": [image]})


def test_a_shape_mismatch_names_the_file(tmp_path):
    path = tmp_path / "original.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match="original.png"):
        metrics.image_metrics(path, np.zeros((8, 9, 3), np.uint8))


# ---------------------------------------------------------------------------------------------
# Architecture figures, drawn from the real Keras models
def _figure_text(fig):
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts + [ax.title])


def test_generator_figure_names_every_block_and_its_shape_and_draws_the_skips(tmp_path):
    generator = cu.build_generator(64, 8, 16)
    fig = figures.draw_architecture(generator, tmp_path / "generator.svg")
    text = _figure_text(fig)
    for layer in generator.layers:
        assert layer.name in text or layer.__class__.__name__ == "Concatenate"
        assert str(tuple(layer.output.shape[1:])) in text, layer.name
    assert "(1, 1, 16)" in text and "(32, 32, 16)" in text  # bottleneck; last concatenation
    skips = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert len(skips) == 5  # six encoder blocks for 64x64: five skip connections
    assert "down6" in (tmp_path / "generator.svg").read_text()
    assert not list(tmp_path.glob("*.tmp.*"))
    matplotlib.pyplot.close(fig)


def test_discriminator_figure_folds_batchnorm_and_activation_into_the_conv_box(tmp_path):
    discriminator = cu.build_discriminator(64, 8)
    blocks = figures.architecture_blocks(discriminator)
    assert len(blocks) == len(discriminator.layers) - 2  # BN and LeakyReLU drawn with their conv
    assert [b["kind"] for b in blocks[:3]] == ["input", "input", "merge"]
    assert blocks[-1]["name"] == "patch_logits" and blocks[-1]["inputs"] == [blocks[-2]["name"]]
    fig = figures.draw_architecture(discriminator, tmp_path / "discriminator.png")
    text = _figure_text(fig)
    for layer in discriminator.layers:
        assert str(tuple(layer.output.shape[1:])) in text, layer.name
    assert "(6, 6, 1)" in text and "BN, LReLU" in text
    assert not [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    with Image.open(tmp_path / "discriminator.png") as png:
        assert png.width > 1000  # 200 dpi
    matplotlib.pyplot.close(fig)


def test_plot_ab_accuracy_draws_one_curve_per_model():
    rows = [{"model": "grayscale", "auc": 0.8, "ab_curve": np.linspace(0.5, 1, 151)},
            {"model": "gan", "auc": 0.85, "ab_curve": np.linspace(0.6, 1, 151)}]
    ax = figures.plot_ab_accuracy(rows)
    assert [line.get_label() for line in ax.lines] == ["grayscale (AuC 0.800)", "gan (AuC 0.850)"]
    matplotlib.pyplot.close(ax.figure)
