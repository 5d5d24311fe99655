"""Colour: the TensorFlow sRGB (D65) <-> LAB ops agree with scikit-image, clip, differentiate, invert."""
import warnings

import numpy as np
import pytest
import tensorflow as tf
from skimage import color

from colorizerutils import colour

# Every 8-bit corner of the RGB cube: black, white, the primaries and secondaries.
CUBE_CORNERS = np.array([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)], np.float64)


@pytest.fixture(scope="module")
def random_rgb():
    """2,000 random colours in [0, 1] plus the cube corners and every 8-bit grey."""
    rng = np.random.default_rng(0)
    grey = np.repeat(np.arange(256)[:, None] / 255.0, 3, axis=1)
    return np.concatenate([rng.random((2000, 3)), CUBE_CORNERS, grey])


def test_rgb_to_lab_matches_skimage(random_rgb):
    ours = colour.rgb_to_lab(random_rgb).numpy()
    ref = color.rgb2lab(random_rgb)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert np.abs(ours - ref).max(axis=0).max() <= 0.01
    corners = colour.rgb_to_lab(CUBE_CORNERS).numpy()
    assert np.abs(corners - color.rgb2lab(CUBE_CORNERS)).max() <= 0.01
    assert corners[0] == pytest.approx([0, 0, 0], abs=0.01)       # black
    assert corners[-1] == pytest.approx([100, 0, 0], abs=0.01)    # white: L = 100, no colour


def test_lab_to_rgb_matches_skimage_and_round_trips(random_rgb):
    lab = color.rgb2lab(random_rgb)
    assert np.abs(colour.lab_to_rgb(lab).numpy() - color.lab2rgb(lab)).max() < 1e-4
    # Round trip on a 17-level 8-bit grid (4,913 colours, corners included).
    levels = np.arange(0, 256, 16)
    levels[-1] = 255
    grid = np.stack(np.meshgrid(levels, levels, levels), -1).reshape(-1, 3) / 255.0
    back = colour.lab_to_rgb(colour.rgb_to_lab(grid)).numpy()
    assert np.abs(back - grid).max() < 1 / 255


def test_leading_shapes_are_kept():
    batch = np.random.default_rng(1).random((2, 5, 4, 3))
    lab = colour.rgb_to_lab(batch)
    assert lab.shape == (2, 5, 4, 3)
    assert np.abs(lab.numpy() - color.rgb2lab(batch)).max() <= 0.01
    assert colour.lab_to_rgb(lab).shape == (2, 5, 4, 3)


def test_out_of_gamut_lab_is_clipped_never_nan():
    values = np.array(np.meshgrid([-50.0, -1.0, 0.0, 50.0, 100.0, 101.0, 150.0],
                                  [-200.0, -128.0, 0.0, 128.0, 200.0],
                                  [-200.0, -128.0, 0.0, 128.0, 200.0])).reshape(3, -1).T
    rgb = colour.lab_to_rgb(values).numpy()
    assert np.isfinite(rgb).all()
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-image warns about the negative Z it clips
        ref = color.lab2rgb(values)
    assert np.abs(rgb - ref).max() < 1e-4
    assert colour.lab_to_rgb([150.0, 0.0, 0.0]).numpy() == pytest.approx([1, 1, 1])  # L > 100
    assert colour.lab_to_rgb([-50.0, 0.0, 0.0]).numpy() == pytest.approx([0, 0, 0])  # L < 0


def _gradient(fn, x):
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x))
    return tape.gradient(total, x).numpy()


def test_gradients_are_finite_everywhere():
    # 0, 1, the sRGB and LAB thresholds, and colours around them.
    edges = np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0], [0.04045, 0.04045, 0.04045],
                      [0.003, 0.5, 0.999], [1e-7, 1e-7, 1e-7]], np.float32)
    grad = _gradient(colour.rgb_to_lab, edges)
    assert np.isfinite(grad).all()
    lab = np.array([[0, 0, 0], [100, 0, 0], [-20, 200, -200], [150, -200, 200], [8, 0, 0],
                    [50, 0, 0], [0, 0, 0.0001]], np.float32)
    assert np.isfinite(_gradient(colour.lab_to_rgb, lab)).all()
    assert np.isfinite(_gradient(lambda x: colour.l_ab_to_rgb(x[..., :1], x[..., 1:]),
                                 np.clip(lab / 100, -2, 2))).all()


def test_gradient_matches_finite_differences():
    """Inside the gamut the gradient is the real derivative, not just a finite number."""
    point = np.array([0.3, 0.6, 0.2])
    grad = _gradient(lambda x: colour.rgb_to_lab(x)[..., 0], point)  # dL/dRGB
    eps = 1e-3
    numeric = [(color.rgb2lab(point + eps * np.eye(3)[i])[0]
                - color.rgb2lab(point - eps * np.eye(3)[i])[0]) / (2 * eps) for i in range(3)]
    assert grad == pytest.approx(numeric, rel=1e-2)
    lab_point = np.array([60.0, 20.0, -30.0])
    grad = _gradient(lambda x: colour.lab_to_rgb(x)[..., 1], lab_point)  # dG/dLAB
    numeric = [(color.lab2rgb(lab_point + 0.01 * np.eye(3)[i])[1]
                - color.lab2rgb(lab_point - 0.01 * np.eye(3)[i])[1]) / 0.02 for i in range(3)]
    assert grad == pytest.approx(numeric, rel=1e-2, abs=1e-5)


def test_normalisation_constants_and_inverses():
    assert colour.normalize_l(np.array([0.0, 50.0, 100.0])) == pytest.approx([-1, 0, 1])
    assert colour.normalize_ab(np.array([-110.0, 0.0, 110.0])) == pytest.approx([-1, 0, 1])
    values = np.random.default_rng(2).uniform(-150, 150, 1000)
    assert np.allclose(colour.unnormalize_l(colour.normalize_l(values)), values, atol=1e-9)
    assert np.allclose(colour.normalize_l(colour.unnormalize_l(values / 100)), values / 100)
    assert np.allclose(colour.unnormalize_ab(colour.normalize_ab(values)), values, atol=1e-9)
    assert np.allclose(colour.normalize_ab(colour.unnormalize_ab(values / 100)), values / 100)


def test_rgb_to_l_ab_ranges_and_round_trip():
    rgb = np.random.default_rng(3).random((2, 8, 8, 3)).astype(np.float32)
    rgb[0, 0, :3] = CUBE_CORNERS[[0, 7, 4]]  # black, white, red
    l_norm, ab_norm = colour.rgb_to_l_ab(rgb)
    assert l_norm.shape == (2, 8, 8, 1) and ab_norm.shape == (2, 8, 8, 2)
    assert -1.0 - 1e-6 <= l_norm.numpy().min() and l_norm.numpy().max() <= 1.0 + 1e-6
    assert np.abs(ab_norm.numpy()).max() <= 1.0  # sRGB's |a|, |b| stay below 110
    lab = color.rgb2lab(rgb)
    assert np.abs(colour.unnormalize_l(l_norm.numpy())[..., 0] - lab[..., 0]).max() <= 0.01
    back = colour.l_ab_to_rgb(l_norm, ab_norm).numpy()
    assert np.abs(back - rgb).max() < 1 / 255


def test_grey_to_l_matches_skimage():
    grey = np.arange(256, dtype=np.uint8)
    l_table = colour.grey_to_l(grey)
    assert l_table.shape == (256,) and l_table.dtype == np.float32
    assert colour._GREY_L_TABLE.shape == (256,)  # uint8 goes through the 256-entry table
    ref = color.rgb2lab(np.repeat(grey[:, None], 3, axis=1) / 255.0)
    assert np.abs(l_table - ref[:, 0]).max() <= 0.01
    assert np.abs(ref[:, 1:]).max() < 0.01  # grey has no colour, so L alone describes it
    image = np.array([[0, 128], [200, 255]], np.uint8)
    assert colour.grey_to_l(image) == pytest.approx(l_table[image])
    # 16-bit and float grey use the exact formula and agree with skimage too.
    grey16 = np.array([0, 1, 300, 12345, 40000, 65535], np.uint16)
    ref16 = color.rgb2lab(np.repeat(grey16[:, None], 3, axis=1) / 65535.0)[:, 0]
    assert np.abs(colour.grey_to_l(grey16) - ref16).max() <= 0.01
    grey_float = np.linspace(0, 1, 101)
    ref_float = color.rgb2lab(np.repeat(grey_float[:, None], 3, axis=1))[:, 0]
    assert np.abs(colour.grey_to_l(grey_float) - ref_float).max() <= 0.01


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_rgb_to_luminance_l_matches_skimage(dtype):
    # 300 rows: more than one of the function's 256-row blocks.
    rng = np.random.default_rng(4)
    unit = rng.random((300, 7, 3))
    if dtype == np.float32:
        image, as_float = unit.astype(np.float32), unit
    else:
        top = np.iinfo(dtype).max
        image = (unit * top + 0.5).astype(dtype)
        as_float = image / top
    l_channel = colour.rgb_to_luminance_l(image)
    assert l_channel.shape == (300, 7) and l_channel.dtype == np.float32
    assert np.abs(l_channel - color.rgb2lab(as_float)[..., 0]).max() <= 0.01


def test_rgb_to_luminance_l_of_grey_images():
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert colour.rgb_to_luminance_l(grey) == pytest.approx(colour.grey_to_l(grey))
    assert colour.rgb_to_luminance_l(grey[:, :, None]) == pytest.approx(colour.grey_to_l(grey))
    with pytest.raises(ValueError, match="shape"):
        colour.rgb_to_luminance_l(np.zeros((4, 4, 2), np.uint8))
