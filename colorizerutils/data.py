"""Data: reading images and video frames robustly, splitting by whole photo or clip, tf.data pipelines.

File I/O (Pillow, FFmpeg) lives here and nowhere else; the pipelines hand the models normalised
(L, ab) pairs built with the TensorFlow colour ops of `colour.py`.
"""
import dataclasses
import hashlib
import json
import os
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
def read_image(path):
    """Read any image file as RGB: numpy (H, W, 3), uint8 for 8-bit files and uint16 for 16-bit ones.

    Handles JPEG, PNG, BMP, WebP, TIFF, GIF (first frame); grayscale, RGB, RGBA and LA (alpha
    composited on white), palette, CMYK; 16-bit grey and colour; EXIF orientation. Raises
    ImageReadError naming the file on anything it cannot read (missing, empty, not an image,
    truncated, larger than Pillow's decompression-bomb limit).
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns before its hard limit; make both limits errors so a huge file is refused.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                im = ImageOps.exif_transpose(im)
                return _to_rgb_array(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(path, f"image too large ({err}); refused as a possible "
                                   "decompression bomb. Downscale it first, or raise "
                                   "PIL.Image.MAX_IMAGE_PIXELS if you trust the file.") from None
    except Image.UnidentifiedImageError:
        raise ImageReadError(path, "not an image file (Pillow cannot identify it)") from None
    except OSError as err:  # truncated or corrupt data
        raise ImageReadError(path, f"corrupt or truncated image ({err})") from None
    except (ValueError, SyntaxError, EOFError) as err:
        raise ImageReadError(path, f"unreadable image ({err})") from None


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
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode == "RGB":
        return np.asarray(im)
    # 48-bit and 64-bit RGB(A) PNGs open in Pillow as 8-bit RGB(A) already; CMYK, YCbCr, P, L, 1:
    return np.asarray(im.convert("RGB"))


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
    """Sorted files under `root` (recursive) whose suffix is in `extensions`; hidden files skipped."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    found = [p for p in root.rglob("*")
             if p.is_file() and p.suffix.lower() in extensions
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(found)


# The Kaggle "Landscape Recognition" layout: three split folders, class folders below them.
KAGGLE_SPLITS = {"train": ("training data", "train", "training"),
                 "val": ("validation data", "val", "valid", "validation"),
                 "test": ("testing data", "test", "testing")}


def find_split_folders(root):
    """{'train': path, 'val': path, 'test': path} if `root` uses split folders (Kaggle), else None."""
    root = Path(root)
    if not root.is_dir():
        return None
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    found = {}
    for split, names in KAGGLE_SPLITS.items():
        for name in names:
            if name in children:
                found[split] = children[name]
                break
    return found if "train" in found and len(found) >= 2 else None


def split_files(files, val_fraction=0.1, test_fraction=0.1, seed=0):
    """Split whole files into train/val/test, deterministically for a given seed.

    Sorted paths are permuted with a seeded generator, so the split does not depend on the order
    the file system lists files in. Each of val and test gets at least one file when there are
    three or more.
    """
    files = sorted(Path(f) for f in files)
    order = np.random.default_rng(seed).permutation(len(files))
    n = len(files)
    n_val = int(round(n * val_fraction)) if n >= 3 else 0
    n_test = int(round(n * test_fraction)) if n >= 3 else 0
    if n >= 3:
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
    shuffled = [files[i] for i in order]
    return {"test": sorted(shuffled[:n_test]),
            "val": sorted(shuffled[n_test:n_test + n_val]),
            "train": sorted(shuffled[n_test + n_val:])}


def scan_images(files, short_side=None, verbose=True):
    """Decode every file once; keep the readable ones.

    Returns (images, good_files, skipped) with `images` the decoded RGB uint8 arrays (downscaled to
    `short_side` when given) and `skipped` a list of (file, reason). Each unreadable file is reported
    with a warning that names it, and a count is printed at the end.
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
        print(f"Skipped {len(skipped)} unreadable file(s) of {len(files)}; see the warnings above.")
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
    sizes = shapes[:, 0] * shapes[:, 1] * 3
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    flat = np.concatenate([im.reshape(-1) for im in images])
    return tf.constant(flat), tf.constant(shapes), tf.constant(offsets)


def _get_image(store, index):
    flat, shapes, offsets = store
    h, w = shapes[index, 0], shapes[index, 1]
    size = tf.cast(h * w * 3, tf.int64)
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

    `seed` is a shape-(2,) int tensor; the same seed gives the same crop.
    """
    seeds = tf.random.experimental.stateless_split(seed, 5)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    short = tf.cast(tf.minimum(h, w), tf.float32)
    scale = tf.random.stateless_uniform([], seeds[0], augment.min_scale, augment.max_scale)
    side = tf.maximum(tf.cast(short * scale, tf.int32), 1)
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
    l_norm, ab_norm = rgb_to_l_ab(rgb)
    return l_norm, ab_norm


def make_train_dataset(images, image_size=64, batch_size=32, seed=0, augment=None,
                       start_step=0):
    """Infinite training batches of (l_norm (B, S, S, 1), ab_norm (B, S, S, 2)) from uint8 images.

    Deterministic for a given seed. `start_step` shifts the random stream, so a resumed run draws
    new crops rather than the ones it already trained on.
    """
    if not images:
        raise DataError("no training images")
    augment = augment or Augment()
    store = _to_ragged_store(images)
    n = len(images)
    base_seed = tf.constant([seed, start_step], tf.int64)

    def element(counter, index):
        crop_seed = tf.random.experimental.stateless_fold_in(base_seed, counter)
        return random_crop(_get_image(store, index), image_size, augment, crop_seed)

    # Each epoch visits every photo once in a seeded random order; many epochs give many crops.
    indices = tf.data.Dataset.range(n).repeat().shuffle(max(n, 2), seed=seed + start_step,
                                                        reshuffle_each_iteration=True)
    ds = indices.enumerate().map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return (ds.batch(batch_size, drop_remainder=True)
              .map(_rgb_to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
              .prefetch(tf.data.AUTOTUNE))


def make_eval_dataset(images, image_size=64, batch_size=32, scales=(1.0, 0.7, 0.5)):
    """Finite, deterministic validation/test batches: centre crops at a few scales of every image."""
    if not images:
        raise DataError("no evaluation images")
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
        lines.append(f"  skipped: {len(self.skipped)} unreadable file(s)")
        lines.append(f"  batches: {self.batch_size} x {self.image_size}x{self.image_size}, "
                     "train = random-scale crops (infinite), val/test = centre crops")
        return "\n".join(lines)


def load_image_dataset(data_dir=None, image_size=64, batch_size=32, val_fraction=0.1,
                       test_fraction=0.1, seed=0, augment=None, short_side=192, start_step=0,
                       verbose=True):
    """Build train/val/test pipelines from a folder tree of images (default: the embedded photos).

    A folder in the Kaggle "Landscape Recognition" layout (Training Data / Validation Data /
    Testing Data, class folders below) keeps its own splits; any other folder is split by whole
    image with a seeded permutation. Unreadable files are skipped with a warning naming them.
    Images are decoded once and kept in memory downscaled to `short_side` (192 px keeps a 35 %
    crop at 64 px without upsampling); for the 12k-photo Kaggle set that is about 1.5 GB.
    """
    root = Path(data_dir) if data_dir is not None else DEFAULT_PHOTOS
    if not root.exists():
        raise DataError(f"{root}: no such folder. Give a folder of images (any tree; the Kaggle "
                        "layout 'Training Data/Validation Data/Testing Data' keeps its splits).")
    splits = find_split_folders(root)
    if splits:
        files = {s: find_files(splits[s], IMAGE_EXTENSIONS) if s in splits else []
                 for s in ("train", "val", "test")}
        if not files["val"] and not files["test"]:
            raise DataError(f"{root}: split folders found but no validation or test images")
        if not files["val"]:
            files["val"] = files["test"]
        if not files["test"]:
            files["test"] = files["val"]
    else:
        all_files = find_files(root, IMAGE_EXTENSIONS)
        if not all_files:
            raise DataError(f"{root}: no image files found (looked for "
                            f"{', '.join(sorted(IMAGE_EXTENSIONS))}, recursively)")
        files = None
    images, good, skipped = {}, {}, []
    if files is None:
        # Scan first so that unreadable files never take a place in a split.
        ims, ok, skipped = scan_images(all_files, short_side, verbose)
        if not ok:
            raise DataError(f"{root}: none of the {len(all_files)} image files could be read")
        parts = split_files(ok, val_fraction, test_fraction, seed)
        index = {f: im for f, im in zip(ok, ims)}
        for s in ("train", "val", "test"):
            good[s] = parts[s]
            images[s] = [index[f] for f in parts[s]]
    else:
        for s in ("train", "val", "test"):
            images[s], good[s], sk = scan_images(files[s], short_side, verbose)
            skipped += sk
        if not images["train"]:
            raise DataError(f"{root}: no readable training images")
    for s in ("val", "test"):
        if not images[s]:
            raise DataError(f"{root}: too few usable images to hold out a {s} split "
                            f"({len(images['train'])} readable); add images or change the fractions")
    return ImageData(
        train=make_train_dataset(images["train"], image_size, batch_size, seed, augment, start_step),
        val=make_eval_dataset(images["val"], image_size, batch_size),
        test=make_eval_dataset(images["test"], image_size, batch_size),
        files=good, images=images, skipped=skipped, image_size=image_size,
        batch_size=batch_size, source=str(root))


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


def probe_video(path):
    """Metadata of a video's first video stream: dict with size (w, h), fps, duration, rotate, audio.

    Raises VideoReadError (naming the file) if it is missing or has no video stream.
    """
    import imageio_ffmpeg
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(path, "no such file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        reader.close()
    except (OSError, RuntimeError, StopIteration) as err:
        text = str(err).strip().splitlines()
        reason = text[-1] if text else "FFmpeg could not read it"
        if "does not contain any stream" in str(err) or "no video" in str(err).lower():
            reason = "no video stream (audio only?)"
        raise VideoReadError(path, f"cannot read video: {reason}") from None
    if not meta.get("size") or meta["size"][0] <= 0:
        raise VideoReadError(path, "no video stream")
    return meta


def iter_video_frames(path, fps=None, short_side=None):
    """Yield RGB uint8 frames (H, W, 3) of a video, one at a time (streaming: the video is never
    held in memory). `fps` resamples the frame rate with FFmpeg's fps filter (2 for the training
    data, as in the original work); `short_side` downscales inside FFmpeg.
    """
    import imageio_ffmpeg
    probe_video(path)
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
        meta = next(reader)  # "size" is the size FFmpeg outputs, after the filters and rotation
        width, height = meta["size"]
        for raw in reader:
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


def extract_frames(path, fps=2.0, short_side=192):
    """All frames of one video at `fps`, downscaled to `short_side`: list of uint8 arrays."""
    return list(iter_video_frames(path, fps=fps, short_side=short_side))


def load_video_frame_dataset(video_dir=None, extra_clips=None, image_size=64, batch_size=32,
                             fps=2.0, val_fraction=0.2, test_clips=None, seed=0, augment=None,
                             short_side=192, start_step=0, verbose=True):
    """Frame datasets from a folder of videos, split by whole clip.

    `extra_clips` maps a clip name to a list of uint8 frames (e.g. camera-motion clips rendered from
    photos by `render_camera_motion_clip`); they join the training and validation pool.
    `test_clips` names the clips (file stem or name) held out as test videos; by default none.
    Unreadable videos are skipped with a warning that names them.
    """
    root = Path(video_dir) if video_dir is not None else DEFAULT_VIDEOS
    videos = find_files(root, VIDEO_EXTENSIONS)
    clips, skipped = {}, []
    for v in videos:
        try:
            frames = extract_frames(v, fps, short_side)
        except VideoReadError as err:
            warnings.warn(f"skipping {err}", stacklevel=2)
            skipped.append((str(v), err.reason))
            continue
        if not frames:
            warnings.warn(f"skipping {v}: no frames", stacklevel=2)
            skipped.append((str(v), "no frames"))
            continue
        clips[v.name] = frames
    for name, frames in (extra_clips or {}).items():
        clips[name] = [resize_short_side(f, short_side) for f in frames]
    if not clips:
        raise DataError(f"{root}: no readable video (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    test_names = {n for n in clips if test_clips and (n in test_clips or Path(n).stem in test_clips)}
    pool = sorted(set(clips) - test_names)
    parts = split_files(pool, val_fraction, 0.0, seed) if len(pool) >= 3 else {
        "train": pool, "val": pool[-1:], "test": []}
    names = {"train": [str(p) for p in parts["train"]], "val": [str(p) for p in parts["val"]],
             "test": sorted(test_names)}
    images = {s: [f for n in names[s] for f in clips[n]] for s in names}
    files = {s: [n for n in names[s] for _ in clips[n]] for s in names}
    if not images["test"]:
        images["test"], files["test"] = images["val"], files["val"]
    if verbose and skipped:
        print(f"Skipped {len(skipped)} unreadable video(s) of {len(videos)}.")
    return ImageData(
        train=make_train_dataset(images["train"], image_size, batch_size, seed, augment, start_step),
        val=make_eval_dataset(images["val"], image_size, batch_size, scales=(1.0,)),
        test=make_eval_dataset(images["test"], image_size, batch_size, scales=(1.0,)),
        files=files, images=images, skipped=skipped, image_size=image_size,
        batch_size=batch_size, source=str(root))


def render_camera_motion_clip(rgb, n_frames=24, out_size=(160, 120), kind="pan", seed=0):
    """A synthetic camera-motion clip (pan, zoom or slow rotation) rendered from one photo.

    Gives video frames with exact colour ground truth. Labelled 'camera-motion clip rendered from a
    photo' wherever shown. Returns a list of uint8 (h, w, 3) frames with out_size = (w, h).
    """
    rgb = to_uint8(rgb)
    h, w = rgb.shape[:2]
    out_w, out_h = out_size
    reverse = bool(np.random.default_rng(seed).integers(2))  # pan left or right
    frames = []
    base = Image.fromarray(rgb)
    for t in np.linspace(0.0, 1.0, n_frames):
        if kind == "pan":
            crop_w, crop_h = 0.6 * w, 0.6 * h
            x0 = (w - crop_w) * ((1 - t) if reverse else t)
            y0 = (h - crop_h) * 0.5
            box = (x0, y0, x0 + crop_w, y0 + crop_h)
            frame = base.resize((out_w, out_h), Image.Resampling.LANCZOS, box=box)
        elif kind == "zoom":
            zoom = 1.0 - 0.4 * t
            crop_w, crop_h = w * zoom, h * zoom
            x0, y0 = (w - crop_w) / 2, (h - crop_h) / 2
            frame = base.resize((out_w, out_h), Image.Resampling.LANCZOS,
                                box=(x0, y0, x0 + crop_w, y0 + crop_h))
        elif kind == "rotate":
            rotated = base.rotate(8.0 * (t - 0.5), resample=Image.Resampling.BICUBIC)
            crop_w, crop_h = 0.75 * w, 0.75 * h
            x0, y0 = (w - crop_w) / 2, (h - crop_h) / 2
            frame = rotated.resize((out_w, out_h), Image.Resampling.LANCZOS,
                                   box=(x0, y0, x0 + crop_w, y0 + crop_h))
        else:
            raise ValueError(f"unknown camera motion {kind!r}; use 'pan', 'zoom' or 'rotate'")
        frames.append(np.asarray(frame))
    return frames
