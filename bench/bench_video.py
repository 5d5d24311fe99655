"""Benchmark: colorizing a 1080p clip end to end (decode, colorize, encode H.264) against FFmpeg's
own decode + H.264 encode of the same clip with the same x264 settings, in the same run.

    python bench/bench_video.py [--seconds 4] [--preset medium] [--crf 18] [--model NAME|PATH]
                                [--exact-seconds 1] [--memory-seconds 2 8]

Two clips, each a slow pan over a real photo from resources/data/photos, upscaled to 1920x1080 by
FFmpeg (25 fps), in black and white (what a customer brings; --colour for colour clips):
  * clean: no noise at all. The photo is 768x432, so the upscaled frames are soft and the pan is a
    pure translation: x264 encodes it almost for free (under 1 Mb/s at crf 18), the hardest
    baseline for a colorizer, whose new colour in every frame x264 has to encode.
  * film grain (--grain, default 6): the same pan with FFmpeg's temporal noise (std 2.8
    levels of 255 in the encoded clip, new in every frame), as a scanned film has; a more
    typical transcode.
The generator is --model, else the shipped video model, else a shipped image model, else an
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


def make_clip(path, seconds, width=1920, height=1080, fps=25, colour=False, grain=0):
    """A slow horizontal pan over the photo, upscaled; black and white (what a customer brings)
    unless `colour`; high quality H.264 (crf 16). `grain`: strength of FFmpeg's temporal noise
    filter (film grain, different in every frame, as in a film scan); 0: none."""
    import imageio_ffmpeg
    scale = f"scale={int(width * 1.5)}:-2:flags=lanczos"
    crop = f"crop={width}:{height}:'(iw-{width})*t/{seconds}':'(ih-{height})/2'"
    grey = "" if colour else "format=gray,"
    noise = f"noise=alls={grain}:allf=t," if grain else ""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-loop", "1",
                    "-framerate", str(fps), "-i", str(PHOTO),
                    "-vf", f"{scale},{crop},{noise}{grey}format=yuv420p", "-t", str(seconds),
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
            "bytes": os.path.getsize(out), **peak.report()}


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
    return {"wall": wall, "frames": result.frames, "bytes": os.path.getsize(out),
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


def print_row(name, r, reference_fps, seconds):
    fps = r["frames"] / r["wall"]
    cpu = (r.get("cpu_python", 0.0) + r["cpu_children"]) / r["frames"]
    mbps = r["bytes"] * 8 / seconds / 1e6
    print(f"{name:52s} {r['frames']:6d} {r['wall']:7.1f} {fps:6.2f} {cpu:11.3f} "
          f"{fps / reference_fps:6.2f} {r['peak_sampled_mb']:8.0f} {mbps:6.1f}")


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
    parser.add_argument("--grain", type=float, default=6.0,
                        help="film-grain strength of the second clip (FFmpeg noise alls; 0: "
                             "only the clean clip)")
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
        model = args.model
        kind = "colour" if args.colour else "black and white"
        print(f"Machine: {machine()}")
        print(f"Clips: {args.seconds:g} s slow pan over {PHOTO.name} (768x432, upscaled), {kind}, "
              "1920x1080, 25 fps, H.264")
        print(f"x264: preset {args.preset}, crf {args.crf}; model: {describe_model(model)}\n")
        header = (f"{'run':52s} {'frames':>6s} {'wall s':>7s} {'fps':>6s} {'CPU s/frame':>11s} "
                  f"{'ratio':>6s} {'peak MB':>8s} {'Mb/s':>6s}")
        summary, fast_runs = [], {}
        for label, grain in (("clean (no grain)", 0), (f"film grain {args.grain:g}", args.grain)):
            if label != "clean (no grain)" and not args.grain:
                continue
            name = f"pan_{grain:g}"
            clip = tmp / f"{name}.mp4"
            make_clip(clip, args.seconds, colour=args.colour, grain=grain)
            base1 = run_worker("ffmpeg", clip, tmp / f"{name}_ff1.mp4", args.preset, args.crf)
            fast = run_worker("fast", clip, tmp / f"{name}_fast.mp4", args.preset, args.crf, model)
            base2 = run_worker("ffmpeg", clip, tmp / f"{name}_ff2.mp4", args.preset, args.crf)
            # FFmpeg re-encoding our output: the cost of H.264 on these colours, whoever makes them.
            floor = run_worker("ffmpeg", tmp / f"{name}_fast.mp4", tmp / f"{name}_ff3.mp4",
                               args.preset, args.crf)
            base_fps = (base1["frames"] / base1["wall"] + base2["frames"] / base2["wall"]) / 2
            print(f"Clip: {label}")
            print(header)
            for row, r in (("FFmpeg decode + x264 (before)", base1),
                           ("colorize_video (default: chroma-resolution colour)", fast),
                           ("FFmpeg decode + x264 (after)", base2),
                           ("FFmpeg decode + x264 of the colorized output", floor)):
                print_row(row, r, base_fps, args.seconds)
            ratio = fast["frames"] / fast["wall"] / base_fps
            summary.append((label, ratio, fast, base1, base2, floor))
            fast_runs[label] = fast
            print()
        for label, ratio, fast, base1, base2, floor in summary:
            ff_cpu = ((base1["cpu_children"] + base2["cpu_children"])
                      / (base1["frames"] + base2["frames"]))
            print(f"{label}: colorization runs at {ratio:.2f} x FFmpeg's transcode frame rate "
                  f"(target: at least 0.5). CPU per frame: Python "
                  f"{fast['cpu_python'] / fast['frames']:.3f} s, its FFmpeg children "
                  f"{fast['cpu_children'] / fast['frames']:.3f} s; FFmpeg alone {ff_cpu:.3f} s; "
                  f"FFmpeg re-encoding the colorized output "
                  f"{floor['cpu_children'] / floor['frames']:.3f} s. Against that re-encode, "
                  f"colorize_video runs at "
                  f"{fast['frames'] / fast['wall'] / (floor['frames'] / floor['wall']):.2f} x.")
        fast, base1 = summary[0][2], summary[0][3]
        print(f"Peak memory, clean clip (Python + FFmpeg children, sampled together): "
              f"{fast['peak_sampled_mb']:.0f} MB. Peaks of each: Python "
              f"{fast['peak_python_mb']:.0f} MB (of which {fast['rss_before_mb']:.0f} MB before the "
              f"run: TensorFlow, the model, warm-up), FFmpeg {fast['peak_children_mb']} MB "
              f"(FFmpeg alone: {base1['peak_children_mb']} MB).")
        if args.exact_seconds:
            short = tmp / "short1080.mp4"
            make_clip(short, args.exact_seconds, colour=args.colour)
            base_s = run_worker("ffmpeg", short, tmp / "ff_s.mp4", args.preset, args.crf)
            exact = run_worker("exact", short, tmp / "exact.mp4", args.preset, args.crf, model)
            print(f"\nexact=True (full-resolution LAB as for photos), clean clip of "
                  f"{args.exact_seconds:g} s:")
            print(header)
            reference = base_s["frames"] / base_s["wall"]
            print_row("FFmpeg decode + x264", base_s, reference, args.exact_seconds)
            print_row("colorize_video(exact=True)", exact, reference, args.exact_seconds)

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
