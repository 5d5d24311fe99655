"""Inference at full resolution: the model sees a small L, the output keeps every original pixel's L.

The generator works at its training size (64x64). Its ab prediction is smooth, so it is upsampled
to the original size and joined with the original, full-resolution L: the output has the input's
size and detail, only the colour comes from the model (as in richzhang/colorization's
postprocess_tens).
"""
import numpy as np
import tensorflow as tf
from PIL import Image

from .colour import lab_to_rgb, normalize_l, rgb_to_luminance_l, unnormalize_ab
from .data import read_image, to_uint8

_ROWS_PER_BLOCK = 512  # rows converted at a time: bounds the float32 working memory


def image_l(image):
    """Full-resolution L (H, W) float32 in [0, 100] of an RGB/grey numpy image or a path."""
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = read_image(image)
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return rgb_to_luminance_l(image[:, :, :3])


def model_input(l_full, image_size):
    """Full-resolution L -> the generator's input (1, S, S, 1) l_norm, resized with antialiasing.

    The whole frame is squashed to a square (not cropped), so every pixel gets a prediction; the
    aspect ratio is restored when ab is upsampled.
    """
    small = tf.image.resize(l_full[None, :, :, None], [image_size, image_size],
                            method="bilinear", antialias=True)
    return normalize_l(small)


def predict_ab(generator, l_inputs):
    """(B, S, S, 1) l_norm -> (B, S, S, 2) ab in LAB units."""
    return unnormalize_ab(generator(l_inputs, training=False)).numpy()


def upsample_ab(ab_small, height, width):
    """(S, S, 2) ab -> (height, width, 2) float32, bilinear."""
    return tf.image.resize(ab_small[None], [height, width], method="bilinear")[0].numpy()


def lab_to_rgb_uint8(l_full, ab_full):
    """Full-resolution L (H, W) and ab (H, W, 2) -> uint8 RGB, converted a block of rows at a time."""
    height, width = l_full.shape
    out = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, _ROWS_PER_BLOCK):
        rows = slice(top, top + _ROWS_PER_BLOCK)
        lab = np.concatenate([l_full[rows, :, None], ab_full[rows]], axis=2)
        rgb = lab_to_rgb(lab).numpy()
        out[rows] = (rgb * 255.0 + 0.5).astype(np.uint8)
    return out


def colorize_image(generator, image, image_size=None):
    """Colorize one image at full resolution. Returns uint8 RGB of exactly the input's size.

    `image`: a path or a numpy image (grey (H, W), RGB or RGBA; uint8, uint16 or float in [0, 1]).
    Colour input is reduced to its L first. The result's L equals the input's L (up to 8-bit
    rounding of the output), so no detail is lost.
    """
    image_size = image_size or generator.input_shape[1]
    l_full = image_l(image)
    ab_small = predict_ab(generator, model_input(l_full, image_size))[0]
    return lab_to_rgb_uint8(l_full, upsample_ab(ab_small, *l_full.shape))


def colorize_images(generator, images, image_size=None, batch_size=16):
    """Colorize a list of images of any sizes; the generator runs on batches of them."""
    image_size = image_size or generator.input_shape[1]
    outputs = []
    for start in range(0, len(images), batch_size):
        chunk = [image_l(im) for im in images[start:start + batch_size]]
        inputs = tf.concat([model_input(l, image_size) for l in chunk], axis=0)
        ab_small = predict_ab(generator, inputs)
        outputs += [lab_to_rgb_uint8(l, upsample_ab(ab, *l.shape)) for l, ab in zip(chunk, ab_small)]
    return outputs


def grayscale_baseline(image):
    """The ab = 0 baseline: the input's L with no colour, as uint8 RGB."""
    l_full = image_l(image)
    return lab_to_rgb_uint8(l_full, np.zeros(l_full.shape + (2,), np.float32))


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
