"""Choosing the temporal smoothing on validation clips (never on the test clips).

For each setting of colorize_video's smoothing (the weight of the past in the ab moving average;
with and without the global-motion compensation), colorizes the validation clips and reports how
far their flicker is from the original footage's own and how PSNR changes, against per-frame
colorization (no smoothing) measured in the same run.

Validation clips: camera-motion clips (pan, zoom, slow rotation; rendered from a photo, so the
colour is known) of the video split's validation clips (Video_Colorizer.ipynb: the same names,
seed and photo split), rendered at the film rate (25 fps) instead of the 2 fps used for training.
They hold camera motion only; the real test clips (bikes.mp4, carphone.mp4) are not used here.

    .venv/bin/python bench/bench_smoothing.py [--model video] [--frames 50] [--size 320 240]
                                              [--smoothing 0.5 0.6 0.7 0.8 0.9]

Columns: flicker is CDC (colorizerutils.flicker: Lei & Chen 2019); "|excess|" is the mean over the
clips of |CDC(colorized) - CDC(original)| / CDC(original), the distance from the footage's own
steadiness (lower is better); "PSNR" is the mean over clips and frames (RGB, dB), "dPSNR" its change
from per-frame.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import colorizerutils as cu  # noqa: E402


def validation_clips(seed=0, n_frames=50, size=(320, 240)):
    """{name: frames} of the video split's validation clips, rendered at the film rate."""
    photos = cu.load_image_dataset(None, seed=seed, verbose=False)
    kinds = ["pan", "zoom", "rotate"]
    sources = photos.files["train"] + photos.files["val"]
    images = photos.images["train"] + photos.images["val"]
    specs = {}
    for i, (path, image) in enumerate(zip(sources, images)):
        kind = kinds[i % 3]
        specs[f"rendered-{kind}:{Path(path).stem}"] = (image, kind, seed + i)
    # The pool load_video_frame_dataset splits: the rendered clips and the real training clip.
    videos = [p.name for p in cu.find_files(cu.DEFAULT_VIDEOS, cu.VIDEO_EXTENSIONS)]
    test = {"bikes.mp4", "carphone.mp4", "traffic_bw.mp4"}  # test clips; traffic_bw: no colour
    pool = sorted(list(specs) + [v for v in videos if v not in test])
    val = [name for name in cu.split_files(pool, 0.2, 0.0, seed)["val"] if name in specs]
    return {name: cu.render_camera_motion_clip(specs[name][0], n_frames=n_frames, out_size=size,
                                                kind=specs[name][1], seed=specs[name][2])
            for name in val}


def write_clip(frames, path, fps=25):
    """RGB uint8 frames -> H.264 (crf 12: nearly lossless), through FFmpeg's stdin."""
    import subprocess
    h, w = frames[0].shape[:2]
    subprocess.run([cu.ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p", str(path)],
                   input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames), check=True)


def score(original, colorized):
    """(CDC of the colorized clip, mean PSNR against the original)."""
    frames = list(cu.read_video_frames(colorized))
    return cu.flicker(frames), float(np.mean([cu.psnr(o, c) for o, c in zip(original, frames)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="video")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--size", type=int, nargs=2, default=(320, 240))
    parser.add_argument("--smoothing", type=float, nargs="+", default=(0.5, 0.6, 0.7, 0.8, 0.9))
    args = parser.parse_args()
    generator = cu.load_model(args.model)
    clips = validation_clips(n_frames=args.frames, size=tuple(args.size))
    configs = [("per-frame (no smoothing)", dict(stabilize=False))]
    for motion in (True, False):
        for s in args.smoothing:
            label = f"smoothing {s:g}, {'motion-compensated' if motion else 'no motion comp.'}"
            configs.append((label, dict(smoothing=s, motion=motion)))
    results = {label: [] for label, _ in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames in clips.items():
            source = Path(tmp) / "clip.mp4"
            write_clip(frames, source)
            original = list(cu.read_video_frames(source))  # as decoded, like the outputs
            reference = cu.flicker(original)
            for label, options in configs:
                out = Path(tmp) / "out.mp4"
                cu.colorize_video(generator, source, out, progress=False, preset="veryfast",
                                  **options)
                cdc, value = score(original, out)
                results[label].append((abs(cdc - reference) / reference, value))
    print(f"Model: {args.model}; {len(clips)} validation camera-motion clips, {args.frames} frames "
          f"each at {args.size[0]}x{args.size[1]}, 25 fps:")
    print("  " + ", ".join(sorted(clips)))
    base_psnr = np.mean([v for _, v in results[configs[0][0]]])
    print(f"\n{'setting':48s} {'|excess| %':>10s} {'PSNR':>7s} {'dPSNR':>7s}")
    for label, _ in configs:
        excess = 100 * np.mean([e for e, _ in results[label]])
        value = np.mean([v for _, v in results[label]])
        print(f"{label:48s} {excess:10.2f} {value:7.2f} {value - base_psnr:+7.2f}")


if __name__ == "__main__":
    main()
