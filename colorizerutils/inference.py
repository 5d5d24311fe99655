"""Inference at full resolution: the model sees a small L, the output keeps every original pixel's L.

The generator works at its training size (64x64). Its ab prediction is smooth, so it is upsampled
to the original size and joined with the original, full-resolution L: the output has the input's
size and detail, only the colour comes from the model (as in richzhang/colorization's
postprocess_tens).

Speed and memory. A 12 MP scan is rendered in tiles of TILE_ROWS x TILE_COLS pixels by one fused,
XLA-compiled kernel: bilinear upsampling of ab (two small matrix products), LAB -> sRGB and the
8-bit rounding run in one pass over the tile, in float32. Working memory is a few tiles whatever
the image size; the output is the only full-size array besides the input. Tiles have one fixed
shape, so the kernel is compiled once per process (1-3 s on a busy 2-core CPU), not once per
image size. Colours outside sRGB are desaturated towards the grey of the same L instead of being
clipped channel by channel, so the output's L is the input's up to 8-bit rounding.

Edge-aware upsampling (a fast guided filter steered by the full-resolution L) was measured and not
kept. On the 110 embedded photos, with the true ab squeezed to 64x64 and brought back, its best
setting (guide at 256 px, radius 1) gave a mean ab MSE of 13.05 against 13.09 for bilinear, better
on only a third of the photos, and the other settings were worse (up to 15.3);
`python bench/bench_colorize.py --oracle` reruns the comparison.
"""
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from .colour import (_RGB_FROM_XYZ, _WHITE_D65, _lab_f_inv, grey_to_l,
                     normalize_l, rgb_to_luminance_l, unnormalize_ab)
from .data import REPO_ROOT, read_image, to_uint8
from .models import load_generator

__all__ = ["TILE_ROWS", "TILE_COLS", "MODELS_DIR", "SHIPPED_MODELS", "DEFAULT_IMAGE_MODELS",
           "ModelNotFoundError", "shipped_model_path", "shipped_models", "default_model_name",
           "load_model", "as_pixels", "image_l", "model_input", "predict_ab", "bilinear_weights",
           "upsample_ab", "render", "colorize_image", "colorize_images",
           "iter_colorize", "grayscale_baseline", "side_by_side"]

# =============================================================================================
# Shipped models
# =============================================================================================
MODELS_DIR = REPO_ROOT / "resources" / "models"
SHIPPED_MODELS = ("mse", "gan", "video")  # resources/models/{name}_generator.json + .weights.h5
# The default for still images is the first of these that is shipped. The GAN is expected to give
# the livelier colours; the report (Colorizer_Analysis) is where this choice is confirmed.
DEFAULT_IMAGE_MODELS = ("gan", "mse")


class ModelNotFoundError(FileNotFoundError):
    """A model named on the command line or in code is neither shipped nor a saved generator."""


def shipped_model_path(name):
    """The stem of a shipped model's files: resources/models/{name}_generator."""
    return MODELS_DIR / f"{name}_generator"


def shipped_models(names=SHIPPED_MODELS):
    """The names among `names` whose .json and .weights.h5 are both in resources/models."""
    return [n for n in names
            if shipped_model_path(n).with_suffix(".json").is_file()
            and shipped_model_path(n).with_name(f"{n}_generator.weights.h5").is_file()]


def default_model_name():
    """The best shipped image model (see DEFAULT_IMAGE_MODELS); 'mse' when none is shipped yet."""
    present = shipped_models(DEFAULT_IMAGE_MODELS)
    return present[0] if present else DEFAULT_IMAGE_MODELS[-1]


def load_model(name_or_path):
    """Load a shipped generator by name (mse, gan, video) or a saved one by path (.json,
    .weights.h5 or their stem). Raises ModelNotFoundError with what to do when it is missing."""
    text = str(name_or_path)
    if text in SHIPPED_MODELS:
        stem = shipped_model_path(text)
        if text not in shipped_models([text]):
            raise ModelNotFoundError(
                f"model {text!r} is not shipped yet: {stem}.json and {stem.name}.weights.h5 are "
                f"not both in {MODELS_DIR}. Train it with its notebook, or give a saved "
                "generator's path instead of a name.")
        return load_generator(stem)
    try:
        return load_generator(Path(text))
    except FileNotFoundError as err:
        raise ModelNotFoundError(f"model {text!r}: not one of {', '.join(SHIPPED_MODELS)} and "
                                 f"not a saved generator ({err})") from None


# =============================================================================================
# The input: grey or colour pixels, and its L
# =============================================================================================
def as_pixels(image):
    """A path or numpy image -> the pixels inference works from, without a full-size copy:
    (H, W) grey or (H, W, 3) RGB; uint8, uint16 or float32 in [0, 1].

    Grey stored as RGB (R == G == B, what read_image gives for a grey file) becomes one channel,
    so its L comes from a 256-entry table. Alpha is dropped (read_image composites it on white).
    """
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = read_image(image)
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = image[:, :, :3]
        if (np.array_equal(image[:, :, 0], image[:, :, 1])
                and np.array_equal(image[:, :, 1], image[:, :, 2])):
            image = image[:, :, 0]
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected a grey (H, W) or RGB (H, W, 3) image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        image = np.clip(image.astype(np.float32, copy=False), 0.0, 1.0)
    return image


def _l_rows(pixels, top, bottom):
    """L in [0, 100] (float32) of rows top:bottom of `pixels` (from as_pixels)."""
    rows = pixels[top:bottom]
    return grey_to_l(rows) if rows.ndim == 2 else rgb_to_luminance_l(rows)


def image_l(image):
    """Full-resolution L (H, W) float32 in [0, 100] of a grey/RGB numpy image or a path."""
    pixels = as_pixels(image)
    return _l_rows(pixels, 0, pixels.shape[0])


def _resize_pixels(pixels, size):
    """Antialiased resize of grey/RGB pixels to size x size with Pillow (box-reduce first for
    speed). uint8 stays uint8; uint16 and float become float32 in [0, 1], a plane at a time."""
    def resize(im):
        return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0))
    if pixels.dtype == np.uint8:
        return resize(Image.fromarray(pixels))
    scale = np.float32(65535.0 if pixels.dtype == np.uint16 else 1.0)
    planes = pixels[:, :, None] if pixels.ndim == 2 else pixels
    small = np.stack([resize(Image.fromarray(planes[:, :, c].astype(np.float32) / scale))
                      for c in range(planes.shape[2])], axis=2)
    small = np.clip(small, 0.0, 1.0)
    return small[:, :, 0] if pixels.ndim == 2 else small


def model_input(image, image_size):
    """A path or image -> the generator's input (1, S, S, 1): l_norm in [-1, 1].

    The whole frame is squashed to a square (not cropped), so every pixel gets a prediction; the
    aspect ratio is restored when ab is upsampled. The pixels are resized before L is taken, as
    the training crops were (resize RGB, then LAB).
    """
    small = _resize_pixels(as_pixels(image), image_size)
    l_small = grey_to_l(small) if small.ndim == 2 else rgb_to_luminance_l(small)
    return normalize_l(l_small)[None, :, :, None].astype(np.float32)


def predict_ab(generator, l_inputs):
    """(B, S, S, 1) l_norm -> (B, S, S, 2) ab in LAB units (numpy float32)."""
    return unnormalize_ab(generator(l_inputs, training=False)).numpy().astype(np.float32)


# =============================================================================================
# Upsampling ab and LAB -> sRGB, fused in one kernel per tile
# =============================================================================================
TILE_ROWS, TILE_COLS = 128, 1024  # 128k pixels a tile: ~3 MB of float32 work, little padding waste

_M = (_RGB_FROM_XYZ * _WHITE_D65[None, :]).astype(np.float32)  # linear RGB from (fx^3, fy^3, fz^3)


def bilinear_weights(out_size, in_size):
    """(out_size, in_size) float32 matrix W with W @ x = bilinear resize of x along one axis.

    The same sampling as tf.image.resize(method="bilinear") (half-pixel centres, edges clamped), so
    upsampling ab is two small matrix products: ab_full[..., c] = Wy @ ab_small[..., c] @ Wx.T.
    """
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
    src = np.clip(src, 0.0, in_size - 1)
    low = np.floor(src).astype(np.int64)
    high = np.minimum(low + 1, in_size - 1)
    frac = src - low
    weights = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    np.add.at(weights, (rows, low), 1.0 - frac)
    np.add.at(weights, (rows, high), frac)
    return weights.astype(np.float32)


def linear_in_gamut(fy, y, a, b):
    """LAB -> linear-light sRGB (three tensors), in TensorFlow ops that XLA fuses.

    fy = f(Y) = (L + 16) / 116 and y = Y (linear luminance) describe the lightness; a, b the colour.
    The LAB -> XYZ -> linear RGB steps of colour.lab_to_rgb, written out; unlike lab_to_rgb,
    colours outside sRGB are desaturated rather than clipped, so L is exact: each is mixed with the
    grey of the same luminance Y just enough to fit. Y, hence L, is kept (the Y row of the RGB ->
    XYZ matrix sums to 1) and so is the hue; only the chroma shrinks.
    """
    fx = fy + a / 500.0
    fz = tf.maximum(fy - b / 200.0, 0.0)  # as scikit-image: negative z clipped
    x, z = _lab_f_inv(fx), _lab_f_inv(fz)
    linear = [row[0] * x + row[1] * y + row[2] * z for row in _M]  # 3 x (R, C)
    high = tf.maximum(tf.maximum(linear[0], linear[1]), linear[2])
    low = tf.minimum(tf.minimum(linear[0], linear[1]), linear[2])
    t_high = tf.where(high > 1.0, (1.0 - y) / tf.maximum(high - y, 1e-12), 1.0)
    t_low = tf.where(low < 0.0, y / tf.maximum(y - low, 1e-12), 1.0)
    t = tf.clip_by_value(tf.minimum(t_high, t_low), 0.0, 1.0)
    return [y + t * (lin - y) for lin in linear]


def srgb_encode(linear):
    """Linear light -> sRGB in [0, 1] (float), with exp/log for the power, which XLA vectorises."""
    safe = tf.maximum(linear, 0.0031308)  # keeps log() finite on the unused branch
    srgb = tf.where(linear > 0.0031308,
                    1.055 * tf.exp(tf.math.log(safe) * (1.0 / 2.4)) - 0.055, 12.92 * linear)
    return tf.clip_by_value(srgb, 0.0, 1.0)


def upsample_tile(ab_small, wy, wx):
    """ab_small (S, S, 2), Wy (R, S), Wx (S, C) -> a, b (R, C): bilinear, as two matmuls."""
    ab_rows = tf.tensordot(wy, ab_small, axes=[[1], [0]])  # (R, S, 2)
    return ab_rows[:, :, 0] @ wx, ab_rows[:, :, 1] @ wx


def _tile_kernel(l_tile, ab_small, wy, wx):
    """One tile: L (R, C), ab_small (S, S, 2), Wy (R, S), Wx (S, C) -> sRGB uint8 (R, C, 3)."""
    a, b = upsample_tile(ab_small, wy, wx)
    fy = (l_tile + 16.0) / 116.0
    linear = linear_in_gamut(fy, _lab_f_inv(fy), a, b)
    return tf.stack([tf.cast(srgb_encode(lin) * 255.0 + 0.5, tf.uint8) for lin in linear],
                    axis=-1)


# autograph=False: plain Python loops over constants, nothing to convert (and no source reading).
class FusedKernel:
    """A tf.function compiled with XLA (one fused loop); if this TensorFlow cannot compile it,
    the same graph without XLA."""

    def __init__(self, function):
        self.kernels = {"xla": tf.function(function, jit_compile=True, autograph=False),
                        "graph": tf.function(function, autograph=False)}
        self.kind = "xla"

    def __call__(self, *args):
        if self.kind == "xla":
            try:
                return self.kernels["xla"](*args)
            except tf.errors.OpError:  # no XLA here; a real runtime error will recur just below
                self.kind = "graph"
        return self.kernels["graph"](*args)


_run_kernel = FusedKernel(_tile_kernel)


def upsample_ab(ab_small, height, width):
    """(S, S, 2) ab -> (height, width, 2) float32, bilinear (for analysis; render() never
    materialises the full-size ab)."""
    wy, wx = bilinear_weights(height, ab_small.shape[0]), bilinear_weights(width, ab_small.shape[1])
    return np.stack([wy @ ab_small[:, :, c] @ wx.T for c in range(2)], axis=2)


def tile_plan(height, width, small_shape):
    """How a (height, width) image is cut into TILE_ROWS x TILE_COLS tiles (the last ones padded,
    so that every kernel call has one shape and XLA compiles once), with each tile's bilinear
    weights from the small (S, S) grid: a list of (top, rows, left, cols, wy_tile, wx_tile)."""
    n_rows, n_cols = -(-height // TILE_ROWS), -(-width // TILE_COLS)
    wy = np.zeros((n_rows * TILE_ROWS, small_shape[0]), np.float32)
    wy[:height] = bilinear_weights(height, small_shape[0])
    wx = np.zeros((small_shape[1], n_cols * TILE_COLS), np.float32)
    wx[:, :width] = bilinear_weights(width, small_shape[1]).T
    wx_tiles = {left: np.ascontiguousarray(wx[:, left:left + TILE_COLS])
                for left in range(0, width, TILE_COLS)}
    return [(top, min(TILE_ROWS, height - top), left, min(TILE_COLS, width - left),
             wy[top:top + TILE_ROWS], wx_tiles[left])
            for top in range(0, height, TILE_ROWS) for left in range(0, width, TILE_COLS)]


def render(pixels, ab_small):
    """Full-resolution L of `pixels` (from as_pixels) + small ab (S, S, 2) -> uint8 RGB (H, W, 3).

    Tile by tile: the only full-size array allocated is the output.
    """
    height, width = pixels.shape[:2]
    ab_small = np.asarray(ab_small, np.float32)
    out = np.empty((height, width, 3), np.uint8)
    band = np.zeros((TILE_ROWS, -(-width // TILE_COLS) * TILE_COLS), np.float32)  # padding: L = 0
    band_top = None
    for top, rows, left, cols, wy_tile, wx_tile in tile_plan(height, width, ab_small.shape):
        if top != band_top:
            band[:rows, :width] = _l_rows(pixels, top, top + rows)
            band_top = top
        rgb = _run_kernel(band[:, left:left + TILE_COLS], ab_small, wy_tile, wx_tile)
        out[top:top + rows, left:left + cols] = rgb.numpy()[:rows, :cols]
    return out


# =============================================================================================
# Colorizing
# =============================================================================================
def colorize_image(generator, image, image_size=None):
    """Colorize one image at full resolution. Returns uint8 RGB of exactly the input's size.

    `image`: a path or a numpy image (grey (H, W), RGB or RGBA; uint8, uint16 or float in [0, 1]).
    Colour input is reduced to its L first. The result's L equals the input's L (up to 8-bit
    rounding of the output), so no detail is lost.
    """
    return colorize_images(generator, [image], image_size)[0]


def colorize_images(generator, images, image_size=None, batch_size=8):
    """Colorize a list of images of any sizes (paths or arrays); the generator sees `batch_size`
    of them at a time. Memory: the pixels of one batch plus the outputs returned."""
    return list(iter_colorize(generator, images, image_size, batch_size))


def iter_colorize(generator, images, image_size=None, batch_size=8):
    """Like colorize_images, but yields each output in order, so that only one batch of inputs
    and one output are held at a time."""
    image_size = image_size or generator.input_shape[1]
    images = list(images)
    for start in range(0, len(images), batch_size):
        batch = [as_pixels(im) for im in images[start:start + batch_size]]
        inputs = np.concatenate([model_input(p, image_size) for p in batch], axis=0)
        for pixels, ab_small in zip(batch, predict_ab(generator, inputs)):
            yield render(pixels, ab_small)


_NO_COLOUR = np.zeros((64, 64, 2), np.float32)  # the usual model size: no extra kernel compile


def grayscale_baseline(image):
    """The ab = 0 baseline: the input's L with no colour, as uint8 RGB."""
    return render(as_pixels(image), _NO_COLOUR)


def side_by_side(*images, gap=4):
    """Join images of the same height left to right with a white gap (uint8)."""
    images = [to_uint8(np.repeat(im[:, :, None], 3, 2) if im.ndim == 2 else im) for im in images]
    height = images[0].shape[0]
    parts = []
    for i, im in enumerate(images):
        if im.shape[0] != height:
            w = round(im.shape[1] * height / im.shape[0])
            im = np.asarray(Image.fromarray(im).resize((w, height), Image.Resampling.LANCZOS))
        parts.append(im)
        if i < len(images) - 1:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)
