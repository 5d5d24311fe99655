"""Benchmark: colorizing a 1080p clip end to end (decode, colorize, encode H.264) against FFmpeg's
own decode + H.264 encode of the same clip with the same x264 settings, in the same run.

    python bench/bench_video.py [--seconds 4] [--preset medium] [--crf 18] [--model NAME|PATH]
                                [--exact-seconds 1] [--memory-seconds 2 8]

The clip is a slow pan over a real photo from resources/data/photos, upscaled to 1920x1080 by
FFmpeg (25 fps), in black and white (what a customer brings; --colour for a colour clip). The generator is --model, else the shipped video model, else a shipped image model, else an
untrained one of the default architecture. The Python side's speed does not depend on the weights,
but x264's does (it spends more time on busier colour), so use a trained model for numbers. Each measurement runs in a
fresh process; the baseline is measured before and after the colorization, and the ratio uses
their mean (the machine may be shared). Peak memory: the peak of (Python + its FFmpeg children)
resident memory sampled every 0.1 s, and getrusage's peaks. --memory-seconds colorizes two clip
lengths at 640x360 to show that memory does not grow with the length.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTO = ROOT / "resources" / "data" / "photos" / "lomiri__Bridge_by_Sander_Klootwijk.jpg"


def make_clip(path, seconds, width=1920, height=1080, fps=25, colour=False):
    """A slow horizontal pan over the photo, upscaled; black and white (what a customer brings)
    unless `colour`; high quality H.264 (crf 16)."""
    import imageio_ffmpeg
    scale = f"scale={int(width * 1.5)}:-2:flags=lanczos"
    crop = f"crop={width}:{height}:'(iw-{width})*t/{seconds}':'(ih-{height})/2'"
    grey = "" if colour else "format=gray,"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-loop", "1",
                    "-framerate", str(fps), "-i", str(PHOTO),
                    "-vf", f"{scale},{crop},{grey}format=yuv420p", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", str(path)], check=True)


# =============================================================================================
# Workers (each in a fresh process): print one JSON line
# =============================================================================================
def _status(pid):
    """{field: kB} of /proc/<pid>/status (VmRSS, VmHWM), {} if gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return {line.split(":")[0]: int(line.split()[1]) for line in fh
                    if line.startswith(("VmRSS:", "VmHWM:"))}
    except (OSError, ValueError, IndexError):
        return {}


def _ffmpeg_children(pid):
    """FFmpeg processes started by `pid` (once exec'd: a forked child still shows Python's memory)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and "ffmpeg" in os.readlink(stat.parent / "exe"):
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


class PeakMemory:
    """Every `interval` s: RSS of this process + its FFmpeg children (concurrent peak), and each
    child's own peak (VmHWM, exact whatever the sampling)."""

    def __init__(self, interval=0.05):
        self.interval, self.peak_total_kb, self.child_peaks_kb = interval, 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = os.getpid()
        while not self._stop.is_set():
            total = _status(me).get("VmRSS", 0)
            for child in _ffmpeg_children(me):
                status = _status(child)
                total += status.get("VmRSS", 0)
                self.child_peaks_kb[child] = max(self.child_peaks_kb.get(child, 0),
                                                 status.get("VmHWM", 0))
            self.peak_total_kb = max(self.peak_total_kb, total)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def report(self):
        peaks = sorted(self.child_peaks_kb.values(), reverse=True)
        return {"peak_sampled_mb": self.peak_total_kb / 1024,
                "peak_python_mb": _status(os.getpid()).get("VmHWM", 0) / 1024,
                "peak_children_mb": [round(p / 1024) for p in peaks]}


def _usage():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own, kids


def worker_ffmpeg(clip, out, preset, crf):
    import imageio_ffmpeg  # not colorizerutils: this process should not hold TensorFlow
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-map", "0:v:0", "-c:v",
           "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p", "-movflags",
           "+faststart", str(out)]
    start = time.perf_counter()
    with PeakMemory() as peak:
        subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    own, kids = _usage()
    frames = imageio_ffmpeg.count_frames_and_secs(str(out))[0]
    return {"wall": wall, "cpu_children": kids.ru_utime + kids.ru_stime, "frames": frames,
            **peak.report()}


def worker_colorize(clip, out, preset, crf, model, exact):
    import colorizerutils as cu
    generator = load_generator(model)
    # Warm up TensorFlow and the kernels on a tiny clip, outside the timing.
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "warm.mp4"
        subprocess.run([cu.ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-t", "0.2",
                        "-vf", "scale=320:180", str(small)], check=True)
        cu.colorize_video(generator, small, Path(tmp) / "warm_out.mp4", exact=exact,
                          progress=False)
    base_own, base_kids = _usage()
    base_rss = _status(os.getpid()).get("VmRSS", 0) / 1024
    start = time.perf_counter()
    with PeakMemory() as peak:
        result = cu.colorize_video(generator, clip, out, exact=exact, crf=crf, preset=preset,
                                   progress=False)
    wall = time.perf_counter() - start
    own, kids = _usage()
    return {"wall": wall, "frames": result.frames,
            "cpu_python": own.ru_utime + own.ru_stime - base_own.ru_utime - base_own.ru_stime,
            "cpu_children": (kids.ru_utime + kids.ru_stime
                             - base_kids.ru_utime - base_kids.ru_stime),
            "rss_before_mb": base_rss, **peak.report()}


def _default_model():
    """The shipped video model, else a shipped image model, else None (untrained)."""
    import colorizerutils as cu
    present = cu.shipped_models(["video", "gan", "mse"])
    return present[0] if present else None


def load_generator(model):
    import colorizerutils as cu
    model = model or _default_model()
    if model:
        return cu.load_model(model)
    config = cu.TrainConfig()
    return cu.build_generator(config.image_size, config.width, config.max_width)


def describe_model(model):
    import colorizerutils as cu
    model = model or _default_model()
    if model:
        return f"{model} (shipped)" if model in cu.SHIPPED_MODELS else str(model)
    config = cu.TrainConfig()
    return (f"UNTRAINED generator, default architecture (width {config.width}, max "
            f"{config.max_width}): the Python side does not depend on the weights, but x264's "
            "time depends on the colours it encodes; pass --model for representative numbers")


def run_worker(kind, *args):
    cmd = [sys.executable, __file__, "--worker", kind, *[str(a) for a in args]]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(text.strip().splitlines()[-1])


# =============================================================================================
# Main
# =============================================================================================
def machine():
    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return f"{cpu}, {os.cpu_count()} cores, load average {load[0]:.1f} at start"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="1080p clip length")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--model", default="", help="shipped model name or generator path")
    parser.add_argument("--colour", action="store_true",
                        help="a colour clip instead of black and white")
    parser.add_argument("--exact-seconds", type=float, default=1.0,
                        help="also time exact=True on a clip this long (0: skip)")
    parser.add_argument("--memory-seconds", type=float, nargs="*", default=(2.0, 8.0),
                        help="640x360 clip lengths for the memory-vs-length check (none: skip)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, *rest = args.worker
        if kind == "ffmpeg":
            print(json.dumps(worker_ffmpeg(rest[0], rest[1], rest[2], int(rest[3]))))
        else:
            print(json.dumps(worker_colorize(rest[0], rest[1], rest[2], int(rest[3]), rest[4],
                                             kind == "exact")))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "pan1080.mp4"
        make_clip(clip, args.seconds, colour=args.colour)
        model = args.model
        print(f"Machine: {machine()}")
        kind = "colour" if args.colour else "black and white"
        print(f"Clip: {args.seconds:g} s slow pan over {PHOTO.name}, {kind}, 1920x1080, 25 fps, "
              "H.264")
        print(f"x264: preset {args.preset}, crf {args.crf}; model: {describe_model(model)}\n")
        base1 = run_worker("ffmpeg", clip, tmp / "ff1.mp4", args.preset, args.crf)
        fast = run_worker("fast", clip, tmp / "fast.mp4", args.preset, args.crf, model)
        base2 = run_worker("ffmpeg", clip, tmp / "ff2.mp4", args.preset, args.crf)
        # FFmpeg re-encoding our output: the cost of H.264 on these colours, whoever makes them.
        floor = run_worker("ffmpeg", tmp / "fast.mp4", tmp / "ff3.mp4", args.preset, args.crf)
        base_fps = (base1["frames"] / base1["wall"] + base2["frames"] / base2["wall"]) / 2
        rows = [("FFmpeg decode + x264 (before)", base1, None),
                ("colorize_video (default: chroma-resolution colour)", fast, None),
                ("FFmpeg decode + x264 (after)", base2, None),
                ("FFmpeg decode + x264 of the colorized output", floor, None)]
        if args.exact_seconds:
            short = tmp / "short1080.mp4"
            make_clip(short, args.exact_seconds, colour=args.colour)
            base_s = run_worker("ffmpeg", short, tmp / "ff_s.mp4", args.preset, args.crf)
            exact = run_worker("exact", short, tmp / "exact.mp4", args.preset, args.crf, model)
            rows += [(f"FFmpeg decode + x264, {args.exact_seconds:g} s clip", base_s, None),
                     ("colorize_video(exact=True), same clip", exact,
                      base_s["frames"] / base_s["wall"])]
        print(f"{'run':52s} {'frames':>6s} {'wall s':>7s} {'fps':>6s} {'CPU s/frame':>11s} "
              f"{'ratio':>6s} {'peak MB':>8s}")
        for name, r, reference in rows:
            fps = r["frames"] / r["wall"]
            cpu = (r.get("cpu_python", 0.0) + r["cpu_children"]) / r["frames"]
            ratio = fps / (reference or base_fps)
            print(f"{name:52s} {r['frames']:6d} {r['wall']:7.1f} {fps:6.2f} {cpu:11.3f} "
                  f"{ratio:6.2f} {r['peak_sampled_mb']:8.0f}")
        print(f"\nColorization runs at {fast['frames'] / fast['wall'] / base_fps:.2f} x FFmpeg's "
              f"transcode frame rate (target: at least 0.5). CPU per frame: Python "
              f"{fast['cpu_python'] / fast['frames']:.3f} s, its FFmpeg children "
              f"{fast['cpu_children'] / fast['frames']:.3f} s; FFmpeg alone "
              f"{(base1['cpu_children'] + base2['cpu_children']) / (base1['frames'] + base2['frames']):.3f} s; "
              f"FFmpeg re-encoding the colorized output {floor['cpu_children'] / floor['frames']:.3f} s "
              f"(x264 works harder on colour than on black and white). Against that re-encode, "
              f"colorize_video runs at {fast['frames'] / fast['wall'] / (floor['frames'] / floor['wall']):.2f} x.")
        print(f"Peak memory (Python + FFmpeg children, sampled together): "
              f"{fast['peak_sampled_mb']:.0f} MB. Peaks of each: Python "
              f"{fast['peak_python_mb']:.0f} MB (of which {fast['rss_before_mb']:.0f} MB before the "
              f"run: TensorFlow, the model, warm-up), FFmpeg {fast['peak_children_mb']} MB "
              f"(FFmpeg alone: {base1['peak_children_mb']} MB).")

        if args.memory_seconds:
            print("\nMemory vs length (640x360, 25 fps, default settings):")
            for seconds in args.memory_seconds:
                clip_m = tmp / f"mem_{seconds:g}.mp4"
                make_clip(clip_m, seconds, 640, 360, colour=args.colour)
                r = run_worker("fast", clip_m, tmp / f"mem_out_{seconds:g}.mp4", args.preset,
                               args.crf, model)
                print(f"  {seconds:5g} s, {r['frames']:4d} frames: peak {r['peak_sampled_mb']:.0f} "
                      f"MB together (Python {r['peak_python_mb']:.0f} MB, FFmpeg "
                      f"{r['peak_children_mb']} MB), {r['frames'] / r['wall']:.1f} fps")


if __name__ == "__main__":
    main()
