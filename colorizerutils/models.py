"""Models: the U-Net generator (L -> ab) and the PatchGAN discriminator (L + ab -> patch logits).

Pix2pix-style blocks, sized for 64x64 images and a CPU. Saved models are a Keras weights file plus a
small JSON of the settings needed to rebuild them: loading never executes code from a file.
"""
import json
import math
import os
from pathlib import Path

import keras
from keras import layers

from .colour import AB_NORM, L_CENTER, L_NORM

def _init():
    """pix2pix initialisation, N(0, 0.02): a new initializer for every layer.

    An unseeded Keras initializer draws its seed once, when it is made: one shared instance gives
    every kernel of the same shape the same values, fixed at import whatever set_seed says.
    """
    return keras.initializers.RandomNormal(0.0, 0.02)


def downsample(filters, size=4, apply_batchnorm=True, name=None):
    """Conv (stride 2) -> [BatchNorm] -> LeakyReLU: halves height and width."""
    block = keras.Sequential(name=name)
    block.add(layers.Conv2D(filters, size, strides=2, padding="same", kernel_initializer=_init(),
                            use_bias=not apply_batchnorm))
    if apply_batchnorm:
        # synchronized: under tf.distribute the batch statistics cover the global batch, so two
        # replicas train exactly like one device with the same batch (tests/test_training.py).
        block.add(layers.BatchNormalization(synchronized=True))
    block.add(layers.LeakyReLU(0.2))
    return block


def upsample(filters, size=4, dropout=0.0, name=None):
    """Transposed conv (stride 2) -> BatchNorm -> [Dropout] -> ReLU: doubles height and width."""
    block = keras.Sequential(name=name)
    block.add(layers.Conv2DTranspose(filters, size, strides=2, padding="same",
                                     kernel_initializer=_init(), use_bias=False))
    block.add(layers.BatchNormalization(synchronized=True))
    if dropout > 0:
        block.add(layers.Dropout(dropout))
    block.add(layers.ReLU())
    return block


def build_generator(image_size=64, width=32, max_width=128, dropout=0.5, n_dropout=2):
    """U-Net generator: l_norm (B, S, S, 1) in [-1, 1] -> ab_norm (B, S, S, 2) in [-1, 1] (tanh).

    The encoder halves the image down to 1x1 (six blocks for 64x64), doubling the width from `width`
    up to `max_width`; the decoder mirrors it with skip connections. The `n_dropout` deepest decoder
    blocks use dropout, as in pix2pix, which is the generator's only noise source. The training
    default (TrainConfig: width 32, max_width 128) has 2.6 M parameters, a 10.5 MB weights file.
    """
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    n_down = int(math.log2(image_size))
    widths = [min(width * 2 ** i, max_width) for i in range(n_down)]
    inputs = layers.Input(shape=(image_size, image_size, 1), name="l_norm")
    x = inputs
    skips = []
    for i, filters in enumerate(widths):
        # e.g. 64x64: (B, 32, 32, w) (B, 16, 16, 2w) (B, 8, 8, 4w) ... (B, 1, 1, max_width)
        x = downsample(filters, apply_batchnorm=i > 0, name=f"down{i + 1}")(x)
        skips.append(x)
    skips = reversed(skips[:-1])
    for i, (filters, skip) in enumerate(zip(reversed(widths[:-1]), skips)):
        # (B, 2, 2, .) ... (B, S/2, S/2, w), each concatenated with the encoder's map of that size
        x = upsample(filters, dropout=dropout if i < n_dropout else 0.0, name=f"up{i + 1}")(x)
        x = layers.Concatenate()([x, skip])
    ab_norm = layers.Conv2DTranspose(2, 4, strides=2, padding="same", kernel_initializer=_init(),
                                     activation="tanh", name="ab_norm")(x)  # (B, S, S, 2)
    return keras.Model(inputs, ab_norm, name="generator")


def build_discriminator(image_size=64, width=32):
    """PatchGAN discriminator: (l_norm, ab_norm) -> (B, S/8 - 2, S/8 - 2, 1) real/fake logits.

    For 64x64 input the grid is 6x6: each logit judges one overlapping 70x70-pixel patch (pix2pix's
    "70x70 PatchGAN": the receptive field of three stride-2 and two stride-1 4x4 convolutions,
    4 + 3 * (2 + 4 + 8 + 8)), clipped by the image border.
    """
    l_in = layers.Input(shape=(image_size, image_size, 1), name="l_norm")
    ab_in = layers.Input(shape=(image_size, image_size, 2), name="ab_norm")
    x = layers.Concatenate()([l_in, ab_in])                      # (B, 64, 64, 3)
    x = downsample(width, apply_batchnorm=False, name="d1")(x)   # (B, 32, 32, w)
    x = downsample(width * 2, name="d2")(x)                      # (B, 16, 16, 2w)
    x = downsample(width * 4, name="d3")(x)                      # (B, 8, 8, 4w)
    x = layers.ZeroPadding2D(name="pad1")(x)                     # (B, 10, 10, 4w)
    x = layers.Conv2D(width * 8, 4, kernel_initializer=_init(), use_bias=False,
                      name="conv4")(x)                           # (B, 7, 7, 8w)
    x = layers.BatchNormalization(synchronized=True, name="bn4")(x)
    x = layers.LeakyReLU(0.2, name="lrelu4")(x)
    x = layers.ZeroPadding2D(name="pad2")(x)                     # (B, 9, 9, 8w)
    logits = layers.Conv2D(1, 4, kernel_initializer=_init(), name="patch_logits")(x)  # (B, 6, 6, 1)
    return keras.Model([l_in, ab_in], logits, name="discriminator")


def patch_grid_size(image_size):
    """Side of the discriminator's logit grid for a given input size (6 for 64x64)."""
    return image_size // 8 - 2


# ---------------------------------------------------------------------------------------------
# Saving and loading a generator for inference
GENERATOR_FORMAT = "colorizer-generator/1"


def save_generator(generator, path, **settings):
    """Write `PATH.weights.h5` and `PATH.json` (the settings to rebuild it), each atomically.

    `settings` are the build_generator arguments (image_size, width, max_width, dropout,
    n_dropout) plus anything descriptive (e.g. run, steps); the LAB normalisation is recorded too.
    """
    base = _strip_suffix(Path(path))
    base.parent.mkdir(parents=True, exist_ok=True)
    config = {"format": GENERATOR_FORMAT,
              "normalisation": {"l_center": L_CENTER, "l_norm": L_NORM, "ab_norm": AB_NORM},
              **settings}
    config.setdefault("image_size", generator.input_shape[1])
    weights = base.with_name(base.name + ".weights.h5")
    tmp = base.with_name(base.name + ".tmp.weights.h5")
    generator.save_weights(tmp)
    os.replace(tmp, weights)
    tmp_json = base.with_name(base.name + ".json.tmp")
    tmp_json.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_json, base.with_name(base.name + ".json"))
    return weights


_BUILD_TYPES = {"image_size": int, "width": int, "max_width": int, "dropout": (int, float),
                "n_dropout": int}


def load_generator(path):
    """Rebuild a generator from `PATH.json` and load `PATH.weights.h5` (plain arrays, no code).

    `path` may name either file or their common stem. Raises ValueError with the file name when the
    settings are missing, of another format, or the weights do not fit.
    """
    base = _strip_suffix(Path(path))
    config_path = base.with_name(base.name + ".json")
    weights_path = base.with_name(base.name + ".weights.h5")
    for p in (config_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (a saved generator is a .json and a "
                                    ".weights.h5 file side by side)")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}: not valid JSON ({err})") from None
    if config.get("format") != GENERATOR_FORMAT:
        raise ValueError(f"{config_path}: not a colorizer generator (format "
                         f"{config.get('format')!r}, expected {GENERATOR_FORMAT!r})")
    norm = config.get("normalisation", {})
    if (norm.get("l_center"), norm.get("l_norm"), norm.get("ab_norm")) != (L_CENTER, L_NORM, AB_NORM):
        raise ValueError(f"{config_path}: trained with another LAB normalisation ({norm})")
    settings = {k: config[k] for k in _BUILD_TYPES if k in config}
    # Settings are data: numbers of the expected type, checked here and never evaluated.
    wrong = {k: v for k, v in settings.items()
             if isinstance(v, bool) or not isinstance(v, _BUILD_TYPES[k])}
    if wrong:
        raise ValueError(f"{config_path}: settings of the wrong type {wrong} (image_size, width, "
                         "max_width and n_dropout are integers, dropout a number)")
    try:
        generator = build_generator(**settings)
    except ValueError as err:
        raise ValueError(f"{config_path}: {err}") from None
    try:
        generator.load_weights(weights_path)
    except (ValueError, OSError) as err:
        raise ValueError(f"{weights_path}: weights do not fit the settings in "
                         f"{config_path.name} ({err})") from None
    generator.colorizer_config = config
    return generator


def _strip_suffix(path):
    name = path.name
    for suffix in (".weights.h5", ".json", ".h5"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path
