"""Data: robust image reading, whole-image splits, seeded tf.data pipelines, video frames, NOTICE.

Every file a test needs is made in the test (tmp_path), a few pixels in size; the embedded photos
are read once (a module fixture) and the real videos at 2 fps only.
"""
import inspect
import io
import json
import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from skimage import color

from colorizerutils import colour, data
from colorizerutils.data import DataError, ImageReadError, VideoReadError

RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "data"


def smooth_rgb(h=16, w=24, seed=0):
    """A small uint8 RGB image with smooth gradients (survives JPEG) and no symmetry."""
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, 3)
    rgb = np.stack([base[0] + 2 * x, base[1] + 3 * y, base[2] + x - y], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def save(path, array_or_image, **params):
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(
        array_or_image)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **params)
    return path


def jpeg_bytes(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def write_bad_files(folder):
    """The four kinds of unusable file: corrupt, truncated, empty, text with an image name."""
    good = jpeg_bytes(smooth_rgb(32, 32))
    corrupt = bytearray(good)
    corrupt[20:200] = np.random.default_rng(0).integers(0, 256, 180, dtype=np.uint8).tobytes()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"corrupt": folder / "corrupt.jpg", "truncated": folder / "truncated.jpg",
             "empty": folder / "empty.jpg", "text": folder / "notes.jpg"}
    paths["corrupt"].write_bytes(bytes(corrupt))
    paths["truncated"].write_bytes(good[:len(good) // 2])
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("this is not an image\n")
    return paths


# =============================================================================================
# read_image
# =============================================================================================
@pytest.mark.parametrize("ext, params, tolerance", [
    ("png", {}, 0), ("bmp", {}, 0), ("tif", {}, 0), ("webp", {"lossless": True}, 0),
    ("jpg", {"quality": 95}, 6), ("webp", {"quality": 90}, 12)])
def test_read_image_formats(tmp_path, ext, params, tolerance):
    rgb = smooth_rgb()
    out = data.read_image(save(tmp_path / f"a.{ext}", rgb, **params))
    assert out.shape == (16, 24, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).max() <= tolerance


def test_read_grayscale_8bit(tmp_path):
    grey = smooth_rgb()[:, :, 1]
    out = data.read_image(save(tmp_path / "g.png", grey))
    assert out.shape == (16, 24, 3) and out.dtype == np.uint8
    assert (out == grey[:, :, None]).all()


def test_read_16bit_grey_png_keeps_16_bits_and_its_l(tmp_path):
    grey = (np.arange(16 * 24).reshape(16, 24) * 171 + 7).astype(np.uint16)  # not multiples of 257
    out = data.read_image(save(tmp_path / "g16.png", grey))
    assert out.dtype == np.uint16 and out.shape == (16, 24, 3)
    assert (out == grey[:, :, None]).all()
    l_channel = colour.rgb_to_luminance_l(out)
    ref = color.rgb2lab(np.repeat(grey[:, :, None], 3, axis=2) / 65535.0)[..., 0]
    assert np.abs(l_channel - ref).max() <= 0.01


def test_read_16bit_rgb_png_keeps_16_bits_and_its_l(tmp_path):
    import tensorflow as tf
    rgb16 = (np.random.default_rng(1).random((12, 10, 3)) * 65535).astype(np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(tf.io.encode_png(rgb16).numpy())
    out = data.read_image(path)
    assert out.dtype == np.uint16 and np.array_equal(out, rgb16)  # Pillow alone keeps 8 bits
    ref = color.rgb2lab(rgb16 / 65535.0)[..., 0]
    assert np.abs(colour.rgb_to_luminance_l(out) - ref).max() <= 0.01
    # RGBA 16-bit: transparent pixels become white, opaque ones keep their exact value.
    rgba = np.concatenate([rgb16, np.full((12, 10, 1), 65535, np.uint16)], axis=2)
    rgba[0, 0, 3] = 0
    path.write_bytes(tf.io.encode_png(rgba).numpy())
    out = data.read_image(path)
    assert out.dtype == np.uint16 and (out[0, 0] == 65535).all()
    assert np.array_equal(out[1:], rgb16[1:])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_tiff_is_read_in_16_bits_and_turned_like_pillow_turns_8_bit(tmp_path, orientation):
    tifffile = pytest.importorskip("tifffile")
    rgb16 = (np.arange(5 * 7 * 3).reshape(5, 7, 3) * 611).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", rgb16, photometric="rgb",
                     extratags=[(0x0112, "H", 1, orientation, True)])
    deep = data.read_image(tmp_path / "a.tif")
    assert deep.dtype == np.uint16
    # The same picture in 8 bits with the same EXIF orientation, turned by Pillow.
    exif = Image.Exif()
    exif[0x0112] = orientation
    eight = data.read_image(save(tmp_path / "a.png", data.to_uint8(rgb16), exif=exif))
    assert deep.shape == eight.shape
    assert np.array_equal(data.to_uint8(deep), eight)


def test_rgba_png_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (200, 40, 10)
    rgba[0, :, 3] = 0      # transparent -> white
    rgba[1, :, 3] = 255    # opaque -> the colour
    rgba[2:, :, 3] = 128   # half -> halfway to white
    out = data.read_image(save(tmp_path / "a.png", rgba))
    assert out.shape == (4, 6, 3)
    assert (out[0] == 255).all()
    assert (out[1] == (200, 40, 10)).all()
    assert np.abs(out[2].astype(int) - (227, 147, 132)).max() <= 2


def test_palette_png_and_gif(tmp_path):
    palette = [255, 0, 0, 0, 128, 255, 20, 200, 20] + [0] * (256 * 3 - 9)
    index = np.array([[0, 1, 2, 1], [2, 0, 1, 2]], np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette(palette)
    expected = np.array(palette[:9], np.uint8).reshape(3, 3)[index]
    for name in ("p.png", "p.gif"):
        out = data.read_image(save(tmp_path / name, im))
        assert np.array_equal(out, expected), name
    # A palette with a transparent entry: those pixels come out white.
    out = data.read_image(save(tmp_path / "pt.png", im, transparency=1))
    assert (out[index == 1] == 255).all() and np.array_equal(out[index == 0][0], (255, 0, 0))


def test_cmyk_jpeg(tmp_path):
    rgb = smooth_rgb(32, 32)
    path = save(tmp_path / "cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), quality=95)
    assert Image.open(path).mode == "CMYK"
    out = data.read_image(path)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 4


def test_exif_orientation_6_jpeg_comes_out_upright(tmp_path):
    stored = np.full((20, 40, 3), 255, np.uint8)  # landscape as stored
    stored[:6, :6] = (255, 0, 0)                  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6                              # "rotate 90 degrees clockwise to display"
    out = data.read_image(save(tmp_path / "rot.jpg", stored, exif=exif, quality=95))
    assert out.shape == (40, 20, 3)               # width and height swapped
    assert out[2, -3, 0] > 200 and out[2, -3, 1] < 60   # red now at the top right
    assert out[2, 2].min() > 200 and out[-3, -3].min() > 200


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "empty", "text"])
def test_unreadable_files_raise_image_read_error_naming_the_file(tmp_path, kind):
    path = write_bad_files(tmp_path)[kind]
    with pytest.raises(ImageReadError) as err:
        data.read_image(path)
    assert str(path) in str(err.value) and err.value.path == str(path)
    assert {"corrupt": "identify", "truncated": "truncated", "empty": "0 bytes",
            "text": "not an image"}[kind] in err.value.reason


def test_missing_file_and_folder_raise_image_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        data.read_image(tmp_path / "nothing.png")
    with pytest.raises(ImageReadError, match="folder"):
        data.read_image(tmp_path)


def test_uint8_uint16_float_conversions():
    deep = np.array([0, 128, 257, 32896, 65535], np.uint16)
    assert data.to_uint8(deep).tolist() == [0, 0, 1, 128, 255]
    assert data.to_float01(deep) == pytest.approx(deep / 65535.0)
    assert data.to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]
    small = data.resize_short_side(np.zeros((30, 90, 3), np.uint8), 12)
    assert small.shape == (12, 36, 3)
    assert data.resize_short_side(np.zeros((30, 90, 3), np.uint8), 64).shape == (30, 90, 3)


# =============================================================================================
# Finding and splitting
# =============================================================================================
def test_find_files_is_recursive_sorted_and_skips_hidden(tmp_path):
    for name in ("b/2.png", "a/1.JPG", "c.webp", ".hidden/x.png", "b/.y.png", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = data.find_files(tmp_path, data.IMAGE_EXTENSIONS)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/1.JPG", "b/2.png", "c.webp"]
    with pytest.raises(DataError, match="no such"):
        data.find_files(tmp_path / "missing", data.IMAGE_EXTENSIONS)


def test_split_is_whole_file_disjoint_seeded_and_order_independent():
    files = [Path(f"class{i % 3}/img{i:02d}.jpg") for i in range(30)]
    parts = data.split_files(files, 0.1, 0.2, seed=0)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [21, 3, 6]
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == sorted(files)
    assert not set(parts["train"]) & set(parts["val"])
    assert not set(parts["train"]) & set(parts["test"])
    assert not set(parts["val"]) & set(parts["test"])
    shuffled = [files[i] for i in np.random.default_rng(5).permutation(30)]
    assert data.split_files(shuffled, 0.1, 0.2, seed=0) == parts       # listing order: no effect
    assert data.split_files(files, 0.1, 0.2, seed=0) == parts          # same seed: same split
    assert data.split_files(files, 0.1, 0.2, seed=1) != parts          # new seed: new split


def test_split_of_few_files_keeps_training_and_checks_fractions():
    assert [len(v) for v in data.split_files(["a", "b", "c"]).values()] == [1, 1, 1]
    two = data.split_files(["a", "b"], val_fraction=0.2, test_fraction=0.0)
    assert len(two["train"]) == 1 and len(two["val"]) == 1 and two["test"] == []
    assert data.split_files(["a"])["train"] == ["a"]
    with pytest.raises(ValueError, match="val_fraction"):
        data.split_files(["a", "b"], val_fraction=1.2)
    with pytest.raises(ValueError, match="below 1"):
        data.split_files(["a", "b"], val_fraction=0.5, test_fraction=0.5)


def test_embedded_photos_split_by_whole_photo():
    photos = data.find_files(data.DEFAULT_PHOTOS, data.IMAGE_EXTENSIONS)
    assert len(photos) == 110
    parts = data.split_files(photos, 0.1, 0.1, seed=0)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [88, 11, 11]
    assert len({p.name for s in parts for p in parts[s]}) == 110


# =============================================================================================
# load_image_dataset
# =============================================================================================
def make_tree(root, layout, size=(20, 28)):
    """Tiny constant-colour PNGs at the given relative paths; returns {path: colour}."""
    colours = {}
    for i, rel in enumerate(layout):
        rgb = np.array([(37 * i) % 256, (91 * i + 40) % 256, (53 * i + 90) % 256], np.uint8)
        save(root / rel, np.broadcast_to(rgb, size + (3,)).copy())
        colours[root / rel] = rgb
    return colours


def test_plain_folder_is_split_by_whole_image_and_skips_bad_files(tmp_path, capsys):
    colours = make_tree(tmp_path, [f"{'ab'[i % 2]}/sub/img{i:02d}.png" for i in range(12)])
    bad = write_bad_files(tmp_path / "a" / "broken")
    with pytest.warns(UserWarning) as caught:
        ds = data.load_image_dataset(tmp_path, image_size=16, batch_size=4, seed=3)
    messages = " ".join(str(w.message) for w in caught)
    for path in bad.values():
        assert str(path) in messages
    printed = capsys.readouterr().out
    assert "Skipped 4 unreadable file(s) of 16" in printed
    assert sorted(f for f, _ in ds.skipped) == sorted(str(p) for p in bad.values())
    splits = {s: set(ds.files[s]) for s in ("train", "val", "test")}
    assert splits["train"] | splits["val"] | splits["test"] == set(colours)
    assert not (splits["train"] & splits["val"] or splits["train"] & splits["test"]
                or splits["val"] & splits["test"])
    assert len(splits["val"]) == 1 and len(splits["test"]) == 1
    for s in ("train", "val", "test"):   # each stored image is the one of its file
        for f, im in zip(ds.files[s], ds.images[s]):
            assert (im == colours[f]).all()
    # The split is split_files' seeded split of the readable files (same seed, same split) ...
    assert ds.files == data.split_files(list(colours), 0.1, 0.1, seed=3)
    # ... so another seed gives another one.
    with pytest.warns(UserWarning, match="skipping"):
        other = data.load_image_dataset(tmp_path, image_size=16, batch_size=4, seed=4,
                                        verbose=False)
    assert other.files != ds.files
    assert "train:    10 images" in ds.describe()


@pytest.mark.parametrize("wrapper", ["", "Landscape Classification/Landscape Classification/"])
def test_kaggle_layout_keeps_its_own_splits(tmp_path, wrapper):
    layout = ([f"{wrapper}Training Data/{c}/{c}-train ({i}).jpeg" for c in ("Coast", "Forest")
               for i in range(3)]
              + [f"{wrapper}Validation Data/Coast/Coast-Valid ({i}).jpeg" for i in range(2)]
              + [f"{wrapper}Testing Data/Forest/Forest-Test ({i}).jpeg" for i in range(2)])
    colours = make_tree(tmp_path, layout)
    found = data.find_split_folders(tmp_path)
    assert found["train"].name == "Training Data" and found["test"].name == "Testing Data"
    # The seed of a random split has no say here (two seeds over the two cases).
    ds = data.load_image_dataset(tmp_path, image_size=16, batch_size=4, seed=len(wrapper))
    for split, folder in (("train", "Training Data"), ("val", "Validation Data"),
                          ("test", "Testing Data")):
        assert sorted(ds.files[split]) == sorted(p for p in colours if folder in p.parts)
    assert ds.images["val"][0].shape == (20, 28, 3)


def test_split_folder_names_are_matched_loosely_and_a_missing_one_is_shared(tmp_path):
    make_tree(tmp_path, ["train/x/1.png", "train/y/2.png", "test/x/3.png"])
    with pytest.warns(UserWarning, match="no readable val images; using the test split"):
        ds = data.load_image_dataset(tmp_path, image_size=16, batch_size=2)
    assert [p.name for p in ds.files["val"]] == ["3.png"] == [p.name for p in ds.files["test"]]


def test_a_folder_named_like_a_split_alone_is_not_a_split_layout(tmp_path):
    make_tree(tmp_path, [f"train/{i}.png" for i in range(5)])
    assert data.find_split_folders(tmp_path) is None   # looked through: 'train' holds images
    ds = data.load_image_dataset(tmp_path, image_size=16, batch_size=2)
    assert len(ds.files["train"]) == 3


def test_load_image_dataset_errors_say_what_was_looked_for(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        data.load_image_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"no image files found \(looked for .bmp, .gif, .jpeg"):
        data.load_image_dataset(tmp_path / "empty")
    write_bad_files(tmp_path / "bad")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="none of the 4 image files"):
        data.load_image_dataset(tmp_path / "bad", verbose=False)
    make_tree(tmp_path / "two", ["1.png", "2.png"])
    with pytest.raises(DataError, match="too few usable images"):
        data.load_image_dataset(tmp_path / "two")
    make_tree(tmp_path / "kaggle", ["Validation Data/a/1.png", "Testing Data/a/2.png"])
    (tmp_path / "kaggle" / "Training Data").mkdir()
    with pytest.raises(DataError, match="no readable training image"):
        data.load_image_dataset(tmp_path / "kaggle")
    with pytest.raises(ValueError, match="image_size"):
        data.load_image_dataset(tmp_path / "two", image_size=0)


# =============================================================================================
# tf.data pipelines
# =============================================================================================
@pytest.fixture(scope="module")
def photos():
    """Six embedded photos, downscaled as load_image_dataset stores them (read once)."""
    files = data.find_files(data.DEFAULT_PHOTOS, data.IMAGE_EXTENSIONS)[::19]
    return [data.resize_short_side(data.read_image(f), 96) for f in files]


def first_batches(ds, n=3):
    return [(l.numpy(), ab.numpy()) for (l, ab), _ in zip(ds, range(n))]


def test_train_batches_shapes_ranges_and_seeding(photos):
    ds = data.make_train_dataset(photos, image_size=64, batch_size=4, seed=7)
    batches = first_batches(ds)
    for l_norm, ab_norm in batches:
        assert l_norm.shape == (4, 64, 64, 1) and ab_norm.shape == (4, 64, 64, 2)
        assert l_norm.dtype == np.float32 and ab_norm.dtype == np.float32
        assert -1.0 <= l_norm.min() and l_norm.max() <= 1.0
        assert np.abs(ab_norm).max() <= 1.2
    assert np.abs(np.concatenate([b[1] for b in batches])).max() > 0.05  # real colour in there
    same = first_batches(data.make_train_dataset(photos, image_size=64, batch_size=4, seed=7))
    for (l1, ab1), (l2, ab2) in zip(batches, same):
        assert np.array_equal(l1, l2) and np.array_equal(ab1, ab2)
    other = first_batches(data.make_train_dataset(photos, image_size=64, batch_size=4, seed=8))
    assert not np.array_equal(batches[0][0], other[0][0])
    resumed = first_batches(data.make_train_dataset(photos, 64, 4, seed=7, start_step=100), 1)
    assert not np.array_equal(batches[0][0], resumed[0][0])


def test_each_epoch_visits_every_image_once():
    greys = [np.full((20, 30, 3), v, np.uint8) for v in (20, 70, 120, 170, 220)]
    ds = data.make_train_dataset(greys, image_size=8, batch_size=5, seed=0)
    expected = sorted(float(x) for x in colour.normalize_l(colour.grey_to_l(
        np.array([20, 70, 120, 170, 220], np.uint8))))
    orders = []
    for l_norm, _ in first_batches(ds, 3):  # batch = epoch here
        means = l_norm.reshape(5, -1).mean(axis=1)
        assert sorted(means) == pytest.approx(expected, abs=1e-3)
        orders.append(np.argsort(means).tolist())
    assert len({tuple(o) for o in orders}) > 1  # reshuffled between epochs


def test_random_crop_without_augmentation_is_the_image_and_flips_mirror_it():
    import tensorflow as tf
    image = smooth_rgb(32, 32)
    plain = data.Augment(min_scale=1.0, max_scale=1.0, flip=False, max_rotation_deg=0)
    crop = data.random_crop(tf.constant(image), 32, plain, tf.constant([1, 2], tf.int64)).numpy()
    assert np.abs(crop - image / 255.0).max() < 1e-6
    flips = data.Augment(min_scale=1.0, max_scale=1.0, flip=True, max_rotation_deg=0)
    seen = set()
    for i in range(8):
        out = data.random_crop(tf.constant(image), 32, flips, tf.constant([i, 0], tf.int64)).numpy()
        if np.abs(out - image / 255.0).max() < 1e-6:
            seen.add("same")
        elif np.abs(out - image[:, ::-1] / 255.0).max() < 1e-6:
            seen.add("mirrored")
    assert seen == {"same", "mirrored"}
    turn = data.Augment(min_scale=1.0, max_scale=1.0, flip=False, max_rotation_deg=10)
    out = data.random_crop(tf.constant(image), 32, turn, tf.constant([3, 0], tf.int64)).numpy()
    assert 0 < np.abs(out - image / 255.0).max() and np.abs(out - image / 255.0).mean() < 0.05


def test_pipelines_refuse_bad_input_with_a_clear_error():
    with pytest.raises(DataError, match="no training images"):
        data.make_train_dataset([])
    with pytest.raises(DataError, match="no evaluation images"):
        data.make_eval_dataset([])
    with pytest.raises(DataError, match=r"expected uint8 \(H, W, 3\).*to_uint8"):
        data.make_train_dataset([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="batch_size"):
        data.make_eval_dataset([np.zeros((8, 8, 3), np.uint8)], batch_size=0)


def test_eval_batches_are_deterministic_centre_crops():
    image = smooth_rgb(32, 48)   # (h, w): the centre square is columns 8..40
    ds = data.make_eval_dataset([image, image[::-1]], image_size=32, batch_size=4)
    batches = first_batches(ds, 10)
    assert [b[0].shape[0] for b in batches] == [4, 2]   # 2 images x 3 scales
    rgb = colour.l_ab_to_rgb(batches[0][0][:1], batches[0][1][:1]).numpy()[0]
    assert np.abs(rgb - image[:, 8:40] / 255.0).max() < 2 / 255
    again = first_batches(ds, 10)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(batches, again))


# =============================================================================================
# Video frames
# =============================================================================================
CLIP_COLOURS = np.array([[230, 30, 30], [30, 200, 30], [30, 30, 230], [220, 220, 40],
                         [40, 210, 210], [210, 40, 210]], np.uint8)


def write_video(path, colours, seconds=3, fps=10, size=(64, 48)):
    """An H.264 clip: each colour in turn for an equal share of the time; top-left quarter white."""
    w, h = size
    n = seconds * fps
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=fps, quality=None,
                                         output_params=["-crf", "12"], macro_block_size=1,
                                         ffmpeg_log_level="error")
    writer.send(None)
    for i in range(n):
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = colours[i * len(colours) // n]
        frame[:h // 4, :w // 4] = 255
        writer.send(frame)
    writer.close()
    return path


def nearest_colour(frame, colours):
    mean = frame[frame.shape[0] // 2:, frame.shape[1] // 2:].reshape(-1, 3).mean(axis=0)
    dist = np.abs(colours.astype(float) - mean).sum(axis=1)
    assert dist.min() < 40, f"frame colour {mean} is none of the clip's colours"
    return int(dist.argmin())


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """3 s at 10 fps, 64x48, six colours of 0.5 s each."""
    return write_video(tmp_path_factory.mktemp("video") / "six.mp4", CLIP_COLOURS)


def test_video_frames_stream_at_the_given_rate(clip):
    frames = data.iter_video_frames(clip, fps=2)
    assert inspect.isgenerator(frames)
    frames = list(frames)
    assert 5 <= len(frames) <= 7
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    seen = [nearest_colour(f, CLIP_COLOURS) for f in frames]
    assert seen == sorted(seen) and len(set(seen)) >= 5   # one frame every 0.5 s, in order
    assert len(list(data.iter_video_frames(clip))) == 30
    meta = data.probe_video(clip)
    assert meta["size"] == (64, 48) and meta["fps"] == 10 and meta["rotate"] == 0
    assert meta["duration"] == pytest.approx(3.0, abs=0.1)


def test_video_short_side_downscales_and_never_upscales(clip):
    small = data.extract_frames(clip, fps=2, short_side=24)
    assert {f.shape for f in small} == {(24, 32, 3)}
    assert data.extract_frames(clip, fps=2, short_side=200)[0].shape == (48, 64, 3)


def test_rotated_video_frames_come_out_upright(clip, tmp_path):
    rotated = tmp_path / "portrait.mp4"
    # A phone's portrait clip: coded landscape, with "turn 90 degrees clockwise" in the metadata.
    subprocess.run([data.ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation:v:0", "-90",
                    "-i", str(clip), "-c", "copy", str(rotated)], check=True)
    meta = data.probe_video(rotated)
    assert meta["rotate"] == 90 and meta["source_size"] == (64, 48) and meta["size"] == (48, 64)
    frame = next(data.iter_video_frames(rotated))
    assert frame.shape == (64, 48, 3)
    assert frame[:8, -8:].min() > 200          # the white corner turned to the top right
    assert frame[:8, :8].max() < 250 and frame[-8:, -8:].max() < 250
    assert data.extract_frames(rotated, fps=2, short_side=24)[0].shape == (32, 24, 3)


def test_unreadable_videos_raise_video_read_error_naming_the_file(clip, tmp_path):
    cases = {"missing.mp4": None, "empty.mp4": b"", "text.mp4": b"not a video at all\n",
             "truncated.mp4": clip.read_bytes()[:len(clip.read_bytes()) // 2]}
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(VideoReadError) as err:
            list(data.iter_video_frames(path, fps=2))
        assert str(path) in str(err.value), name
    audio = tmp_path / "sound.m4a"
    subprocess.run([data.ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=d=0.5", str(audio)], check=True)
    with pytest.raises(VideoReadError, match="audio only"):
        data.probe_video(audio)


def test_video_folder_becomes_frames_split_by_whole_clip(tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(5):  # clip i shows colour i only, so a frame tells its clip
        write_video(folder / f"clip{i}.mp4", CLIP_COLOURS[i:i + 1], seconds=1)
    grey = np.full((1, 3), 128, np.uint8)
    write_video(folder / "old_film.mp4", grey, seconds=1)
    (folder / "broken.mp4").write_bytes(b"garbage")
    with pytest.warns(UserWarning) as caught:
        ds = data.load_video_frame_dataset(folder, image_size=16, batch_size=2, fps=2,
                                           val_fraction=0.25, test_clips=["clip4"], seed=0)
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.mp4" in messages and "old_film.mp4: black-and-white" in messages
    assert "Skipped 2 video(s) of 7" in capsys.readouterr().out
    clips = {s: set(ds.files[s]) for s in ("train", "val", "test")}
    assert clips["test"] == {"clip4.mp4"}
    assert len(clips["val"]) == 1 and len(clips["train"]) == 3
    assert not (clips["train"] & clips["val"] or clips["train"] & clips["test"]
                or clips["val"] & clips["test"])
    for s in ("train", "val", "test"):  # every frame comes from the clip it is filed under
        assert len(ds.images[s]) == len(ds.files[s]) >= 2
        for name, frame in zip(ds.files[s], ds.images[s]):
            assert nearest_colour(frame, CLIP_COLOURS) == int(name[4])
    l_norm, ab_norm = next(iter(ds.train))
    assert l_norm.shape == (2, 16, 16, 1) and ab_norm.shape == (2, 16, 16, 2)


def test_few_clips_are_still_split_by_whole_clip(tmp_path, monkeypatch):
    # The split logic alone: 'decoding' gives each clip frames of its own colour, no FFmpeg.
    def fake_frames(path, fps, short_side):
        return [np.broadcast_to(CLIP_COLOURS[int(Path(path).stem[4])], (24, 32, 3)).copy()] * 3

    monkeypatch.setattr(data, "extract_frames", fake_frames)
    folder = tmp_path / "two"
    folder.mkdir()
    for i in range(2):
        (folder / f"clip{i}.mp4").write_bytes(b"x")
    ds = data.load_video_frame_dataset(folder, image_size=16, batch_size=2, fps=2)
    # Two clips: one trains, the other validates (it used to be in both).
    assert len(set(ds.files["train"])) == 1 and len(set(ds.files["val"])) == 1
    assert set(ds.files["train"]) != set(ds.files["val"])
    assert ds.files["test"] == ds.files["val"]   # no test clips named: test is validation
    with pytest.raises(DataError, match="at least 2 are needed"):
        data.load_video_frame_dataset(folder, test_clips=["clip0"])
    with pytest.raises(DataError, match="match no usable clip"):
        data.load_video_frame_dataset(folder, test_clips=["nope"])
    # Camera-motion clips rendered from a photo join the pool under their own names.
    extra = {"pan:photo": data.render_camera_motion_clip(smooth_rgb(60, 80), 4, (32, 24))}
    ds = data.load_video_frame_dataset(folder, extra_clips=extra, image_size=16, batch_size=2,
                                       fps=2, test_clips=["pan:photo"])
    assert set(ds.files["test"]) == {"pan:photo"} and len(ds.images["test"]) == 4
    assert set(ds.files["train"]) | set(ds.files["val"]) == {"clip0.mp4", "clip1.mp4"}
    with pytest.raises(DataError, match="no such"):
        data.load_video_frame_dataset(tmp_path / "missing")
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="no usable video"):
        data.load_video_frame_dataset(tmp_path / "none")


@pytest.mark.parametrize("name, coded", [("tree.avi", (320, 240)), ("bikes.mp4", (640, 272))])
def test_real_videos_at_2_fps(name, coded):
    path = RESOURCES / "videos" / name
    meta = data.probe_video(path)
    assert meta["size"] == coded and meta["rotate"] == 0
    frames = data.extract_frames(path, fps=2, short_side=96)
    assert abs(len(frames) - 2 * meta["duration"]) <= 2
    w, h = coded
    assert frames[0].shape[0] == 96 and abs(frames[0].shape[1] - w * 96 / h) <= 2
    assert not data.is_colourless(frames)
    assert np.std(frames[0]) > 10 and not np.array_equal(frames[0], frames[-1])


def test_camera_motion_clips_keep_the_aspect_ratio_and_stay_inside_the_photo():
    # A wide photo (300x120) with a disk: squeezing it into 4:3 frames would turn the disk oval.
    y, x = np.mgrid[0:120, 0:300]
    photo = np.full((120, 300, 3), 90, np.uint8) + (x[..., None] % 50).astype(np.uint8)
    photo[(y - 60) ** 2 + (x - 150) ** 2 < 35 ** 2] = (250, 80, 80)
    for kind in ("pan", "zoom", "rotate"):
        frames = data.render_camera_motion_clip(photo, n_frames=5, out_size=(80, 60), kind=kind)
        assert len(frames) == 5 and {f.shape for f in frames} == {(60, 80, 3)}
        assert all(f.dtype == np.uint8 for f in frames)
        assert min(int(f.min()) for f in frames) >= 40, kind   # no black border anywhere
        assert not np.array_equal(frames[0], frames[-1]), kind  # the camera moves
        same = data.render_camera_motion_clip(photo, n_frames=5, out_size=(80, 60), kind=kind)
        assert all(np.array_equal(a, b) for a, b in zip(frames, same))
    first_zoom = data.render_camera_motion_clip(photo, 3, (80, 60), "zoom", seed=1)
    for frame in (first_zoom[0], first_zoom[-1]):
        red = (frame[..., 0] > 200) & (frame[..., 1] < 120)
        rows, cols = np.nonzero(red.any(axis=1))[0], np.nonzero(red.any(axis=0))[0]
        assert abs((rows[-1] - rows[0]) - (cols[-1] - cols[0])) <= 2   # still a circle
    with pytest.raises(ValueError, match="unknown camera motion"):
        data.render_camera_motion_clip(photo, kind="shake")


# =============================================================================================
# NOTICE
# =============================================================================================
def test_notice_lists_every_embedded_file_with_its_source_and_licence():
    notice = (RESOURCES / "NOTICE").read_text()
    photos = json.loads((RESOURCES / "photos" / "MANIFEST.json").read_text())
    on_disk = {p.name for p in (RESOURCES / "photos").iterdir() if p.suffix == ".jpg"}
    assert {e["file"] for e in photos} == on_disk
    # Each photo's line sits in the section whose Licence line is its manifest licence.
    licence = None
    listed = {}
    for line in notice.splitlines():
        if line.startswith("Licence: "):
            licence = line[len("Licence: "):]
        match = re.match(r"  (\S+\.jpg)  <-  (\S+)$", line)
        if match:
            listed[match.group(1)] = (licence, match.group(2))
    assert listed == {e["file"]: (e["license"], e["path_in_package"]) for e in photos}
    videos = json.loads((RESOURCES / "videos" / "MANIFEST.json").read_text())
    assert {e["file"] for e in videos} == {p.name for p in (RESOURCES / "videos").iterdir()
                                           if p.name != "MANIFEST.json"}
    for e in videos:
        assert f"File:    {e['file']}\nSource and licence: {e['source']}\n" in notice
