"""Data: reading images and video frames robustly, splitting by whole photo or clip, tf.data pipelines.

File I/O (Pillow, FFmpeg) lives here and nowhere else; the pipelines hand the models normalised
(L, ab) pairs built with the TensorFlow colour ops of `colour.py`.
"""
import dataclasses
import logging
import re
import struct
import subprocess
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

from .colour import rgb_to_l_ab

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PHOTOS = REPO_ROOT / "resources" / "data" / "photos"
DEFAULT_VIDEOS = REPO_ROOT / "resources" / "data" / "videos"

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".ts", ".mts", ".m2ts", ".3gp", ".ogv"}


class ImageReadError(ValueError):
    """An input image could not be used. The message names the file and the problem."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DataError(ValueError):
    """A data folder or path cannot give a dataset (missing, empty, nothing usable)."""


# =============================================================================================
# Reading one image
# =============================================================================================
# What Pillow's decoders may raise on malformed data besides OSError.
_DECODER_ERRORS = (ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError,
                   TypeError, ZeroDivisionError)


def _check_input_file(path, error, what):
    """Path(path) if it is a non-empty file; else `error(path, reason)` saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise error(path, "no such file")
    if path.is_dir():
        raise error(path, f"is a folder, not {what}")
    if path.stat().st_size == 0:
        raise error(path, "empty file (0 bytes)")
    return path


def read_image(path):
    """Read any image file as RGB: numpy (H, W, 3), uint8 for 8-bit files and uint16 for 16-bit ones.

    Handles JPEG, PNG, BMP, WebP, TIFF, GIF (first frame); grayscale, RGB, RGBA and LA (alpha
    composited on white), palette, CMYK; 16-bit grey and 16-bit colour PNG/TIFF; EXIF orientation
    (the array comes out upright). Raises ImageReadError naming the file on anything it cannot read
    (missing, empty, not an image, corrupt, truncated, larger than Pillow's decompression-bomb limit).
    """
    path = _check_input_file(path, ImageReadError, "an image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns before its hard limit; make both limits errors so a huge file is refused.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                # Pillow's TIFF loader turns the image upright and drops the tag: read it first.
                tiff_orientation = _exif_orientation(im) if im.format == "TIFF" else None
                im.load()  # decodes everything: truncated or corrupt data fails here
                deep = _read_16bit_colour(path, im)
                if deep is not None:
                    orientation = tiff_orientation or _exif_orientation(im)
                    return _apply_orientation(_deep_to_rgb(deep), orientation)
                return _to_rgb_array(ImageOps.exif_transpose(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(path, f"image too large ({err}); refused as a possible "
                                   "decompression bomb. Downscale it first, or raise "
                                   "PIL.Image.MAX_IMAGE_PIXELS if you trust the file.") from None
    except Image.UnidentifiedImageError:
        raise ImageReadError(path, "not an image file (Pillow cannot identify it)") from None
    except OSError as err:  # truncated or corrupt data
        raise ImageReadError(path, f"corrupt or truncated image ({err})") from None
    except tf.errors.OpError as err:  # the 16-bit PNG decoder
        raise ImageReadError(path, f"corrupt 16-bit image ({err.message})") from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode it") from None
    except _DECODER_ERRORS as err:
        raise ImageReadError(path, f"unreadable image ({type(err).__name__}: {err})") from None


def _to_rgb_array(im):
    """A loaded PIL image of any mode -> (H, W, 3) uint8 or uint16 RGB."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(im, dtype=np.int64)
        if mode == "I" and grey.max(initial=0) > 65535:
            grey = (grey >> 16)  # 32-bit integer grey: keep the top 16 bits
        grey = np.clip(grey, 0, 65535).astype(np.uint16)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.asarray(im, dtype=np.float32)
        top = max(float(grey.max(initial=0)), 1.0)
        grey = np.clip(grey / (top if top > 1.0 else 1.0), 0, 1)
        return np.repeat((grey * 65535 + 0.5).astype(np.uint16)[:, :, None], 3, axis=2)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode == "RGB":
        return np.asarray(im)
    # CMYK, YCbCr, LAB, HSV, P, L, 1 (Pillow converts each with its own rules):
    return np.asarray(im.convert("RGB"))


def _read_16bit_colour(path, im):
    """uint16 (H, W, C) pixels of a 16-bit colour PNG or TIFF, or None for any other file.

    Pillow opens 48- and 64-bit colour PNG/TIFF as 8-bit RGB(A), dropping the low byte; these are
    decoded again with a reader that keeps 16 bits (TensorFlow's PNG decoder, tifffile). 16-bit grey
    needs none of this: Pillow keeps it (mode I;16).
    """
    if im.format == "PNG":
        with open(path, "rb") as fh:
            header = fh.read(26)  # signature, IHDR length and type, width, height, depth, type
        bit_depth, colour_type = header[24], header[25]
        if bit_depth != 16 or colour_type not in (2, 4, 6):  # RGB, grey + alpha, RGBA
            return None
        return tf.io.decode_png(path.read_bytes(), channels=0, dtype=tf.uint16).numpy()
    if im.format == "TIFF":
        bits = im.tag_v2.get(258)  # BitsPerSample
        bits = bits if isinstance(bits, tuple) else (bits,)
        if im.tag_v2.get(262) != 2 or max(b or 0 for b in bits) != 16:  # Photometric RGB, 16 bits
            return None
        import tifffile  # a scikit-image dependency
        pixels = tifffile.imread(path, key=0)
        if pixels.ndim == 3 and pixels.shape[0] in (3, 4) and pixels.shape[-1] not in (3, 4):
            pixels = np.moveaxis(pixels, 0, -1)  # planar TIFF: channels first
        return pixels.astype(np.uint16)
    return None


def _deep_to_rgb(pixels):
    """uint16 (H, W, C), C = 1-4 (grey, grey + alpha, RGB, RGBA) -> uint16 (H, W, 3) on white."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    channels = pixels.shape[2]
    if channels in (2, 4):
        alpha = pixels[:, :, -1:].astype(np.float32) / 65535.0
        colour = pixels[:, :, :-1].astype(np.float32) * alpha + 65535.0 * (1.0 - alpha)
        pixels = (colour + 0.5).astype(np.uint16)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def _exif_orientation(im):
    """The EXIF orientation (1-8) of an opened PIL image; 1 (upright) if absent or unreadable."""
    try:
        return int(im.getexif().get(0x0112, 1))
    except (OSError, *_DECODER_ERRORS):
        return 1  # a broken EXIF block is no reason to refuse the pixels


def _apply_orientation(pixels, orientation):
    """Turn a numpy image upright for an EXIF orientation (1-8), as ImageOps.exif_transpose does."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1), 8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[orientation](pixels)) if orientation in ops else pixels


def to_float01(rgb):
    """uint8/uint16/float image -> float32 in [0, 1]."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) / 65535.0
    return np.clip(rgb.astype(np.float32), 0.0, 1.0)


def to_uint8(rgb):
    """Any image from read_image (or float in [0, 1]) -> uint8."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return rgb
    if rgb.dtype == np.uint16:
        return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def resize_short_side(rgb, short_side):
    """Downscale (never upscale) so that the shorter side is `short_side`; antialiased. uint8 out."""
    rgb = to_uint8(rgb)
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


# =============================================================================================
# Finding images and splitting them
# =============================================================================================
def find_files(root, extensions):
    """Sorted files under `root` (recursive) whose suffix is in `extensions`; hidden files skipped.

    A file given as `root` is returned as the only file, whatever its suffix.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    found = [p for p in root.rglob("*")
             if p.suffix.lower() in extensions and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(found)


# The Kaggle "Landscape Recognition" layout: three split folders, class folders below them.
KAGGLE_SPLITS = {"train": ("training data", "train", "training"),
                 "val": ("validation data", "val", "valid", "validation"),
                 "test": ("testing data", "test", "testing")}


def find_split_folders(root):
    """{'train': path, 'val': path, 'test': path} if `root` uses split folders (Kaggle), else None.

    Split folders are recognised by name, case-insensitively ('Training Data', 'train', ...): a
    training folder and at least one of validation and test. The Kaggle download wraps them in one
    or two folders of their own ('Landscape Classification/Landscape Classification/...'), so a
    folder that holds nothing but a single folder is looked through, up to three levels down.
    """
    root = Path(root)
    for _ in range(4):
        if not root.is_dir():
            return None
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
        children = {p.name.lower(): p for p in entries if p.is_dir()}
        found = {}
        for split, names in KAGGLE_SPLITS.items():
            for name in names:
                if name in children:
                    found[split] = children[name]
                    break
        if "train" in found and len(found) >= 2:
            return found
        if len(children) != 1 or any(p.suffix.lower() in IMAGE_EXTENSIONS for p in entries):
            return None
        root = next(iter(children.values()))
    return None


def split_files(files, val_fraction=0.1, test_fraction=0.1, seed=0):
    """Split whole files (or clip names) into train/val/test, deterministically for a given seed.

    The items are sorted first and then permuted with a seeded generator, so the split does not
    depend on the order the file system lists files in. A held-out split whose fraction is above 0
    gets at least one item as long as training keeps at least one (validation before test).
    Returns {'train': [...], 'val': [...], 'test': [...]}, each sorted.
    """
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {fraction}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be below 1 (training needs images), "
                         f"got {val_fraction} + {test_fraction}")
    items = sorted(files, key=lambda f: Path(f).parts)
    n = len(items)
    n_val = max(int(round(n * val_fraction)), 1 if val_fraction > 0 else 0)
    n_test = max(int(round(n * test_fraction)), 1 if test_fraction > 0 else 0)
    n_test = min(n_test, max(n - 1 - n_val, 0))   # training keeps at least one item,
    n_val = min(n_val, max(n - 1, 0))             # validation goes before test
    n_test = min(n_test, max(n - 1 - n_val, 0))
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [items[i] for i in order]

    def by_path(part):
        return sorted(part, key=lambda f: Path(f).parts)

    return {"test": by_path(shuffled[:n_test]),
            "val": by_path(shuffled[n_test:n_test + n_val]),
            "train": by_path(shuffled[n_test + n_val:])}


def scan_images(files, short_side=None, verbose=True):
    """Decode every file once; keep the readable ones.

    Returns (images, good_files, skipped) with `images` the decoded RGB uint8 arrays (downscaled to
    `short_side` when given) and `skipped` a list of (file, reason). Each unreadable file is reported
    with a warning that names it, and the count (with the first few names) is printed at the end.
    """
    images, good, skipped = [], [], []
    for f in files:
        try:
            rgb = read_image(f)
        except ImageReadError as err:
            skipped.append((str(f), err.reason))
            warnings.warn(f"skipping {err}", stacklevel=2)
            continue
        images.append(resize_short_side(rgb, short_side) if short_side else to_uint8(rgb))
        good.append(Path(f))
    if skipped and verbose:
        # Printed as well as warned: Python shows a repeated warning only once per session.
        names = ", ".join(Path(f).name for f, _ in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        print(f"Skipped {len(skipped)} unreadable file(s) of {len(files)}: {names}{more} "
              "(see the warnings for the reasons).")
    return images, good, skipped


# =============================================================================================
# tf.data pipelines
# =============================================================================================
@dataclasses.dataclass
class Augment:
    """Training augmentation. The crop side is a random fraction of the photo's shorter side."""
    min_scale: float = 0.35      # smallest crop, as a fraction of the shorter side
    max_scale: float = 1.0
    flip: bool = True            # random left-right flips
    max_rotation_deg: float = 10.0  # random small rotations (reflected borders, as Keras does)


def _to_ragged_store(images):
    """A list of (H, W, 3) uint8 arrays of different sizes -> flat uint8 buffer + shapes + offsets.

    tf.data can then cut any image out of one in-memory tensor, and every random choice after that is
    a stateless TF op: the pipeline is deterministic even with parallel calls.
    """
    shapes = np.array([im.shape[:2] for im in images], np.int32)
    sizes = shapes[:, 0].astype(np.int64) * shapes[:, 1] * 3
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    flat = np.concatenate([np.ascontiguousarray(im).reshape(-1) for im in images])
    return tf.constant(flat), tf.constant(shapes), tf.constant(offsets)


def _get_image(store, index):
    flat, shapes, offsets = store
    h, w = shapes[index, 0], shapes[index, 1]
    size = tf.cast(h, tf.int64) * tf.cast(w, tf.int64) * 3
    return tf.reshape(flat[offsets[index]:offsets[index] + size], tf.stack([h, w, 3]))


def _rotation_transform(angle, size):
    """Projective transform (8 numbers) that rotates a size x size image by `angle` about its centre."""
    c, s = tf.cos(angle), tf.sin(angle)
    centre = (tf.cast(size, tf.float32) - 1.0) / 2.0
    x_off = centre - (c * centre - s * centre)
    y_off = centre - (s * centre + c * centre)
    return tf.stack([c, -s, x_off, s, c, y_off, 0.0, 0.0])[None]


def random_crop(image, image_size, augment, seed):
    """One random-scale square crop of a uint8 image, resized to image_size, flipped, rotated.

    `seed` is a shape-(2,) int tensor; the same seed gives the same crop. Returns float32 RGB in
    [0, 1], shape (image_size, image_size, 3).
    """
    seeds = tf.random.experimental.stateless_split(seed, 5)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    short = tf.cast(tf.minimum(h, w), tf.float32)
    scale = tf.random.stateless_uniform([], seeds[0], augment.min_scale, augment.max_scale)
    side = tf.clip_by_value(tf.cast(short * scale, tf.int32), 1, tf.minimum(h, w))
    top = tf.random.stateless_uniform([], seeds[1], 0, h - side + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], 0, w - side + 1, dtype=tf.int32)
    crop = image[top:top + side, left:left + side]
    crop = tf.image.resize(tf.cast(crop, tf.float32) / 255.0, [image_size, image_size],
                           method="bilinear", antialias=True)
    if augment.flip:
        crop = tf.image.stateless_random_flip_left_right(crop, seeds[3])
    if augment.max_rotation_deg > 0:
        max_rad = augment.max_rotation_deg * np.pi / 180.0
        angle = tf.random.stateless_uniform([], seeds[4], -max_rad, max_rad)
        crop = tf.raw_ops.ImageProjectiveTransformV3(
            images=crop[None], transforms=_rotation_transform(angle, image_size),
            output_shape=[image_size, image_size], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")[0]
    return tf.clip_by_value(tf.ensure_shape(crop, [image_size, image_size, 3]), 0.0, 1.0)


def centre_crops(image, image_size, scales=(1.0, 0.7, 0.5)):
    """Deterministic square centre crops at a few scales of the shorter side, resized: (n, S, S, 3)."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    short = tf.cast(tf.minimum(h, w), tf.float32)
    crops = []
    for scale in scales:
        side = tf.maximum(tf.cast(short * scale, tf.int32), 1)
        top, left = (h - side) // 2, (w - side) // 2
        crop = tf.cast(image[top:top + side, left:left + side], tf.float32) / 255.0
        crops.append(tf.image.resize(crop, [image_size, image_size], method="bilinear",
                                     antialias=True))
    return tf.clip_by_value(tf.stack(crops), 0.0, 1.0)


def _rgb_to_example(rgb):
    # rgb (B, S, S, 3) in [0, 1] -> l_norm (B, S, S, 1) in [-1, 1], ab_norm (B, S, S, 2) in ~[-1, 1]
    l_norm, ab_norm = rgb_to_l_ab(rgb)
    return l_norm, ab_norm


def _check_sizes(image_size, batch_size):
    for name, value in (("image_size", image_size), ("batch_size", batch_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_images(images, what):
    if not images:
        raise DataError(f"no {what} images")
    for i, im in enumerate(images):
        if np.ndim(im) != 3 or np.shape(im)[2] != 3 or np.asarray(im).dtype != np.uint8:
            raise DataError(f"{what} image {i}: expected uint8 (H, W, 3), got "
                            f"{np.asarray(im).dtype} {np.shape(im)} (use read_image / to_uint8)")


def make_train_dataset(images, image_size=64, batch_size=32, seed=0, augment=None,
                       start_step=0):
    """Infinite training batches of (l_norm (B, S, S, 1), ab_norm (B, S, S, 2)) from uint8 images.

    Each epoch visits every photo once in a seeded random order and cuts one random crop of it
    (`random_crop`). Every random choice is a stateless op keyed on (seed, start_step), so two
    datasets built with the same arguments give the same batches, whatever TensorFlow's global seed.
    `start_step` shifts the random stream, so a resumed run draws new crops rather than the ones it
    already trained on.
    """
    _check_sizes(image_size, batch_size)
    _check_images(images, "training")
    augment = augment or Augment()
    store = _to_ragged_store(images)
    n = len(images)
    base_seed = tf.constant([seed, start_step], tf.int64)
    order_seed = tf.random.experimental.stateless_fold_in(base_seed, 0)
    crop_seed = tf.random.experimental.stateless_fold_in(base_seed, 1)

    def epoch_order(epoch):
        keys = tf.random.stateless_uniform(
            [n], tf.random.experimental.stateless_fold_in(order_seed, epoch))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

    def element(counter, index):
        seed_i = tf.random.experimental.stateless_fold_in(crop_seed, counter)
        return random_crop(_get_image(store, index), image_size, augment, seed_i)

    indices = tf.data.Dataset.counter().flat_map(epoch_order)  # 0..n-1 permuted, epoch after epoch
    ds = indices.enumerate().map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return (ds.batch(batch_size, drop_remainder=True)
              .map(_rgb_to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
              .prefetch(tf.data.AUTOTUNE))


def make_eval_dataset(images, image_size=64, batch_size=32, scales=(1.0, 0.7, 0.5)):
    """Finite, deterministic validation/test batches: centre crops at a few scales of every image.

    Crops are in image order, scales within an image: (l_norm (b, S, S, 1), ab_norm (b, S, S, 2)).
    """
    _check_sizes(image_size, batch_size)
    _check_images(images, "evaluation")
    crops = np.concatenate([centre_crops(tf.constant(im), image_size, scales).numpy()
                            for im in images])
    ds = tf.data.Dataset.from_tensor_slices(crops).batch(batch_size)
    return ds.map(_rgb_to_example).cache().prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class ImageData:
    """What load_image_dataset returns: the three pipelines and what went into them."""
    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    files: dict                      # split -> list of Path (for frames: the clip each came from)
    images: dict                     # split -> list of uint8 arrays (downscaled, as trained on)
    skipped: list                    # (file, reason) for every unreadable file
    image_size: int
    batch_size: int
    source: str

    def describe(self):
        """A few lines saying what the dataset holds."""
        lines = [f"Data from {self.source}"]
        for split in ("train", "val", "test"):
            ims = self.images[split]
            pixels = sum(im.shape[0] * im.shape[1] for im in ims)
            lines.append(f"  {split:5s}: {len(ims):5d} images ({pixels / 1e6:.1f} Mpixel as stored)")
        lines.append(f"  skipped: {len(self.skipped)} file(s) (the reasons are in .skipped)")
        lines.append(f"  batches: {self.batch_size} x {self.image_size}x{self.image_size}, "
                     "train = random-scale crops (infinite), val/test = centre crops")
        return "\n".join(lines)


def _looked_for(extensions):
    return f"looked for {', '.join(sorted(extensions))}, recursively, hidden files skipped"


def load_image_dataset(data_dir=None, image_size=64, batch_size=32, val_fraction=0.1,
                       test_fraction=0.1, seed=0, augment=None, short_side=192, start_step=0,
                       verbose=True):
    """Build train/val/test pipelines from a folder tree of images (default: the embedded photos).

    A folder in the Kaggle "Landscape Recognition" layout (Training Data / Validation Data /
    Testing Data, class folders below; see find_split_folders) keeps its own splits; any other
    folder is split by whole image with a seeded permutation (split_files), so crops of one photo
    never land on both sides. Unreadable files are skipped with a warning naming each, and a count
    is printed. A missing or empty folder, or one with no usable image, raises DataError.
    Images are decoded once and kept in memory downscaled to `short_side` (192 px keeps a 35 %
    crop at 64 px without upsampling); for the 12k-photo Kaggle set that is about 1.5 GB.
    """
    _check_sizes(image_size, batch_size)
    root = Path(data_dir) if data_dir is not None else DEFAULT_PHOTOS
    if not root.exists():
        raise DataError(f"{root}: no such folder. Give a folder of images (any tree; the Kaggle "
                        "layout 'Training Data/Validation Data/Testing Data' keeps its splits).")
    splits = find_split_folders(root)
    images, good, skipped = {}, {}, []
    if splits:
        images, good, skipped = _load_split_folders(root, splits, short_side, verbose)
    else:
        all_files = find_files(root, IMAGE_EXTENSIONS)
        if not all_files:
            raise DataError(f"{root}: no image files found ({_looked_for(IMAGE_EXTENSIONS)})")
        # Scan first so that unreadable files never take a place in a split.
        ims, ok, skipped = scan_images(all_files, short_side, verbose)
        if not ok:
            raise DataError(f"{root}: none of the {len(all_files)} image files could be read "
                            "(see the warnings for each file's problem)")
        parts = split_files(ok, val_fraction, test_fraction, seed)
        index = dict(zip(ok, ims))
        for s in ("train", "val", "test"):
            good[s] = parts[s]
            images[s] = [index[f] for f in parts[s]]
        for s in ("val", "test"):
            if not images[s]:
                raise DataError(f"{root}: too few usable images to hold out a {s} split "
                                f"({len(ok)} readable; at least 3 are needed, and a fraction "
                                "above 0)")
    return ImageData(
        train=make_train_dataset(images["train"], image_size, batch_size, seed, augment, start_step),
        val=make_eval_dataset(images["val"], image_size, batch_size),
        test=make_eval_dataset(images["test"], image_size, batch_size),
        files=good, images=images, skipped=skipped, image_size=image_size,
        batch_size=batch_size, source=str(root))


def _load_split_folders(root, splits, short_side, verbose):
    """Images of a folder with its own split folders (Kaggle layout) -> (images, files, skipped)."""
    names = ", ".join(f"{s}={p.relative_to(root)}" for s, p in splits.items())
    files = {s: find_files(splits[s], IMAGE_EXTENSIONS) if s in splits else []
             for s in ("train", "val", "test")}
    outside = len(find_files(root, IMAGE_EXTENSIONS)) - sum(len(f) for f in files.values())
    if outside > 0:
        warnings.warn(f"{root}: {outside} image file(s) outside the split folders ({names}) are "
                      "not used", stacklevel=3)
    images, good, skipped = {}, {}, []
    for s in ("train", "val", "test"):
        images[s], good[s], sk = scan_images(files[s], short_side, verbose)
        skipped += sk
    if not images["train"]:
        raise DataError(f"{root}: split folders found ({names}) but no readable training image in "
                        f"{splits['train']} ({len(files['train'])} image files there; "
                        f"{_looked_for(IMAGE_EXTENSIONS)})")
    if not images["val"] and not images["test"]:
        raise DataError(f"{root}: split folders found ({names}) but no readable validation or test "
                        f"image ({_looked_for(IMAGE_EXTENSIONS)})")
    for missing, other in (("val", "test"), ("test", "val")):
        if not images[missing]:
            warnings.warn(f"{root}: no readable {missing} images; using the {other} split for both",
                          stacklevel=3)
            images[missing], good[missing] = images[other], good[other]
    return images, good, skipped


# =============================================================================================
# Video frames (FFmpeg from the imageio-ffmpeg wheel)
# =============================================================================================
def ffmpeg_exe():
    """Path of the FFmpeg binary that ships inside the imageio-ffmpeg wheel."""
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


class VideoReadError(ValueError):
    """A video could not be read. The message names the file and the problem."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class _SizeNoteFilter(logging.Filter):
    """imageio-ffmpeg logs a warning whenever the frames it returns differ in size from the coded
    ones; here that is always on purpose (downscaling, rotation), so the note is dropped."""

    def filter(self, record):
        return not record.getMessage().startswith("The frame size for reading")


logging.getLogger("imageio_ffmpeg").addFilter(_SizeNoteFilter())


def probe_video(path):
    """Metadata of a video's first video stream, read from FFmpeg's description of the file.

    Returns a dict: size (w, h) of the frames as shown, i.e. after rotation, which is what
    iter_video_frames yields at full size; source_size (w, h) as coded; fps (0.0 if unknown);
    duration in seconds (None if unknown); rotate, the clockwise rotation in degrees (0, 90, 180 or
    270) that the file asks players to apply (phones store portrait video this way); codec; audio
    (bool); video_stream and header, FFmpeg's description of the stream and of the file. Raises
    VideoReadError naming the file if it is missing, empty, not a video FFmpeg can open, or has no
    video stream (audio only).
    """
    path = _check_input_file(path, VideoReadError, "a video file")
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=120)
    except subprocess.TimeoutExpired:
        raise VideoReadError(path, "FFmpeg took over 2 minutes to open it") from None
    text = proc.stderr  # FFmpeg describes the input on stderr, then complains there is no output
    lines = text.splitlines()
    stream_lines = [i for i, line in enumerate(lines) if line.lstrip().startswith("Stream #")]
    video = [i for i in stream_lines if " Video: " in lines[i] and "attached pic" not in lines[i]]
    audio = any(" Audio: " in lines[i] for i in stream_lines)
    if "Input #0" not in text:
        problem = [line.strip() for line in lines if line.strip()]
        reason = problem[-1] if problem else "FFmpeg gave no reason"
        for line in problem:
            if "moov atom not found" in line:
                reason = "moov atom not found: truncated, never finished, or not an MP4 at all"
                break
            if "Invalid data found" in line:
                reason = "invalid data: not a video FFmpeg can read, or corrupt"
        raise VideoReadError(path, f"cannot open as a video ({reason})")
    if not video:
        raise VideoReadError(path, "no video stream" + (" (audio only)" if audio else ""))
    line = lines[video[0]]
    size = re.search(r", (\d+)x(\d+)", line)
    if not size or int(size.group(1)) == 0 or int(size.group(2)) == 0:
        raise VideoReadError(path, f"video stream without a frame size ({line.strip()})")
    source_size = (int(size.group(1)), int(size.group(2)))
    fps = re.search(r"([\d.]+) fps", line) or re.search(r"([\d.]+)k? tbr", line)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    # This stream's side data and metadata sit below its line, up to the next stream.
    end = next((i for i in stream_lines if i > video[0]), len(lines))
    block = "\n".join(lines[video[0]:end])
    matrix = re.search(r"rotation of (-?[\d.]+) degrees", block, re.IGNORECASE)  # counterclockwise
    legacy = re.search(r"\brotate\s*:\s*(-?\d+)", block)                         # clockwise
    if matrix:
        rotate = int(round(-float(matrix.group(1)))) % 360
    else:
        rotate = int(legacy.group(1)) % 360 if legacy else 0
    shown = source_size[::-1] if rotate in (90, 270) else source_size
    return {"size": shown, "source_size": source_size,
            "fps": float(fps.group(1)) if fps else 0.0,
            "duration": (int(duration.group(1)) * 3600 + int(duration.group(2)) * 60
                         + float(duration.group(3))) if duration else None,
            "rotate": rotate, "codec": line.split(" Video: ", 1)[1].split()[0].strip(","),
            "audio": audio,
            # FFmpeg's own words, for callers that need more (colorizerutils.video.probe)
            "video_stream": line, "header": text}


def iter_video_frames(path, fps=None, short_side=None):
    """Yield RGB uint8 frames (H, W, 3) of a video, one at a time (streaming: the video is never
    held in memory). `fps` resamples the frame rate with FFmpeg's fps filter (2 for the training
    data, as in the original work); `short_side` downscales inside FFmpeg (never upscales).

    Frames come out upright: FFmpeg applies the file's rotation (see probe_video's 'rotate') before
    the filters, so a portrait phone video gives portrait frames. Raises VideoReadError naming the
    file if it cannot be opened or decoding fails part-way.
    """
    import imageio_ffmpeg
    probe_video(path)  # clear errors before FFmpeg starts streaming
    filters = []
    if fps:
        filters.append(f"fps={fps}")
    if short_side:
        # Downscale only; -2 keeps the aspect ratio with an even size.
        filters.append(f"scale='if(lt(iw,ih),min({short_side},iw),-2)':"
                       f"'if(lt(iw,ih),-2,min({short_side},ih))'")
    output_params = ["-vf", ",".join(filters)] if filters else []
    reader = imageio_ffmpeg.read_frames(str(path), output_params=output_params)
    try:
        meta = next(reader)  # "size" is the size FFmpeg outputs, after rotation and the filters
        width, height = meta["size"]
        for raw in reader:
            # A copy, so that callers get an ordinary writable array.
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3).copy()
    except (RuntimeError, OSError, StopIteration, ValueError) as err:
        text = str(err).strip().splitlines()
        raise VideoReadError(path, f"FFmpeg failed while decoding ({text[-1] if text else err})"
                             ) from None
    finally:
        reader.close()


def extract_frames(path, fps=2.0, short_side=192):
    """All frames of one video at `fps`, downscaled to `short_side`: list of uint8 arrays."""
    return list(iter_video_frames(path, fps=fps, short_side=short_side))


def is_colourless(frames, threshold=2.0):
    """True if frames carry no colour: the mean spread max(RGB) - min(RGB) is below `threshold`
    (in 0-255 units) on every 5th frame. Black-and-white film gives about 0-1; any real colour
    footage gives far more."""
    spreads = [float(np.mean(np.ptp(np.asarray(f, np.int16), axis=2))) for f in frames[::5]]
    return bool(spreads) and max(spreads) < threshold


def load_video_frame_dataset(video_dir=None, extra_clips=None, image_size=64, batch_size=32,
                             fps=2.0, val_fraction=0.2, test_clips=None, seed=0, augment=None,
                             short_side=192, start_step=0, verbose=True):
    """Frame datasets from a folder of videos, split by whole clip.

    Every video under `video_dir` (recursively) gives its frames at `fps`; a clip is named by its
    path relative to `video_dir`. `extra_clips` maps a clip name to a list of uint8 frames (e.g.
    camera-motion clips rendered from photos by `render_camera_motion_clip`); they join the pool.
    `test_clips` names the clips (name, file name or stem) held out as test videos; the rest are
    split into train and val by whole clip (split_files, seeded), so no clip gives frames to two
    splits. With no test clips, test is the validation set. Unreadable videos and black-and-white
    ones (no colour to learn from, see is_colourless) are skipped with a warning that names them.
    Raises DataError if fewer than two usable clips remain for train and val.
    """
    _check_sizes(image_size, batch_size)
    root = Path(video_dir) if video_dir is not None else DEFAULT_VIDEOS
    videos = find_files(root, VIDEO_EXTENSIONS)
    clips, skipped = {}, []
    for v in videos:
        name = v.name if v == root else v.relative_to(root).as_posix()
        try:
            frames = extract_frames(v, fps, short_side)
        except VideoReadError as err:
            warnings.warn(f"skipping {err}", stacklevel=2)
            skipped.append((str(v), err.reason))
            continue
        reason = "no frames" if not frames else (
            "black-and-white footage (no colour to learn from)" if is_colourless(frames) else None)
        if reason:
            warnings.warn(f"skipping {v}: {reason}", stacklevel=2)
            skipped.append((str(v), reason))
            continue
        clips[name] = frames
    for name, frames in (extra_clips or {}).items():
        if name in clips:
            raise DataError(f"extra clip name {name!r} is also a video under {root}; rename it")
        frames = [resize_short_side(f, short_side) if short_side else to_uint8(f) for f in frames]
        if not frames:
            raise DataError(f"extra clip {name!r} has no frames")
        clips[name] = frames
    if verbose and skipped:
        names = ", ".join(Path(f).name for f, _ in skipped)
        print(f"Skipped {len(skipped)} video(s) of {len(videos)}: {names} "
              "(see the warnings for the reasons).")
    if not clips:
        raise DataError(f"{root}: no usable video ({len(videos)} video files; "
                        f"{_looked_for(VIDEO_EXTENSIONS)})")
    wanted = set(test_clips or ())
    test_names = sorted(n for n in clips
                        if n in wanted or Path(n).name in wanted or Path(n).stem in wanted)
    unknown = wanted - {k for n in test_names for k in (n, Path(n).name, Path(n).stem)}
    if unknown:
        raise DataError(f"test_clips {sorted(unknown)} match no usable clip; "
                        f"usable clips: {sorted(clips)}")
    pool = [n for n in sorted(clips) if n not in test_names]
    if len(pool) < 2:
        raise DataError(f"{root}: {len(pool)} clip(s) left for training and validation "
                        f"({pool}); at least 2 are needed to split by whole clip. Add videos, or "
                        "camera-motion clips rendered from photos (extra_clips).")
    parts = split_files(pool, val_fraction, 0.0, seed)
    names = {"train": parts["train"], "val": parts["val"], "test": test_names}
    images = {s: [f for n in names[s] for f in clips[n]] for s in names}
    files = {s: [n for n in names[s] for _ in clips[n]] for s in names}
    if not images["test"]:
        images["test"], files["test"] = images["val"], files["val"]
    return ImageData(
        train=make_train_dataset(images["train"], image_size, batch_size, seed, augment, start_step),
        val=make_eval_dataset(images["val"], image_size, batch_size, scales=(1.0,)),
        test=make_eval_dataset(images["test"], image_size, batch_size, scales=(1.0,)),
        files=files, images=images, skipped=skipped, image_size=image_size,
        batch_size=batch_size, source=str(root))


def render_camera_motion_clip(rgb, n_frames=24, out_size=(160, 120), kind="pan", seed=0):
    """A synthetic camera-motion clip (pan, zoom or slow rotation) rendered from one photo.

    Gives video frames with exact colour ground truth. Label them 'camera-motion clip rendered from
    a photo' wherever shown. Every frame is a view of the photo with the output's aspect ratio (no
    stretching) that stays inside the photo (no borders). `seed` picks the direction: pan left or
    right, zoom in or out, turn clockwise or counterclockwise. Returns a list of `n_frames` uint8
    (h, w, 3) frames with out_size = (w, h).
    """
    if kind not in ("pan", "zoom", "rotate"):
        raise ValueError(f"unknown camera motion {kind!r}; use 'pan', 'zoom' or 'rotate'")
    rgb = to_uint8(rgb)
    h, w = rgb.shape[:2]
    out_w, out_h = out_size
    aspect = out_w / out_h
    fit_w = min(w, h * aspect)  # the largest box of the output's aspect ratio inside the photo
    fit_h = fit_w / aspect
    forward = bool(np.random.default_rng(seed).integers(2))
    base = Image.fromarray(rgb)
    max_deg = 4.0
    if kind == "rotate":
        # The largest centred box that stays inside the photo when it is turned by max_deg.
        c, s = np.cos(np.radians(max_deg)), np.sin(np.radians(max_deg))
        k = 0.98 * min(w / (fit_w * c + fit_h * s), h / (fit_w * s + fit_h * c))
    frames = []
    for t in np.linspace(0.0, 1.0, n_frames):
        t = t if forward else 1.0 - t
        if kind == "pan":
            crop_w, crop_h = 0.6 * fit_w, 0.6 * fit_h
            x0, y0 = (w - crop_w) * t, (h - crop_h) / 2
            view = base
        elif kind == "zoom":
            crop_w, crop_h = fit_w * (1.0 - 0.4 * t), fit_h * (1.0 - 0.4 * t)
            x0, y0 = (w - crop_w) / 2, (h - crop_h) / 2
            view = base
        else:
            view = base.rotate(max_deg * (2 * t - 1), resample=Image.Resampling.BICUBIC)
            crop_w, crop_h = k * fit_w, k * fit_h
            x0, y0 = (w - crop_w) / 2, (h - crop_h) / 2
        frame = view.resize((out_w, out_h), Image.Resampling.LANCZOS,
                            box=(x0, y0, x0 + crop_w, y0 + crop_h))
        frames.append(np.asarray(frame))
    return frames
