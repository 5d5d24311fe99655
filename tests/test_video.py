"""Video: the streaming colorizer's output file, its frames and timing, bad inputs, scene cuts,
temporal smoothing and the flicker measure. Clips are tiny and made with FFmpeg in a temporary
folder (or are the small real clips of resources/data/videos)."""
import os
import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import keras
import numpy as np
import pytest

import colorizerutils as cu
from colorizerutils import video

ROOT = Path(__file__).resolve().parent.parent
VIDEOS = ROOT / "resources" / "data" / "videos"


def ffmpeg(*args):
    subprocess.run([cu.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
                   check=True)


def ffmpeg_info(path):
    """What `ffmpeg -i` prints about a file (its stream lines and side data)."""
    return subprocess.run([cu.ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr


def frame_times(path):
    """Presentation time of every frame, from FFmpeg's showinfo (independent of video.py)."""
    text = subprocess.run([cu.ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0",
                           "-fps_mode", "passthrough", "-vf", "showinfo", "-f", "null", "-"],
                          capture_output=True, text=True).stderr
    return [float(t) for t in re.findall(r"pts_time:([-\d.e]+)", text)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Small test clips made from the real footage."""
    folder = tmp_path_factory.mktemp("clips")
    car = str(VIDEOS / "carphone.mp4")
    c = {name: folder / name for name in ("av.mp4", "silent.mp4", "car.mp4", "odd.mkv",
                                          "rotated.mp4", "audio_only.m4a", "faststart.mp4")}
    ffmpeg("-i", car, "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-t", "1",
           "-vf", "scale=64:48", "-c:v", "libx264", "-c:a", "aac", "-shortest", str(c["av.mp4"]))
    ffmpeg("-i", car, "-t", "0.5", "-vf", "scale=64:48", "-c:v", "libx264", str(c["silent.mp4"]))
    ffmpeg("-i", car, "-t", "0.5", "-c:v", "libx264", str(c["car.mp4"]))  # full size, 176x144
    ffmpeg("-i", car, "-t", "0.34", "-vf", "scale=65:49", "-c:v", "ffv1", str(c["odd.mkv"]))
    ffmpeg("-display_rotation", "90", "-i", str(c["silent.mp4"]), "-c", "copy",
           str(c["rotated.mp4"]))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac",
           str(c["audio_only.m4a"]))
    # Index at the front, so that cutting the file in half leaves a readable but truncated video.
    ffmpeg("-i", str(VIDEOS / "bikes.mp4"), "-t", "2", "-vf", "scale=160:68", "-c:v", "libx264",
           "-movflags", "+faststart", str(c["faststart.mp4"]))
    data = c["faststart.mp4"].read_bytes()
    c["truncated.mp4"] = folder / "truncated.mp4"
    c["truncated.mp4"].write_bytes(data[:len(data) // 2])
    c["few_bytes.mp4"] = folder / "few_bytes.mp4"
    c["few_bytes.mp4"].write_bytes((VIDEOS / "bikes.mp4").read_bytes()[:20])
    c["random.mp4"] = folder / "random.mp4"
    c["random.mp4"].write_bytes(np.random.default_rng(0).bytes(50_000))
    c["empty.mp4"] = folder / "empty.mp4"
    c["empty.mp4"].write_bytes(b"")
    # Zero frames: a well-formed MP4 (its header and index list the frames) whose coded frames are all
    # zero bytes, so FFmpeg opens it and decodes none.
    data = bytearray(c["faststart.mp4"].read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4:at], "big")
    data[at + 4:at - 4 + size] = bytes(size - 8)
    c["zero_frames.mp4"] = folder / "zero_frames.mp4"
    c["zero_frames.mp4"].write_bytes(bytes(data))
    return c


@pytest.fixture(scope="module")
def tiny_generator():
    cu.set_seed(0)
    return cu.build_generator(64, width=8, max_width=16)


@pytest.fixture(scope="module")
def vivid_generator():
    """A deterministic 'generator' with strong colours that depend on L (to stress colour paths)."""
    inputs = keras.Input((64, 64, 1))
    conv = keras.layers.Conv2D(2, 1, activation="tanh")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([[[[1.5, -1.5]]]], np.float32), np.array([0.2, 0.5], np.float32)])
    return model


def no_leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if ".partial-" in p.name]


# ---------------------------------------------------------------------------------------------
# The output file
# ---------------------------------------------------------------------------------------------
def test_output_is_h264_yuv420p_with_same_frames_rate_duration_and_audio(clips, tiny_generator,
                                                                        tmp_path):
    src, out = clips["av.mp4"], tmp_path / "out.mp4"
    result = cu.colorize_video(tiny_generator, src, out, progress=False)
    n_in, secs_in = imageio_ffmpeg.count_frames_and_secs(str(src))
    n_out, secs_out = imageio_ffmpeg.count_frames_and_secs(str(out))
    fps = video.probe(src).fps
    assert result.frames == n_in == n_out and n_in >= 25
    assert video.probe(out).fps == pytest.approx(fps)
    assert abs(secs_out - secs_in) <= 1.0 / fps
    info = ffmpeg_info(out)
    assert re.search(r"Video: h264 .*yuv420p", info)
    assert re.search(r"Audio: aac", info) and result.audio == "copy"
    assert frame_times(out) == pytest.approx(frame_times(src), abs=1e-3)
    assert no_leftovers(tmp_path) == []


def test_output_keeps_the_input_lightness(clips, tiny_generator, tmp_path):
    out = tmp_path / "out.mp4"
    cu.colorize_video(tiny_generator, clips["silent.mp4"], out, progress=False)
    pairs = list(zip(cu.read_video_frames(clips["silent.mp4"]), cu.read_video_frames(out),
                     strict=True))
    assert len(pairs) == 15
    error = np.mean([np.abs(cu.image_l(a) - cu.image_l(b)).mean() for a, b in pairs])
    assert error < 1.5  # L units; H.264 at crf 18 accounts for most of it


def test_fast_path_matches_exact_path(clips, vivid_generator, tmp_path):
    """Colour at chroma resolution over the source luma vs full-resolution LAB as for photos.
    crf=0 is lossless: what is left is the approximation itself."""
    source = clips["car.mp4"]
    outs = {}
    for exact in (False, True):
        outs[exact] = tmp_path / f"exact_{exact}.mp4"
        cu.colorize_video(vivid_generator, source, outs[exact], exact=exact, crf=0,
                          progress=False)
    frames = zip(cu.read_video_frames(outs[False]), cu.read_video_frames(outs[True]), strict=True)
    for fast, exact in frames:
        assert np.abs(cu.image_l(fast) - cu.image_l(exact)).mean() < 0.6
        assert cu.psnr(exact, fast) > 36.0
        assert np.std(fast.astype(np.float32), axis=2).mean() > 10  # really colourful


def test_odd_size_is_padded_by_one_edge_pixel(clips, tiny_generator, tmp_path):
    out = tmp_path / "odd.mp4"
    result = cu.colorize_video(tiny_generator, clips["odd.mkv"], out, progress=False)
    assert (result.width, result.height) == (66, 50)
    source = next(cu.read_video_frames(clips["odd.mkv"]))  # padded the same way
    frame = next(cu.read_video_frames(out))
    assert frame.shape == source.shape == (50, 66, 3)
    l_out = cu.image_l(frame)
    assert np.abs(l_out - cu.image_l(source)).mean() < 2.0
    # the added column and row repeat the edge
    assert np.abs(l_out[:, 65] - l_out[:, 64]).mean() < 2.0
    assert np.abs(l_out[49, :] - l_out[48, :]).mean() < 2.0


def test_rotated_input_comes_out_upright_without_rotation_metadata(clips, tiny_generator,
                                                                    tmp_path):
    assert "rotation of" in ffmpeg_info(clips["rotated.mp4"])
    out = tmp_path / "rotated.mp4"
    result = cu.colorize_video(tiny_generator, clips["rotated.mp4"], out, progress=False)
    assert (result.width, result.height) == (48, 64)
    assert "rotation of" not in ffmpeg_info(out)
    stored = next(cu.read_video_frames(clips["silent.mp4"]))  # the same pixels, unrotated
    frame = next(cu.read_video_frames(out))
    upright = np.rot90(stored, 1)  # display rotation 90 = a quarter turn counter-clockwise
    assert np.abs(cu.image_l(frame) - cu.image_l(upright)).mean() < 1.5
    assert np.abs(cu.image_l(frame) - cu.image_l(np.rot90(stored, -1))).mean() > 5


def test_variable_frame_rate_keeps_every_frame_at_its_time(tiny_generator, tmp_path):
    """tree.avi: 68 frames at irregular times on a 15 fps grid (a plain decoder repeats to 449)."""
    src, out = VIDEOS / "tree.avi", tmp_path / "tree.mp4"
    result = cu.colorize_video(tiny_generator, src, out, batch_size=16, progress=False)
    times_in, times_out = frame_times(src), frame_times(out)
    assert result.frames == len(times_in) == len(times_out) == 68
    assert times_out == pytest.approx(times_in, abs=1e-3)
    assert max(np.diff(times_in)) > 0.5  # it really is irregular
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 68


def test_video_without_audio_gives_output_without_audio(clips, tiny_generator, tmp_path):
    out = tmp_path / "silent_out.mp4"
    result = cu.colorize_video(tiny_generator, clips["silent.mp4"], out, progress=False)
    assert result.audio == "none"
    assert "Audio:" not in ffmpeg_info(out)


# ---------------------------------------------------------------------------------------------
# Bad input, interruption, batches
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, message", [
    ("audio_only.m4a", "no video stream"),
    ("truncated.mp4", "truncated or corrupt"),
    ("zero_frames.mp4", "no decodable video frames"),
    ("few_bytes.mp4", "cannot open as a video"),
    ("random.mp4", "cannot open as a video"),
    ("empty.mp4", "empty file"),
    ("missing.mp4", "no such file"),
])
def test_bad_input_raises_naming_the_file_and_leaves_nothing(clips, tiny_generator, tmp_path,
                                                             name, message):
    src = clips.get(name, tmp_path / name)
    if name == "zero_frames.mp4":  # the header is intact: FFmpeg sees a video stream
        assert video.probe(src).expected_frames > 0
    out = tmp_path / "out.mp4"
    with pytest.raises(cu.VideoReadError, match=message) as err:
        cu.colorize_video(tiny_generator, src, out, progress=False)
    assert str(src) in str(err.value)
    assert not out.exists() and no_leftovers(tmp_path) == []


def _children_alive():
    """FFmpeg processes still running under this process."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"ffmpeg" in cmd:
            alive.append(stat.parent.name)
    return alive


class _InterruptedGenerator:
    """Behaves like the tiny generator, then raises KeyboardInterrupt (as Ctrl+C would)."""

    def __init__(self, generator, calls_before):
        self.generator, self.calls_left = generator, calls_before
        self.input_shape = generator.input_shape

    def __call__(self, *args, **kwargs):
        if self.calls_left == 0:
            raise KeyboardInterrupt
        self.calls_left -= 1
        return self.generator(*args, **kwargs)


def test_interrupt_removes_the_partial_file_and_stops_ffmpeg(tiny_generator, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an older result")
    before = set(_children_alive())  # (a failed test's traceback may keep a reader alive)
    with pytest.raises(KeyboardInterrupt):
        cu.colorize_video(_InterruptedGenerator(tiny_generator, 2), VIDEOS / "carphone.mp4", out,
                          batch_size=4, progress=False)
    assert out.read_bytes() == b"an older result"  # untouched
    assert no_leftovers(tmp_path) == []
    assert set(_children_alive()) <= before


def test_output_errors_name_the_output(clips, tiny_generator, tmp_path):
    with pytest.raises(cu.VideoWriteError, match="unsupported output type"):
        cu.colorize_video(tiny_generator, clips["silent.mp4"], tmp_path / "out.avi")
    with pytest.raises(cu.VideoWriteError, match="is the input"):
        cu.colorize_video(tiny_generator, clips["silent.mp4"], clips["silent.mp4"])
    with pytest.raises(cu.VideoWriteError, match="does not exist"):
        cu.colorize_video(tiny_generator, clips["silent.mp4"], tmp_path / "no" / "out.mp4")


def test_batch_goes_on_past_failures(clips, tiny_generator, tmp_path):
    with pytest.warns(UserWarning, match="random.mp4"):
        results, failures = cu.colorize_videos(
            tiny_generator, [clips["random.mp4"], clips["silent.mp4"]], tmp_path / "out",
            progress=False)
    assert [Path(r.output).name for r in results] == ["silent_colorized.mp4"]
    assert failures == [(str(clips["random.mp4"]), failures[0][1])]
    assert "cannot open" in failures[0][1]


# ---------------------------------------------------------------------------------------------
# Scene cuts and smoothing
# ---------------------------------------------------------------------------------------------
def test_scene_cuts_of_bikes_are_found_exactly():
    """The manifest's cuts, with tolerance 0, and none in the clips without cuts."""
    assert cu.detect_scene_cuts(VIDEOS / "bikes.mp4") == [30, 76, 137, 187, 242]
    assert cu.detect_scene_cuts(VIDEOS / "carphone.mp4") == []


def test_scene_cut_detector_streams_on_two_frames():
    rng = np.random.default_rng(0)
    shot_a = rng.uniform(10, 40, (64, 64))
    shot_b = rng.uniform(60, 95, (64, 64))
    detector = video.SceneCutDetector()
    decisions = [detector.update(f) for f in (shot_a, shot_a + 1, shot_b, shot_b - 1, shot_a)]
    assert decisions == [False, False, True, False, True]


def test_temporal_smoother_averages_and_restarts_at_cuts():
    smoother = video.TemporalSmoother(0.75)
    first = smoother.update(np.full((4, 4, 2), 8.0))
    assert np.all(first == 8.0)
    second = smoother.update(np.zeros((4, 4, 2)))
    assert np.allclose(second, 6.0)  # 0.75 * 8 + 0.25 * 0
    assert np.allclose(smoother.update(np.full((4, 4, 2), -5.0), cut=True), -5.0)
    with pytest.raises(ValueError):
        video.TemporalSmoother(1.0)


def _photo_luma():
    from PIL import Image
    photo = ROOT / "resources" / "data" / "photos" / "lomiri__Bridge_by_Sander_Klootwijk.jpg"
    image = Image.open(photo).convert("L")  # 768x432, upscaled to 1920x1080
    return np.asarray(image.resize((1920, 1080), Image.Resampling.BICUBIC), np.float32)


@pytest.mark.parametrize("shift", [(0, 3), (0, -7), (2, 5), (-4, -1), (0, 13)])
def test_estimate_shift_measures_a_camera_pan_to_a_tenth_of_a_pixel(shift):
    """Two 1280x720 views of a real photo, `shift` source pixels apart; measured on the squashed
    256x256 motion images, the shift comes back in their pixels (source shift x 256 / size)."""
    luma = _photo_luma()
    dy, dx = shift
    y0, x0 = 20, 40
    crop = lambda y, x: luma[y:y + 720, x:x + 1280]  # noqa: E731
    before, after = crop(y0, x0), crop(y0 - dy, x0 - dx)
    est_dy, est_dx, confidence = video.estimate_shift(video.motion_image(before),
                                                      video.motion_image(after))
    assert abs(est_dx - dx * 256 / 1280) < 0.1
    assert abs(est_dy - dy * 256 / 720) < 0.1
    assert confidence > 0.3


def test_estimate_shift_has_low_confidence_between_unrelated_images():
    luma = _photo_luma()
    rng = np.random.default_rng(0)
    _, _, confidence = video.estimate_shift(video.motion_image(luma[:400, :400]),
                                            video.motion_image(rng.uniform(0, 255, (400, 400))))
    assert confidence < 0.1
    with pytest.raises(ValueError, match="one shape"):
        video.estimate_shift(np.zeros((8, 8)), np.zeros((8, 9)))


def test_estimate_shift_of_flat_frames_is_no_motion_with_no_confidence():
    """Black or flat frames (fades, leaders) have nothing to correlate: no shift, no NaN."""
    flat = np.full((64, 64), 16.0, np.float32)
    assert video.estimate_shift(flat, flat) == (0.0, 0.0, 0.0)
    smoother = video.TemporalSmoother(0.5)
    smoother.update(np.ones((8, 8, 2)), motion=flat)
    out = smoother.update(np.zeros((8, 8, 2)), motion=flat)
    assert np.allclose(out, 0.5) and list(smoother.shifts) == [(0.0, 0.0, 0.0)]


def test_shift_field_moves_by_whole_and_fractional_pixels():
    field = np.arange(8 * 8 * 2, dtype=np.float32).reshape(8, 8, 2)
    moved = video.shift_field(field, 2, -1)
    assert np.array_equal(moved[2:, :-1], field[:-2, 1:])
    assert np.array_equal(moved[0], moved[2])  # the edge repeats where nothing comes in
    half = video.shift_field(field, 0, 0.5)
    assert np.allclose(half[:, 1:], 0.5 * (field[:, 1:] + field[:, :-1]))
    assert np.array_equal(video.shift_field(field, 0, 0), field)


def test_smoother_moves_the_past_colour_with_the_camera():
    """A pan: frame 2 is frame 1 moved 64 px right (2 pixels of a 16x16 ab grid). With motion
    compensation the averaged colour is the past colour moved with the scene, not left behind."""
    luma = _photo_luma()[:512]
    frame1, frame2 = luma[:, 64:576], luma[:, :512]  # frame2[y, x] = frame1[y, x - 64]
    m1, m2 = video.motion_image(frame1, 128), video.motion_image(frame2, 128)
    ab1 = np.zeros((16, 16, 2), np.float32)
    ab1[:, 6:8] = 40.0  # a coloured band
    ab2 = video.shift_field(ab1, 0, 2)  # the prediction moves with the scene too
    for motion, expected_band in ((True, (8, 10)), (False, (6, 8))):
        smoother = video.TemporalSmoother(0.9, motion=motion)
        smoother.update(ab1, motion=m1)
        out = smoother.update(ab2, motion=m2)
        assert np.argmax(out[8, :, 0]) in range(*expected_band)
    assert not smoother.shifts  # motion off: nothing estimated
    smoother = video.TemporalSmoother(0.9)
    smoother.update(ab1, motion=m1)
    smoother.update(ab2, motion=m2)
    (dy, dx, confidence), = list(smoother.shifts)
    assert abs(dx - 2) < 0.05 and abs(dy) < 0.05 and confidence > 0.3


def test_stabilised_run_differs_from_per_frame_after_the_first_frame(clips, vivid_generator,
                                                                     tmp_path):
    """Smoothing is applied: the first frame (no past yet) is the same, later ones differ.
    Lossless encoding (crf=0), so that the encoder adds no differences of its own."""
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    source = clips["car.mp4"]
    cu.colorize_video(vivid_generator, source, a, stabilize=False, crf=0, progress=False)
    cu.colorize_video(vivid_generator, source, b, smoothing=0.9, crf=0, progress=False)
    diffs = [np.abs(x.astype(int) - y).mean() for x, y in
             zip(cu.read_video_frames(a), cu.read_video_frames(b), strict=True)]
    assert len(diffs) == 15
    assert diffs[0] == 0.0 and max(diffs) > 0.5


# ---------------------------------------------------------------------------------------------
# Flicker (colour distribution consistency)
# ---------------------------------------------------------------------------------------------
def _colour_frame(rgb, shape=(24, 32)):
    return np.broadcast_to(np.asarray(rgb, np.uint8), shape + (3,)).copy()


def test_flicker_is_zero_for_identical_frames():
    frame = np.random.default_rng(1).integers(0, 256, (24, 32, 3), np.uint8)
    assert cu.flicker(frame for _ in range(6)) == 0.0


def test_flicker_of_a_sudden_change_exceeds_a_slow_drift():
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 12, (24, 32, 3))

    def frame(level):
        return np.clip(np.asarray(level) + noise, 0, 255).astype(np.uint8)

    drift = [frame([100 + 2 * t, 120, 140 - 2 * t]) for t in range(10)]
    jumps = [frame([100, 120, 140] if t % 2 else [180, 60, 90]) for t in range(10)]
    assert 0 < cu.flicker(drift) < cu.flicker(jumps)
    assert cu.flicker(jumps) <= np.log(2)


def test_flicker_matches_the_definition_on_two_frames():
    red, blue = _colour_frame([200, 10, 10]), _colour_frame([10, 10, 200])
    # R and B histograms are disjoint (JS = ln 2), G is equal (JS = 0): mean over channels.
    assert cu.flicker([red, blue], distances=(1,)) == pytest.approx(2 * np.log(2) / 3)
    meter = video.FlickerMeter()
    for f in [red, red, red, red, blue]:
        meter.update(f)
    parts = meter.per_distance()
    assert parts[1] == pytest.approx(np.log(2) * 2 / 3 / 4)  # 1 of 4 pairs differs
    assert parts[4] == pytest.approx(np.log(2) * 2 / 3)  # the only pair at distance 4


def test_evaluate_video_returns_comparable_numbers(clips, vivid_generator):
    result = cu.evaluate_video(vivid_generator, clips["silent.mp4"])
    assert result["frames"] == 15
    assert result["flicker"]["original"] == pytest.approx(cu.flicker(clips["silent.mp4"]))
    for key in ("per_frame", "stabilized", "grayscale"):
        assert np.isfinite(result["psnr"][key]) and result["flicker"][key] >= 0


# ---------------------------------------------------------------------------------------------
# Plumbing
# ---------------------------------------------------------------------------------------------
def test_matroska_writer_and_reader_round_trip():
    import io
    buffer = io.BytesIO()
    frames = [(0, bytes(range(24))), (733, bytes(24)), (1133, bytes([7]) * 24)]
    writer = video._MkvWriter(buffer, 4, 4, b"I420", 1_000_000)
    for timestamp, payload in frames:
        writer.write(timestamp, payload)
    buffer.seek(0)
    reader = video._MkvReader(buffer)
    assert [(t, bytes(p)) for t, p in reader] == frames
    assert (reader.width, reader.height, reader.fourcc) == (4, 4, b"I420")


@pytest.mark.parametrize("size", [(40, 48), (150, 1100)])  # smaller than 64x64; several tiles
def test_chroma_kernel_gives_the_photo_colours_and_keeps_l(size):
    """The default path's fused kernel, decoded back to RGB, against render() (the photo path) on
    the same grey blocks and ab (strong enough to leave sRGB), and its L against the input's."""
    h, w = size
    rng = np.random.default_rng(4)
    luma = rng.uniform(16, 235, (2 * h, 2 * w)).astype(np.uint8)  # a 4:2:0 grey frame
    raw = luma.tobytes() + bytes([128]) * (h * w * 2)
    colorizer = video._FrameColorizer(None, 2 * w, 2 * h, "bt709", False, False, 0.8, 64)
    prepared, _, _ = colorizer._prepare(raw)
    ab_small = rng.uniform(-60, 60, (64, 64, 2)).astype(np.float32)
    planes = np.frombuffer(colorizer._finish(prepared, ab_small), np.uint8).reshape(3, h, w)
    y_half = video._mean_2x2(luma)
    y_out = y_half + planes[0].astype(np.float32) - 128.0
    ours = np.stack(video.ycbcr_to_rgb(y_out, planes[1], planes[2]), axis=-1) * 255.0
    grey = np.clip((y_half - 16.0) / 219.0, 0.0, 1.0)  # the blocks as a photo
    theirs = cu.render(grey, ab_small).astype(np.float32)
    assert np.abs(ours - theirs).mean() < 0.6
    assert np.percentile(np.abs(ours - theirs), 99) <= 2.0  # 8-bit Y'CbCr rounding
    l_out = cu.image_l(np.clip(ours + 0.5, 0, 255).astype(np.uint8))
    assert np.abs(l_out - cu.image_l(grey)).mean() < 0.4  # L kept


@pytest.mark.parametrize("matrix", ["bt709", "bt601", "bt2020"])
def test_ycbcr_round_trip(matrix):
    rgb = np.random.default_rng(3).uniform(0, 1, (3, 16, 16)).astype(np.float32)
    back = video.ycbcr_to_rgb(*video.rgb_to_ycbcr(*rgb, matrix), matrix)
    assert np.abs(np.stack(back) - rgb).max() < 1e-5


def test_probe_reads_size_rate_rotation_and_audio(clips):
    info = video.probe(clips["av.mp4"])
    assert (info.width, info.height, info.audio_codecs) == (64, 48, ["aac"])
    assert info.fps == pytest.approx(29.97)
    assert video.probe(clips["rotated.mp4"]).width == 48
    assert video.probe(VIDEOS / "tree.avi").matrix == "bt601"  # SD, untagged
