"""Video: colorize a whole film in one streaming pass through FFmpeg, with temporal smoothing.

    FFmpeg decoder --4:2:0 frames + timestamps (Matroska pipe)--> Python: L, generator, colour
    FFmpeg encoder <--colour planes + timestamps (Matroska pipe)-- Python
    FFmpeg encoder: the source again (for its luma, timing and audio) + the colour -> H.264 MP4

* Every frame is colorized at full resolution and written at its own timestamp: frame count,
  frame rate, duration and a variable frame rate are the source's (the encoder's filter graph is
  driven by the source's own frames; see `_encoder_command`). Audio is copied unchanged.
* Streaming: memory is bounded by `batch_size` frames, whatever the length.
* Two colour paths. exact=True does per frame what colorize_image does for a photo (full
  resolution L, ab upsampled, inference.render). The default computes the colour at 4:2:0 chroma
  resolution, the only resolution the H.264 output keeps for colour anyway: per 2x2 block of
  pixels, L of the block, predicted ab, LAB -> R'G'B' -> Y'CbCr; the block's Cb and Cr are the
  output's, and its luma change (exact LAB luma minus the source's luma) is added by FFmpeg to the
  source's own full-resolution luma. So each 2x2 block has the exact mean luma of the LAB result
  and every pixel keeps the source's luma detail. The colour is computed by one XLA-fused kernel
  with the photo path's formulas (`_chroma_tile_kernel`). Measured against exact=True on 2 s of
  carphone.mp4 (lossless output, frames decoded to RGB): the shipped video model differs by 0.18 L
  on average (0.85 L at the 99th percentile), 0.36 luma and 0.37 chroma levels; vivid test colours
  by 0.35 L (2.2 L) (tests/test_video.py checks both paths and the kernel against render()).
* Temporal stability: an exponential moving average of the generator's 64x64 ab over time that
  moves the past colour with the camera (global motion by phase correlation) and restarts at
  scene cuts (`TemporalSmoother`, `estimate_shift`, `SceneCutDetector`).
* Flicker is measured with the colour distribution consistency of Lei & Chen 2019 (`flicker`).
"""
import dataclasses
import os
import re
import subprocess
import tempfile
import time
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm.auto import tqdm

from .colour import _LAB_EPS, _LAB_KAPPA, _XYZ_FROM_RGB
from .data import VIDEO_EXTENSIONS, VideoReadError, ffmpeg_exe, find_files, probe_video
from .inference import (TILE_COLS, TILE_ROWS, FusedKernel, as_pixels, grayscale_baseline, linear_in_gamut, load_model, model_input, predict_ab,
                        render, srgb_encode, tile_plan, upsample_tile)
from .metrics import psnr

__all__ = ["DEFAULT_SMOOTHING", "DEFAULT_CRF", "DEFAULT_PRESET", "VideoWriteError", "VideoInfo",
           "probe", "ycbcr_to_rgb", "rgb_to_ycbcr", "SceneCutDetector", "detect_scene_cuts",
           "MOTION_SIZE", "motion_image", "estimate_shift", "shift_field", "TemporalSmoother",
           "colour_histograms", "js_divergence", "FlickerMeter", "flicker",
           "VideoResult", "colorize_video", "colorize_videos", "read_video_frames",
           "evaluate_video"]

DEFAULT_SMOOTHING = 0.8   # weight of the past in the ab moving average (see TemporalSmoother)
DEFAULT_CRF = 18          # x264 quality: 18 is close to visually lossless
DEFAULT_PRESET = "medium"  # x264's own default speed/size trade-off

# Audio codecs the MP4 container can hold; any other is re-encoded to AAC (with a warning).
_MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac", "mp2"}
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


class VideoWriteError(RuntimeError):
    """The output video could not be written. The message names the file and the problem."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


# =============================================================================================
# Probing: what FFmpeg says about the input
# =============================================================================================
@dataclasses.dataclass
class VideoInfo:
    path: str
    width: int                 # as displayed (after rotation)
    height: int
    fps: float                 # nominal; the real timing is kept frame by frame
    duration: float            # seconds (0 when unknown)
    rotation: int              # degrees of the display matrix (FFmpeg rotates the frames upright)
    pix_fmt: str
    colour_range: str          # "tv" or "pc"
    matrix: str                # YCbCr matrix used throughout: "bt709", "bt601" or "bt2020"
    matrix_tag: str            # what the file says ("" when untagged)
    audio_codecs: list

    @property
    def expected_frames(self):
        """Frame count implied by duration x nominal rate (an upper bound for variable rate)."""
        return int(round(self.duration * self.fps)) if self.duration and self.fps else 0


_MATRIX_TAGS = {"bt709": "bt709", "bt470bg": "bt601", "smpte170m": "bt601", "bt601": "bt601",
                "bt2020nc": "bt2020", "bt2020c": "bt2020"}
_FFMPEG_MATRIX_NAMES = {"bt709": "bt709", "bt601": "smpte170m", "bt2020": "bt2020nc"}
# (Kr, Kb) of each YCbCr matrix; Kg = 1 - Kr - Kb.
_LUMA_WEIGHTS = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114), "bt2020": (0.2627, 0.0593)}


def probe(path):
    """Read a video's header with FFmpeg. Returns a VideoInfo; raises VideoReadError naming the file
    when it is missing, empty, not a video FFmpeg can open, or has no video stream (audio only).

    Builds on data.probe_video (size after rotation, fps, duration, rotation) and adds what the
    encoder needs: pixel format, colour range, YCbCr matrix and the audio codecs.
    """
    meta = probe_video(path)
    line, text = meta["video_stream"], meta["header"]
    width, height = meta["size"]
    fps, duration, rotation = meta["fps"], meta["duration"] or 0.0, meta["rotate"]
    fmt = re.search(r"Video: [^,]+(?:\([^)]*\))*[^,]*, (\w+)(?:\(([^)]*)\))?", line)
    pix_fmt = fmt.group(1) if fmt else ""
    props = [p.strip() for p in (fmt.group(2) or "").split(",")] if fmt else []
    colour_range = "pc" if "pc" in props or pix_fmt.startswith("yuvj") else "tv"
    matrix_tag = ""
    for p in props:
        name = p.split("/")[0]
        if name in _MATRIX_TAGS:
            matrix_tag = name
    # Untagged: the convention players follow (and swscale does not): HD is BT.709, SD BT.601.
    hd = height >= 720 or width >= 1280
    matrix = _MATRIX_TAGS.get(matrix_tag) or ("bt709" if hd else "bt601")
    audio = re.findall(r"Stream #\d+:\d+.*: Audio: (\w+)", text)
    return VideoInfo(str(path), width, height, fps, duration, rotation, pix_fmt, colour_range,
                     matrix, matrix_tag, audio)


# =============================================================================================
# Colour maths in numpy: Y'CbCr <-> R'G'B', and the luminance of the frames' 2x2 blocks
# =============================================================================================
# (LAB -> sRGB for the default path is the fused kernel _chroma_tile_kernel below: float until
# one rounding at the very end, since each extra rounding is noise that x264 spends time and bits
# on; the same formulas and gamut mapping as inference.render, tested against it.)
_LUT_LEVELS = 65535  # 16-bit tables: errors below 0.03 of an 8-bit level and 0.01 in L
_TABLES = {}


def _tables():
    """The sRGB -> linear lookup table, built once."""
    if not _TABLES:
        grid = np.arange(_LUT_LEVELS + 1, dtype=np.float64) / _LUT_LEVELS
        _TABLES["to_linear"] = np.where(grid > 0.04045, ((grid + 0.055) / 1.055) ** 2.4,
                                        grid / 12.92).astype(np.float32)
    return _TABLES


def _lookup(table, values):
    """values in [0, 1] (clipped) -> table[nearest level]."""
    index = (values * np.float32(_LUT_LEVELS) + np.float32(0.5)).astype(np.intp)
    return np.take(table, index, mode="clip")


def _luminance(r, g=None, b=None):
    """sRGB planes, float in [0, 1] -> relative luminance Y (linear light); grey when g is None."""
    to_linear = _tables()["to_linear"]
    if g is None:
        return _lookup(to_linear, r)
    k = _XYZ_FROM_RGB[1].astype(np.float32)
    y = _lookup(to_linear, r) * k[0]
    y += _lookup(to_linear, g) * k[1]
    y += _lookup(to_linear, b) * k[2]
    return y


def ycbcr_to_rgb(y, cb, cr, matrix="bt709"):
    """Limited-range ("tv") 8-bit Y'CbCr planes of one size -> R'G'B' float32 planes in [0, 1]."""
    kr, kb = _LUMA_WEIGHTS[matrix]
    kg = 1.0 - kr - kb
    ey = (np.asarray(y, np.float32) - 16.0) * np.float32(1 / 219)
    pb = (np.asarray(cb, np.float32) - 128.0) * np.float32(1 / 224)
    pr = (np.asarray(cr, np.float32) - 128.0) * np.float32(1 / 224)
    r = ey + np.float32(2 * (1 - kr)) * pr
    b = ey + np.float32(2 * (1 - kb)) * pb
    g = (ey - np.float32(kr) * r - np.float32(kb) * b) * np.float32(1 / kg)
    return tuple(np.clip(c, 0.0, 1.0) for c in (r, g, b))


def rgb_to_ycbcr(r, g, b, matrix="bt709"):
    """R'G'B' float planes in [0, 1] -> limited-range Y'CbCr float planes (not rounded)."""
    kr, kb = _LUMA_WEIGHTS[matrix]
    ey = np.float32(kr) * r + np.float32(1 - kr - kb) * g + np.float32(kb) * b
    cb = 128.0 + np.float32(224 / (2 * (1 - kb))) * (b - ey)
    cr = 128.0 + np.float32(224 / (2 * (1 - kr))) * (r - ey)
    return 16.0 + 219.0 * ey, cb, cr


def _to_u8(plane):
    """Round to 8 bits (half up) with saturation."""
    plane = plane + np.float32(0.5)
    np.clip(plane, 0.0, 255.0, out=plane)
    return plane.astype(np.uint8)


def _mean_2x2(plane):
    """(2h, 2w) uint8 or float -> (h, w) float32 block means."""
    total = plane[0::2, 0::2].astype(np.uint16 if plane.dtype == np.uint8 else np.float32)
    total += plane[1::2, 0::2]
    total += plane[0::2, 1::2]
    total += plane[1::2, 1::2]
    return total.astype(np.float32) * np.float32(0.25)


# =============================================================================================
# Scene cuts and temporal smoothing
# =============================================================================================
class SceneCutDetector:
    """Streaming hard-cut detector on small L images: is frame t the first of a new shot?

    Frame t is a cut when, against frame t-1, both the L histograms (32 bins, total variation
    distance) and the pixels (mean absolute L difference) change a lot. Using both keeps fast
    motion (pixels change, histogram does not) and fades of light (histogram shifts a little
    everywhere) from counting as cuts. On resources/data/videos the weakest true cut scores
    (0.24, 19 L) and the strongest non-cut (0.12, 8.3 L): the thresholds sit between.
    """

    def __init__(self, hist_threshold=0.17, diff_threshold=13.0, bins=32):
        self.hist_threshold = hist_threshold
        self.diff_threshold = diff_threshold
        self.bins = bins
        self._previous = None

    def features(self, l_small):
        l_small = np.asarray(l_small, np.float32)
        hist = np.histogram(l_small, bins=self.bins, range=(0.0, 100.0))[0] / l_small.size
        return l_small, hist

    def update(self, l_small):
        """Feed the next frame's small L (e.g. 64x64, in [0, 100]). True if it starts a shot."""
        current = self.features(l_small)
        previous, self._previous = self._previous, current
        if previous is None or previous[0].shape != current[0].shape:
            return False
        hist_change = 0.5 * float(np.abs(current[1] - previous[1]).sum())
        pixel_change = float(np.abs(current[0] - previous[0]).mean())
        return hist_change > self.hist_threshold and pixel_change > self.diff_threshold

    def reset(self):
        self._previous = None


def _small_l(frame, size=64):
    """A frame -> its L at size x size, as the generator sees it ([0, 100])."""
    return model_input(frame, size)[0, :, :, 0] * 50.0 + 50.0


def detect_scene_cuts(frames, size=64, **thresholds):
    """Indices of the frames where a new shot starts (never 0).

    `frames`: a video path (every frame at its own timestamp, as colorize_video sees them) or an
    iterable of frames (grey or RGB images, as for colorize_image). Each is reduced to the
    size x size L the generator would see; the decision at t uses frames t-1 and t only, so it
    streams.
    """
    if isinstance(frames, (str, os.PathLike)):
        frames = read_video_frames(frames, max_side=4 * size)
    detector = SceneCutDetector(**thresholds)
    return [t for t, frame in enumerate(frames) if detector.update(_small_l(frame, size))]


MOTION_SIZE = 256  # side of the squashed luma image the global motion is estimated on
_HANN = {}


def motion_image(plane, size=MOTION_SIZE):
    """A luma (or L) plane of any size -> size x size float32, squashed like the generator's input
    (so a shift measured on it is a shift in the ab grid's units, times ab_size / size)."""
    image = Image.fromarray(np.ascontiguousarray(plane, np.float32), "F")
    return np.asarray(image.resize((size, size), Image.Resampling.BOX), np.float32)


def _subpixel(c_minus, c_zero, c_plus):
    """Sub-pixel offset of a phase-correlation peak from its two neighbours: the sinc-peak
    estimator of Foroosh, Zerubia & Berthod, "Extension of phase correlation to subpixel
    registration", IEEE Trans. Image Processing 11(3), 2002 (on a real photo's pans here: mean
    error 0.02 pixel, against 0.12 for a parabola fit)."""
    if c_plus >= c_minus:
        return c_plus / (c_plus + c_zero) if c_plus > 0 else 0.0
    return -c_minus / (c_minus + c_zero) if c_minus > 0 else 0.0


def estimate_shift(previous, current):
    """Global translation between two frames' motion images (same shape), by phase correlation.

    Returns (dy, dx, confidence): current[y, x] ~ previous[y - dy, x - dx] in pixels of the
    images, and the height of the correlation peak (about 0.5-0.9 for a camera pan or tilt over a
    textured scene, under 0.1 between unrelated images). A Hann window keeps the image edges
    from correlating with themselves.
    """
    previous = np.asarray(previous, np.float32)
    current = np.asarray(current, np.float32)
    if previous.shape != current.shape or previous.ndim != 2:
        raise ValueError(f"expected two grey images of one shape, got {previous.shape} and "
                         f"{current.shape}")
    h, w = previous.shape
    if (h, w) not in _HANN:
        _HANN[h, w] = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    window = _HANN[h, w]
    spectra = [np.fft.rfft2((im - im.mean()) * window) for im in (previous, current)]
    cross = spectra[1] * np.conj(spectra[0])
    cross /= np.abs(cross) + 1e-9
    corr = np.fft.irfft2(cross, s=(h, w))
    iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
    peak = float(corr[iy, ix])
    dy = iy + _subpixel(corr[iy - 1, ix], peak, corr[(iy + 1) % h, ix])
    dx = ix + _subpixel(corr[iy, ix - 1], peak, corr[iy, (ix + 1) % w])
    dy = dy - h if dy > h / 2 else dy
    dx = dx - w if dx > w / 2 else dx
    return float(dy), float(dx), peak


def shift_field(field, dy, dx):
    """field (H, W[, C]) moved by (dy, dx) pixels (sub-pixel: bilinear); what comes in at the
    edges repeats the edge. out[y, x] = field[y - dy, x - dx]."""
    field = np.asarray(field, np.float32)
    h, w = field.shape[:2]
    ys = np.clip(np.arange(h, dtype=np.float32) - np.float32(dy), 0, h - 1)
    xs = np.clip(np.arange(w, dtype=np.float32) - np.float32(dx), 0, w - 1)
    y0, x0 = np.floor(ys).astype(np.intp), np.floor(xs).astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    extra = (1,) * (field.ndim - 2)
    fy = (ys - y0).reshape((h, 1) + extra)
    fx = (xs - x0).reshape((1, w) + extra)
    rows0, rows1 = field[y0], field[y1]
    top = rows0[:, x0] * (1 - fx) + rows0[:, x1] * fx
    bottom = rows1[:, x0] * (1 - fx) + rows1[:, x1] * fx
    return top * (1 - fy) + bottom * fy


class TemporalSmoother:
    """Motion-compensated exponential moving average of the predicted ab, restarted at scene cuts.

    ab_t = smoothing * move(ab_(t-1)) + (1 - smoothing) * prediction_t, where move() shifts the
    past colour by the camera's global motion between the two frames (`estimate_shift` on their
    luma, when its confidence is at least `min_confidence`; otherwise no shift). Without it a
    pan drags the colour behind the picture (about smoothing / (1 - smoothing) frames: 4 at 0.8);
    with it the colour moves with the scene, which also costs x264 fewer bits. Objects moving on
    their own still lag a little. It runs on the generator's small (e.g. 64x64) output.

    update(ab_small, cut, motion): `motion` is the frame's motion image (motion_image); None
    disables the compensation for that frame.
    """

    def __init__(self, smoothing=DEFAULT_SMOOTHING, motion=True, min_confidence=0.1):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing
        self.motion = motion
        self.min_confidence = min_confidence
        self.state = None
        # (dy, dx, confidence) of the latest updates, in ab-grid pixels (0 when not used); bounded,
        # so that a long film does not grow it
        self.shifts = deque(maxlen=1000)
        self._previous_motion = None

    def update(self, ab_small, cut=False, motion=None):
        ab_small = np.asarray(ab_small, np.float32)
        previous, self._previous_motion = self._previous_motion, motion
        if self.state is None or cut or self.state.shape != ab_small.shape:
            self.state = ab_small.copy()
            return self.state
        past = self.state
        if self.motion and motion is not None and previous is not None:
            dy, dx, confidence = estimate_shift(previous, motion)
            if confidence >= self.min_confidence:
                dy, dx = dy * ab_small.shape[0] / motion.shape[0], dx * ab_small.shape[1] / motion.shape[1]
                past = shift_field(past, dy, dx)
                self.shifts.append((dy, dx, confidence))
            else:
                self.shifts.append((0.0, 0.0, confidence))
        self.state = self.smoothing * past + (1.0 - self.smoothing) * ab_small
        return self.state


# =============================================================================================
# Flicker: colour distribution consistency
# =============================================================================================
def colour_histograms(frame):
    """(3, 256) per-channel histograms of an RGB uint8 frame, each summing to 1."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 frame, got {frame.dtype} {frame.shape}")
    pixels = frame.reshape(-1, 3)
    return np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(3)]) / len(pixels)


def js_divergence(p, q):
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) along the last axis."""
    m = 0.5 * (p + q)

    def kl(x):
        ratio = np.divide(x, m, out=np.ones_like(x), where=x > 0)
        return (x * np.log(ratio)).sum(axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class FlickerMeter:
    """Streaming colour distribution consistency (CDC); feed frames with `update`, read `value`."""

    def __init__(self, distances=(1, 2, 4), weights=None):
        self.distances = tuple(distances)
        self.weights = (tuple(weights) if weights is not None
                        else (1.0 / len(self.distances),) * len(self.distances))
        if len(self.weights) != len(self.distances):
            raise ValueError("one weight per distance")
        self._recent = deque(maxlen=max(self.distances))
        self._sums = {d: np.zeros(3) for d in self.distances}
        self._counts = {d: 0 for d in self.distances}
        self.frames = 0

    def update(self, frame):
        hist = colour_histograms(frame)
        for d in self.distances:
            if len(self._recent) >= d:
                self._sums[d] += js_divergence(self._recent[-d], hist)
                self._counts[d] += 1
        self._recent.append(hist)
        self.frames += 1

    def per_distance(self):
        """{d: mean over frames and channels of JS(frame t, frame t+d)}."""
        return {d: float(self._sums[d].mean() / self._counts[d]) for d in self.distances
                if self._counts[d]}

    @property
    def value(self):
        """Weighted over the distances that had pairs (NaN for a single frame)."""
        parts = self.per_distance()
        if not parts:
            return float("nan")
        total = sum(w for d, w in zip(self.distances, self.weights) if d in parts)
        return sum(w * parts[d] for d, w in zip(self.distances, self.weights) if d in parts) / total


def flicker(frames, distances=(1, 2, 4), weights=None):
    """Colour flicker of a clip: the colour distribution consistency (CDC) index.

    Lei & Chen, "Fully Automatic Video Colorization with Self-Regularization and Diversity",
    CVPR 2019, measure temporal consistency as the Jensen-Shannon divergence between the colour
    distributions of frames t and t+d: per RGB channel, 256-bin histograms normalised to sum 1.
    We follow the common evaluation code of later work (e.g. Liu et al. 2021, "Temporally
    Consistent Video Colorization with Deep Feature Propagation and Self-regularization
    Learning", TCVC): JS with the natural log, averaged over all pairs (t, t+d) of the clip,
    over the three channels, and over d = 1, 2, 4 with equal weights. 0 for a still clip; lower is
    steadier. Only relative values mean something: compare a colorization with the original
    footage's own CDC (natural motion changes histograms too).

    `frames`: an iterable of RGB uint8 frames (streamed: only the last max(distances) histograms
    are kept) or a video path.
    """
    if isinstance(frames, (str, os.PathLike)):
        frames = read_video_frames(frames)
    meter = FlickerMeter(distances, weights)
    for frame in frames:
        meter.update(frame)
    return meter.value


# =============================================================================================
# Matroska in and out: raw frames with their timestamps through pipes
# =============================================================================================
# FFmpeg writes raw video to a pipe as Matroska with each frame's timestamp (ms), which keeps a
# variable frame rate intact; Python writes its planes back the same way. Only the few elements
# needed are read: EBML ids and sizes, TimestampScale, the track's size and fourcc, clusters and
# (simple) blocks. Everything else (CRC-32, SeekHead, Tags, Cues, Void) is skipped.
_EBML, _SEGMENT, _INFO, _TRACKS = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x1654AE6B
_CLUSTER = 0x1F43B675
_TIMESTAMP_SCALE, _TIMESTAMP, _SIMPLEBLOCK, _BLOCKGROUP, _BLOCK = 0x2AD7B1, 0xE7, 0xA3, 0xA0, 0xA1
_TRACK_ENTRY, _VIDEO, _PIXEL_WIDTH, _PIXEL_HEIGHT, _COLOUR_SPACE = 0xAE, 0xE0, 0xB0, 0xBA, 0x2EB524


def _vint(data, pos, keep_marker=False):
    """(value, next position) of the EBML variable-length integer at data[pos]; None = unknown."""
    first = data[pos]
    length = 9 - first.bit_length()
    if first == 0 or length > 8:
        raise ValueError("invalid EBML number")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        value = None
    return value, pos + length


def _children(data):
    """[(id, payload)] of a buffer of EBML elements."""
    out, pos = [], 0
    while pos < len(data):
        eid, pos = _vint(data, pos, keep_marker=True)
        size, pos = _vint(data, pos)
        out.append((eid, data[pos:pos + size]))
        pos += size
    return out


class _MkvReader:
    """Iterate (timestamp in TimestampScale units, frame bytes) over a raw-video Matroska stream."""

    def __init__(self, stream):
        self.stream = stream
        self.timestamp_scale = 1_000_000  # ns per unit (Matroska's default: milliseconds)
        self.width = self.height = None
        self.fourcc = b""

    def _read(self, n):
        data = self.stream.read(n)
        if len(data) < n:
            raise EOFError
        return data

    def _element_header(self):
        first = self.stream.read(1)
        if not first:
            return None
        head = bytearray(first)
        head += self._read(9 - first[0].bit_length() - 1) if first[0] else b""
        eid, _ = _vint(head, 0, keep_marker=True)
        first = self._read(1)
        size_bytes = first + self._read(8 - first[0].bit_length()) if first[0] else first
        size, _ = _vint(size_bytes, 0)
        return eid, size

    def __iter__(self):
        cluster_time = 0
        while True:
            try:
                header = self._element_header()
            except EOFError:
                raise VideoReadError("(FFmpeg pipe)", "stream ended inside an element") from None
            if header is None:
                return
            eid, size = header
            if eid in (_SEGMENT, _CLUSTER, _BLOCKGROUP):
                continue  # containers: read their children in the same loop
            if size is None:
                raise ValueError(f"unsupported unknown-size element {eid:#x}")
            data = self._read(size)
            if eid == _TIMESTAMP:
                cluster_time = int.from_bytes(data, "big")
            elif eid in (_SIMPLEBLOCK, _BLOCK):
                _, pos = _vint(data, 0)  # track number (there is one track)
                relative = int.from_bytes(data[pos:pos + 2], "big", signed=True)
                yield cluster_time + relative, memoryview(data)[pos + 3:]
            elif eid == _INFO:
                for cid, payload in _children(data):
                    if cid == _TIMESTAMP_SCALE:
                        self.timestamp_scale = int.from_bytes(payload, "big")
            elif eid == _TRACKS:
                entries = [entry for tid, entry in _children(data) if tid == _TRACK_ENTRY]
                for entry in entries:
                    for cid, payload in _children(entry):
                        if cid == _VIDEO:
                            for vid, value in _children(payload):
                                if vid == _PIXEL_WIDTH:
                                    self.width = int.from_bytes(value, "big")
                                elif vid == _PIXEL_HEIGHT:
                                    self.height = int.from_bytes(value, "big")
                                elif vid == _COLOUR_SPACE:
                                    self.fourcc = bytes(value)


def _ebml_element(eid, payload):
    size = len(payload) | (1 << 56)  # 8-byte size field
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + size.to_bytes(8, "big") + payload


def _ebml_uint(eid, value):
    return _ebml_element(eid, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


class _MkvWriter:
    """Write raw planar frames with their timestamps as Matroska (V_UNCOMPRESSED + fourcc)."""

    def __init__(self, stream, width, height, fourcc, timestamp_scale):
        self.stream = stream
        header = _ebml_element(_EBML, _ebml_uint(0x4286, 1) + _ebml_uint(0x42F7, 1)
                               + _ebml_uint(0x42F2, 4) + _ebml_uint(0x42F3, 8)
                               + _ebml_element(0x4282, b"matroska") + _ebml_uint(0x4287, 4)
                               + _ebml_uint(0x4285, 2))
        segment = _SEGMENT.to_bytes(4, "big") + bytes.fromhex("01FFFFFFFFFFFFFF")  # unknown size
        info = _ebml_element(_INFO, _ebml_uint(_TIMESTAMP_SCALE, timestamp_scale)
                             + _ebml_element(0x4D80, b"colorizerutils")
                             + _ebml_element(0x5741, b"colorizerutils"))
        video = _ebml_element(_VIDEO, _ebml_uint(_PIXEL_WIDTH, width)
                              + _ebml_uint(_PIXEL_HEIGHT, height)
                              + _ebml_element(_COLOUR_SPACE, fourcc))
        track = _ebml_element(_TRACK_ENTRY, _ebml_uint(0xD7, 1) + _ebml_uint(0x73C5, 1)
                              + _ebml_uint(0x83, 1) + _ebml_uint(0x9C, 0)
                              + _ebml_element(0x86, b"V_UNCOMPRESSED") + video)
        stream.write(header + segment + info + _ebml_element(_TRACKS, track))

    def write(self, timestamp, payload):
        block_head = bytes([0x81, 0, 0, 0x80])  # track 1, relative time 0, keyframe
        timestamp_el = _ebml_uint(_TIMESTAMP, timestamp)
        block_size = (len(block_head) + len(payload)) | (1 << 56)
        cluster_size = (len(timestamp_el) + 1 + 8 + len(block_head) + len(payload)) | (1 << 56)
        self.stream.write(_CLUSTER.to_bytes(4, "big") + cluster_size.to_bytes(8, "big")
                          + timestamp_el + bytes([_SIMPLEBLOCK]) + block_size.to_bytes(8, "big")
                          + block_head)
        self.stream.write(payload)


# =============================================================================================
# FFmpeg commands
# =============================================================================================
def _even(n):
    return n + (n % 2)


def _source_filters(info):
    """Filters applied to the source in both FFmpeg processes (after FFmpeg's own autorotation).

    Odd sizes: H.264 4:2:0 stores whole 2x2 chroma blocks, so an odd width or height is padded by
    one column or row that repeats the edge (fillborders smear): every source pixel is kept and
    unchanged; the output is one pixel wider or taller. Then limited-range 4:2:0 Y'CbCr in the
    matrix the output will be tagged with (no matrix conversion for Y'CbCr sources).
    """
    filters = []
    pad_w, pad_h = info.width % 2, info.height % 2
    if pad_w or pad_h:
        filters.append(f"pad={_even(info.width)}:{_even(info.height)}:0:0,"
                       f"fillborders=right={pad_w}:bottom={pad_h}:mode=smear")
    ffname = _FFMPEG_MATRIX_NAMES[info.matrix]
    filters.append(f"scale=in_color_matrix={ffname}:out_color_matrix={ffname}:out_range=tv,"
                   "format=yuv420p")
    return ",".join(filters)


def _decoder_command(info, max_side=None):
    filters = _source_filters(info)
    scale = min(1.0, max_side / max(info.width, info.height)) if max_side else 1.0
    if scale < 1.0:  # a smaller even size, straight from the source
        width = max(2, 2 * round(info.width * scale / 2))
        height = max(2, 2 * round(info.height * scale / 2))
        ffname = _FFMPEG_MATRIX_NAMES[info.matrix]
        filters = (f"scale={width}:{height}:flags=area:in_color_matrix={ffname}:"
                   f"out_color_matrix={ffname}:out_range=tv,format=yuv420p")
    # One decoding thread: decoding is a small part of the work, and each frame thread of the
    # H.264 decoder holds frames (about 100 MB at 1080p).
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-threads", "1",
            "-i", info.path,
            "-map", "0:V:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-vf", filters,
            "-c:v", "rawvideo", "-pix_fmt", "yuv420p", "-f", "matroska", "pipe:1"]


def _encoder_command(info, output, exact, crf, preset, audio, timestamp_unit_us=1000):
    """FFmpeg reads the source (input 0) again for its timing, luma and audio, and Python's colour
    planes (input 1, Matroska on stdin); it blends them and encodes H.264 4:2:0.

    The graph is driven by the source's frames: `blend` emits one frame per source frame, at its
    timestamp, with the latest colour frame at or before it. Python's timestamps are the
    decoder's, rounded by Matroska to its unit (1 ms), so they are moved half a unit earlier; each
    then falls in (previous frame, its frame]. Grain merge is A + B - 128 per plane:
      fast:  base = source with neutral chroma;  colour = (luma correction + 128, Cb, Cr) at half
             size, upscaled (bilinear) -> Y = Y_source + correction, CbCr = Python's.
      exact: base = flat 128 everywhere;  colour = full 4:2:0 frame -> the frame is Python's.
    """
    container = _CONTAINERS[output.suffix.lower()]
    width, height = _even(info.width), _even(info.height)
    neutral = "y=128:u=128:v=128" if exact else "u=128:v=128"
    colour = "format=yuv420p" if exact else f"scale={width}:{height}:flags=bilinear,format=yuv420p"
    graph = (f"[0:V:0]{_source_filters(info)},lutyuv={neutral}[base];"
             f"[1:v]settb=1/1000000,setpts=PTS-{timestamp_unit_us / 2:g},{colour}[colour];"
             f"[base][colour]blend=all_mode=grainmerge[out]")
    ffname = _FFMPEG_MATRIX_NAMES[info.matrix]
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
           "-threads", "1", "-i", info.path, "-f", "matroska", "-i", "pipe:0",
           "-filter_complex", graph, "-map", "[out]", "-fps_mode", "passthrough",
           "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
           "-colorspace", ffname, "-color_range", "tv"]
    if audio == "copy":
        cmd += ["-map", "0:a?", "-c:a", "copy"]
    elif audio == "aac":
        cmd += ["-map", "0:a?", "-c:a", "aac", "-b:a", "192k"]
    cmd += ["-map_metadata", "0", "-sn", "-dn"]
    if container in ("mp4", "mov"):
        cmd += ["-movflags", "+faststart"]
    return cmd + ["-f", container, str(output)]


def _audio_plan(info, output):
    """'copy', 'aac' (the codec cannot go in MP4: re-encoded, with a warning) or 'none'."""
    if not info.audio_codecs:
        return "none"
    if _CONTAINERS[output.suffix.lower()] == "mp4" and not set(info.audio_codecs) <= _MP4_AUDIO:
        warnings.warn(f"{info.path}: audio codec {', '.join(info.audio_codecs)} cannot be stored "
                      f"in {output.suffix}; re-encoding it to AAC 192 kb/s (use .mkv or .mov to "
                      "copy it unchanged)", stacklevel=3)
        return "aac"
    return "copy"


def _chroma_tile_kernel(luminance, y_half, ab_small, wy, wx, luma_weights):
    """The default path's colour for one tile of 2x2 blocks, fused by XLA into one loop.

    luminance: Y (linear) of each block; y_half: the block's mean luma (8-bit levels); ab_small
    (S, S, 2) with the tile's bilinear weights wy, wx; luma_weights: (Kr, Kb) of the matrix.
    -> uint8 (3, R, C): the luma correction + 128, Cb and Cr, rounded once at the end. The same
    LAB -> sRGB as render() (inference.linear_in_gamut, srgb_encode), with f(Y) from Y directly.
    """
    a, b = upsample_tile(ab_small, wy, wx)
    # f(Y) as colour._lab_f computes it, but the cube root as exp(log / 3): XLA vectorises that,
    # and this kernel runs 1.3-1.5x faster than with tf.pow.
    cube_root = tf.exp(tf.math.log(tf.maximum(luminance, _LAB_EPS)) * (1.0 / 3.0))
    fy = tf.where(luminance > _LAB_EPS, cube_root, _LAB_KAPPA * luminance + 16.0 / 116.0)
    red, green, blue = [srgb_encode(c) for c in linear_in_gamut(fy, luminance, a, b)]
    kr, kb = luma_weights[0], luma_weights[1]
    ey = kr * red + (1.0 - kr - kb) * green + kb * blue
    cb = 128.0 + 112.0 / (1.0 - kb) * (blue - ey)
    cr = 128.0 + 112.0 / (1.0 - kr) * (red - ey)
    correction = (16.0 + 219.0 * ey) - y_half + 128.0
    planes = tf.stack([correction, cb, cr])
    return tf.cast(tf.clip_by_value(planes + 0.5, 0.0, 255.0), tf.uint8)


_chroma_kernel = FusedKernel(_chroma_tile_kernel)


# =============================================================================================
# Per-frame colour
# =============================================================================================
class _FrameColorizer:
    """Turns decoded 4:2:0 frames into the planes the encoder blends, a batch at a time.

    Keeps the state that runs across frames: the scene-cut detector, the ab smoother and the last
    frame (a frame identical to the previous one, as variable-frame-rate sources often repeat, is
    not colorized again).
    """

    def __init__(self, generator, width, height, matrix, exact, stabilize, smoothing, image_size,
                 motion=True):
        self.generator = generator
        self.width, self.height = width, height
        self.matrix = matrix
        self.exact = exact
        self.image_size = image_size
        self.cut_detector = SceneCutDetector()
        self.smoother = TemporalSmoother(smoothing, motion) if stabilize else None
        self.cuts = []
        self.frames = 0
        self.repeated = 0
        self._plans = {}
        self._luma_weights = np.array(_LUMA_WEIGHTS[matrix], np.float32)
        self._last_input = None
        self._last_output = None

    def _planes(self, raw):
        h, w = self.height, self.width
        frame = np.frombuffer(raw, np.uint8)
        y = frame[:h * w].reshape(h, w)
        u = frame[h * w:h * w * 5 // 4].reshape(h // 2, w // 2)
        v = frame[h * w * 5 // 4:].reshape(h // 2, w // 2)
        return y, u, v

    def _prepare(self, raw):
        """Frame bytes -> (what _finish needs, the generator's input (1, S, S, 1), the motion
        image or None)."""
        y, u, v = self._planes(raw)
        if self.exact:  # the full frame as RGB, then exactly what colorize_image does
            up = (lambda c: np.repeat(np.repeat(c, 2, axis=0), 2, axis=1))
            rgb = np.stack(ycbcr_to_rgb(y, up(u), up(v), self.matrix), axis=-1)
            pixels = as_pixels((rgb * 255.0 + 0.5).astype(np.uint8))
            return pixels, model_input(pixels, self.image_size), self._motion_image(_mean_2x2(y))
        # Chroma resolution: each 2x2 block of luma with its chroma sample, as float RGB.
        y_half = _mean_2x2(y)
        if not (np.any(u != 128) or np.any(v != 128)):  # black-and-white film: R = G = B
            grey = np.clip((y_half - 16.0) * np.float32(1 / 219), 0.0, 1.0)
            luminance = _luminance(grey)
            pixels = grey
        else:
            rgb = ycbcr_to_rgb(y_half, u, v, self.matrix)
            luminance = _luminance(*rgb)
            pixels = np.stack(rgb, axis=-1)
        return (luminance, y_half), model_input(pixels, self.image_size), self._motion_image(y_half)

    def _motion_image(self, luma):
        """The frame's image for global motion estimation (None when not smoothing), from the
        2x2 means of its luma in both colour paths, so that both move the colour alike."""
        if self.smoother is None or not self.smoother.motion:
            return None
        return motion_image(luma)

    def _finish(self, prepared, ab_small):
        """Colour of one frame -> the bytes of the planes sent to the encoder."""
        if self.exact:  # a whole 4:2:0 frame, from render() as for photos
            rgb = render(prepared, ab_small).astype(np.float32) * np.float32(1 / 255)
            y_out, cb, cr = rgb_to_ycbcr(rgb[..., 0], rgb[..., 1], rgb[..., 2], self.matrix)
            return b"".join(p.tobytes() for p in (_to_u8(y_out), _to_u8(_mean_2x2(cb)),
                                                  _to_u8(_mean_2x2(cr))))
        # Half size, in float until the one rounding: the luma correction (+128) to add to the
        # source's luma, and the chroma; tile by tile in one fused kernel.
        luminance, y_half = prepared
        h, w = luminance.shape
        ab_small = np.asarray(ab_small, np.float32)
        key = (h, w, ab_small.shape)
        if key not in self._plans:
            self._plans[key] = tile_plan(h, w, ab_small.shape)
        padded_w = -(-w // TILE_COLS) * TILE_COLS
        out = np.empty((3, h, w), np.uint8)
        bands = {}
        for top, rows, left, cols, wy_tile, wx_tile in self._plans[key]:
            if top not in bands:
                bands.clear()
                bands[top] = [np.zeros((TILE_ROWS, padded_w), np.float32) for _ in range(2)]
                bands[top][0][:rows, :w] = luminance[top:top + rows]
                bands[top][1][:rows, :w] = y_half[top:top + rows]
            lum_band, luma_band = bands[top]
            planes = _chroma_kernel(lum_band[:, left:left + TILE_COLS],
                                    luma_band[:, left:left + TILE_COLS], ab_small, wy_tile,
                                    wx_tile, self._luma_weights)
            out[:, top:top + rows, left:left + cols] = planes.numpy()[:, :rows, :cols]
        return out.tobytes()

    def process(self, batch, pool=None):
        """[(timestamp, frame bytes)] -> [(timestamp, planes bytes)], in order. The per-frame
        work runs on `pool` (a thread pool: numpy, Pillow and TensorFlow release the GIL); scene
        cuts and smoothing, which carry state from frame to frame, run in order."""
        run = pool.map if pool is not None else map
        fresh = []
        for i, (_, raw) in enumerate(batch):
            if self._last_input is None or raw != self._last_input:
                fresh.append(i)
            self._last_input = raw
        prepared = list(run(self._prepare, [batch[i][1] for i in fresh]))
        if prepared:
            ab_small = predict_ab(self.generator, np.concatenate([p[1] for p in prepared]))
        jobs = []
        for k, i in enumerate(fresh):
            state, l_input, motion = prepared[k]
            cut = self.cut_detector.update(l_input[0, :, :, 0] * 50.0 + 50.0)
            if cut:
                self.cuts.append(self.frames + i)
            ab = (ab_small[k] if self.smoother is None
                  else self.smoother.update(ab_small[k], cut, motion))
            jobs.append((state, ab))
        outputs = dict(zip(fresh, run(self._finish, *zip(*jobs)))) if jobs else {}
        results = []
        for i, (timestamp, _) in enumerate(batch):
            if i in outputs:
                self._last_output = outputs[i]
            else:
                self.repeated += 1
            results.append((timestamp, self._last_output))
        self.frames += len(batch)
        return results


# =============================================================================================
# The pipeline
# =============================================================================================
@dataclasses.dataclass
class VideoResult:
    """What colorize_video did."""
    input: str
    output: str
    frames: int
    repeated_frames: int       # identical to the previous frame: colour reused, not recomputed
    scene_cuts: list           # frame indices where a new shot starts
    width: int                 # output size (odd input sizes are padded by one pixel)
    height: int
    audio: str                 # "copy", "aac" or "none"
    seconds: float
    exact: bool
    stabilize: bool

    @property
    def frames_per_second(self):
        return self.frames / self.seconds if self.seconds else float("nan")


def _temp_output(output):
    return output.with_name(f".{output.stem}.partial-{os.getpid()}{output.suffix}")


def _stop(process):
    if process is not None and process.poll() is None:
        process.kill()
    if process is not None:
        process.wait()


def _stderr_text(handle, lines=3):
    """The last lines FFmpeg wrote, without its "[h264 @ 0x55...]" prefixes."""
    handle.seek(0)
    text = handle.read().decode("utf-8", "replace").strip().splitlines()
    text = [re.sub(r"\[[^\]]* @ 0x[0-9a-f]+\] *", "", line).strip() for line in text]
    return " | ".join(line for line in text[-lines:] if line)


def colorize_video(generator, input_path, output_path, batch_size=8, stabilize=True,
                   smoothing=DEFAULT_SMOOTHING, exact=False, crf=DEFAULT_CRF,
                   preset=DEFAULT_PRESET, image_size=None, overwrite=True, threads=None,
                   progress=True, motion=True):
    """Colorize every frame of a video and write H.264 (libx264, yuv420p) with the audio copied.

    generator: a Keras generator, a shipped model's name (mse, gan, video) or a saved one's path. batch_size: frames per generator
    call (memory stays bounded by it, whatever the video's length). stabilize/smoothing: the ab
    moving average over time (TemporalSmoother), restarted at scene cuts. exact: full-resolution
    LAB recombination as for photos (slower) instead of colour at 4:2:0 chroma resolution over
    the source's own luma (the default; see the module docstring). crf/preset: x264 settings.
    threads: Python threads for the per-frame colour work (default: up to 4, one per core).
    Output: .mp4 (default choice), .m4v, .mov or .mkv; written under a temporary name in the same
    folder and renamed when complete, so an interrupted run leaves nothing at output_path.
    Returns a VideoResult. Raises VideoReadError (naming the input) for an unusable input and
    VideoWriteError (naming the output) when the output cannot be written.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.suffix.lower() not in _CONTAINERS:
        raise VideoWriteError(output_path, f"unsupported output type {output_path.suffix!r}; use "
                                           f"{', '.join(sorted(_CONTAINERS))}")
    if output_path.exists() and input_path.exists() and output_path.samefile(input_path):
        raise VideoWriteError(output_path, "is the input file; choose another output name")
    if output_path.exists() and not overwrite:
        raise VideoWriteError(output_path, "already exists (pass overwrite=True to replace it)")
    if not output_path.parent.is_dir():
        raise VideoWriteError(output_path, f"folder {output_path.parent} does not exist")
    info = probe(input_path)
    if isinstance(generator, (str, os.PathLike)):
        generator = load_model(generator)
    image_size = image_size or generator.input_shape[1]
    audio = _audio_plan(info, output_path)
    temp = _temp_output(output_path)
    decoder = encoder = None
    threads = threads or min(4, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(threads) if threads > 1 and not exact else None
    start = time.perf_counter()
    with tempfile.TemporaryFile() as dec_log, tempfile.TemporaryFile() as enc_log:
        try:
            decoder = subprocess.Popen(_decoder_command(info), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=dec_log, bufsize=1 << 20)
            reader = _MkvReader(decoder.stdout)
            frames = iter(reader)
            first = next(frames, None)
            if first is None:
                decoder.wait()
                reason = _stderr_text(dec_log) or "the video stream has no frames"
                raise VideoReadError(input_path, f"no decodable video frames ({reason})")
            width, height = reader.width, reader.height
            colorizer = _FrameColorizer(generator, width, height, info.matrix, exact, stabilize,
                                        smoothing, image_size, motion)
            encoder = subprocess.Popen(
                _encoder_command(info, temp, exact, crf, preset, audio,
                                 reader.timestamp_scale / 1000),
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=enc_log, bufsize=1 << 20)
            writer = _MkvWriter(encoder.stdin, width if exact else width // 2,
                                height if exact else height // 2, b"I420" if exact else b"444P",
                                reader.timestamp_scale)
            bar = tqdm(total=info.expected_frames or None, unit="frame", disable=not progress,
                       desc=input_path.name, dynamic_ncols=True)
            batch = [(first[0], bytes(first[1]))]
            with bar:
                for timestamp, raw in frames:
                    batch.append((timestamp, bytes(raw)))
                    if len(batch) == batch_size:
                        _write_batch(writer, colorizer.process(batch, pool), encoder, enc_log,
                                     output_path)
                        bar.update(len(batch))
                        batch = []
                if batch:
                    _write_batch(writer, colorizer.process(batch, pool), encoder, enc_log,
                                     output_path)
                    bar.update(len(batch))
                bar.total = colorizer.frames
                bar.refresh()
            decoder.wait()
            decode_errors = _stderr_text(dec_log, lines=2)
            if decoder.returncode != 0 or (
                    decode_errors and colorizer.frames < 0.9 * info.expected_frames):
                raise VideoReadError(input_path, "truncated or corrupt: FFmpeg decoded "
                                     f"{colorizer.frames} of about {info.expected_frames} frames "
                                     f"and reported: {decode_errors or decoder.returncode}")
            if decode_errors:
                warnings.warn(f"{input_path}: FFmpeg reported decoding errors; some frames may "
                              f"show glitches: {decode_errors}", stacklevel=2)
            try:
                encoder.stdin.close()
            except BrokenPipeError:
                pass
            if encoder.wait() != 0:
                raise VideoWriteError(output_path,
                                      f"FFmpeg could not encode: {_stderr_text(enc_log)}")
            os.replace(temp, output_path)
        except BaseException:
            _stop(decoder)
            if encoder is not None:
                try:
                    encoder.stdin.close()
                except OSError:
                    pass
            _stop(encoder)
            temp.unlink(missing_ok=True)
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    return VideoResult(str(input_path), str(output_path), colorizer.frames, colorizer.repeated,
                       colorizer.cuts, width, height, audio,
                       time.perf_counter() - start, exact, stabilize)


def _write_batch(writer, results, encoder, enc_log, output_path):
    try:
        for timestamp, planes in results:
            writer.write(timestamp, planes)
    except BrokenPipeError:
        encoder.wait()
        raise VideoWriteError(output_path, f"FFmpeg stopped: {_stderr_text(enc_log)}") from None


def colorize_videos(generator, inputs, output_dir, suffix="_colorized", extension=".mp4",
                    **options):
    """Colorize several videos (paths, or folders searched for video files) into output_dir.

    Goes on past failures: each unusable input is reported with a warning that names it. Returns
    (results, failures) with failures a list of (input path, reason).
    """
    if isinstance(generator, (str, os.PathLike)):
        generator = load_model(generator)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs:
        item = Path(item)
        paths += find_files(item, VIDEO_EXTENSIONS) if item.is_dir() else [item]
    results, failures = [], []
    for path in paths:
        try:
            output = output_dir / f"{path.stem}{suffix}{extension}"
            results.append(colorize_video(generator, path, output, **options))
        except (VideoReadError, VideoWriteError) as err:
            warnings.warn(f"skipping {err}", stacklevel=2)
            failures.append((str(path), err.reason))
    return results, failures


# =============================================================================================
# Reading frames back and evaluating
# =============================================================================================
def read_video_frames(path, max_side=None):
    """Yield every frame of a video as RGB uint8 (H, W, 3), each at its own timestamp (a variable
    frame rate is not resampled), decoded the way colorize_video decodes: same matrix, same
    padding of odd sizes. `max_side` downscales inside FFmpeg. Streams: one frame at a time."""
    info = probe(path)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(_decoder_command(info, max_side), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=log, bufsize=1 << 20)
        try:
            reader = _MkvReader(process.stdout)
            for _, raw in reader:
                h, w = reader.height, reader.width
                frame = np.frombuffer(raw, np.uint8)
                up = (lambda c: np.repeat(np.repeat(c.reshape(h // 2, w // 2), 2, 0), 2, 1))
                rgb = ycbcr_to_rgb(frame[:h * w].reshape(h, w), up(frame[h * w:h * w * 5 // 4]),
                                   up(frame[h * w * 5 // 4:]), info.matrix)
                yield (np.stack(rgb, axis=-1) * 255.0 + 0.5).astype(np.uint8)
        finally:
            _stop(process)


def evaluate_video(generator, path, smoothing=DEFAULT_SMOOTHING, exact=False, batch_size=8,
                   crf=DEFAULT_CRF, preset="veryfast", work_dir=None, progress=False,
                   motion=True):
    """Per-frame vs stabilised colorization of a colour clip, scored against the original.

    Both are produced by colorize_video (so H.264 is included), decoded, and compared frame by
    frame with the original: mean PSNR (RGB, dB) and flicker (CDC, see `flicker`). The original's
    own CDC is the reference a steady colorization should approach; the grayscale baseline
    (ab = 0) PSNR is given for scale. Returns a dict.
    """
    if isinstance(generator, (str, os.PathLike)):
        generator = load_model(generator)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        runs = {}
        for name, stabilize in (("per_frame", False), ("stabilized", True)):
            out = Path(tmp) / f"{name}.mp4"
            runs[name] = colorize_video(generator, path, out, batch_size=batch_size,
                                        stabilize=stabilize, smoothing=smoothing, exact=exact,
                                        motion=motion,
                                        crf=crf, preset=preset, progress=progress)
        meters = {k: FlickerMeter() for k in ("original", "per_frame", "stabilized", "grayscale")}
        psnrs = {k: [] for k in ("per_frame", "stabilized", "grayscale")}
        streams = [read_video_frames(path)] + [read_video_frames(runs[k].output)
                                               for k in ("per_frame", "stabilized")]
        for original, per_frame, stabilized in zip(*streams, strict=True):
            grey_rgb = grayscale_baseline(original)
            for name, frame in (("original", original), ("per_frame", per_frame),
                                ("stabilized", stabilized), ("grayscale", grey_rgb)):
                meters[name].update(frame)
                if name != "original":
                    psnrs[name].append(psnr(original, frame))
    result = {"video": str(path), "frames": meters["original"].frames,
              "scene_cuts": runs["stabilized"].scene_cuts, "smoothing": smoothing,
              "flicker": {k: m.value for k, m in meters.items()},
              "psnr": {k: float(np.mean(v)) for k, v in psnrs.items()}}
    excess = {k: result["flicker"][k] - result["flicker"]["original"]
              for k in ("per_frame", "stabilized")}
    result["flicker_excess"] = excess  # above the footage's own: what the colorization adds
    return result
