"""Benchmark: colorizing a 12 MP photo end to end (read, colorize, write JPEG), our path against
the same steps with scikit-image's rgb2lab / lab2rgb doing the colour conversion, in one run.

    python bench/bench_colorize.py [--runs 5] [--baseline-runs 3] [--size 4000x3000]
                                   [--model NAME|PATH] [--no-memory]
    python bench/bench_colorize.py --oracle   # edge-aware vs bilinear upsampling of ab (below)

The test image is a real photo from resources/data/photos, upscaled to --size and saved as a
grayscale JPEG (what a customer brings). The generator is the default shipped model if there is
one, else an untrained one of the same architecture (speed does not depend on the weights).
Peak memory is measured in a fresh process per path (Linux: peak RSS during one 12 MP image
minus RSS before it, after warming up on a small image). Timings on a shared machine: look at the
ratio, and at CPU time, which other processes disturb less than wall time.

--oracle: the true ab of each embedded photo squeezed to 64x64 (what a perfect model would
predict) and brought back to full size, by plain bilinear and by a fast guided filter steered by
the full-resolution L; error against the true ab. This is the measurement behind keeping bilinear.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import colorizerutils as cu  # noqa: E402

SOURCE_PHOTO = cu.DEFAULT_PHOTOS / "lomiri__picosdeeuropa_by_Aitzol_Berasategi.jpg"


# =============================================================================================
# The two paths, same steps
# =============================================================================================
def write_jpeg(rgb, path):
    Image.fromarray(rgb).save(path, format="JPEG", quality=95, subsampling=0)


def ours(generator, source, target):
    """read -> colorize_image (tiled XLA kernel) -> JPEG."""
    write_jpeg(cu.colorize_image(generator, cu.read_image(source)), target)


def skimage_path(generator, source, target):
    """read -> skimage rgb2lab for L -> same model input and prediction -> bilinear ab ->
    skimage lab2rgb -> JPEG."""
    from skimage.color import lab2rgb, rgb2lab
    rgb = cu.read_image(source)
    l_full = rgb2lab(cu.to_float01(rgb))[:, :, 0]
    ab_small = cu.predict_ab(generator, cu.model_input(rgb, generator.input_shape[1]))[0]
    lab = np.concatenate([l_full[:, :, None], cu.upsample_ab(ab_small, *l_full.shape)], axis=2)
    write_jpeg((np.clip(lab2rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8), target)


PATHS = {"ours": ours, "skimage": skimage_path}


def make_test_image(size, path):
    width, height = size
    photo = Image.open(SOURCE_PHOTO).convert("L")
    photo.resize((width, height), Image.Resampling.BICUBIC).save(path, quality=92)


def get_generator(spec):
    if spec:
        return cu.load_model(spec), spec
    name = cu.default_model_name()
    if cu.shipped_models([name]):
        return cu.load_model(name), f"shipped '{name}'"
    return cu.build_generator(64), "untrained build_generator(64) (no shipped model yet)"


def timed(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def _status_kb(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key))
    return int(line.split()[1])


def measure_memory(method, image, model):
    """Child process: peak RSS increase of one 12 MP run, after a warm-up on a small image.

    Linux: the peak (VmHWM) is reset after the warm-up by writing 5 to /proc/self/clear_refs, so
    TensorFlow's start-up peak does not hide the run's own.
    """
    generator, _ = get_generator(model)
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.jpg"
        Image.open(image).resize((320, 240)).save(small)
        PATHS[method](generator, small, Path(tmp) / "warm.jpg")
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
        PATHS[method](generator, image, Path(tmp) / "out.jpg")
        peak = _status_kb("VmHWM")
    print(f"PEAK_RSS_INCREASE_MB {(peak - before) / 1024:.1f}")


def peak_memory_mb(method, image, model):
    cmd = [sys.executable, __file__, "--measure-memory", method, "--image", str(image)]
    if model:
        cmd += ["--model", model]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(next(l for l in out.splitlines() if l.startswith("PEAK_RSS")).split()[1])


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip()
                   for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def bench(args):
    width, height = (int(v) for v in args.size.lower().split("x"))
    generator, model_text = get_generator(args.model)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "scan_grey.jpg"
        make_test_image((width, height), image)
        out = Path(tmp) / "out.jpg"
        first = timed(ours, generator, image, out)  # includes compiling the XLA kernel
        skimage_path(generator, image, Path(tmp) / "warm.jpg")
        times = {"ours": [], "skimage": []}
        for i in range(max(args.runs, args.baseline_runs)):  # alternate, so both see the same load
            if i < args.runs:
                times["ours"].append(timed(ours, generator, image, out))
            if i < args.baseline_runs:
                times["skimage"].append(timed(skimage_path, generator, image, out))
        memory = {} if args.no_memory else {m: peak_memory_mb(m, image, args.model)
                                            for m in PATHS}
    load_after = os.getloadavg()

    print(f"machine: {machine()}; load average {load_before[0]:.1f} at start, "
          f"{load_after[0]:.1f} at end")
    print(f"image: {width}x{height} ({width * height / 1e6:.1f} MP) grayscale JPEG -> colour JPEG "
          f"(q95, 4:4:4); model: {model_text}")
    print(f"first call (compiles the tile kernel once per process): {first[0]:.2f} s wall\n")
    print("| path | runs | median wall (s) | min wall (s) | median CPU (s) "
          "| peak RSS increase (MB) |")
    print("|---|---|---|---|---|---|")
    med = {}
    for name, runs in times.items():
        wall = np.array([w for w, _ in runs])
        cpu = np.array([c for _, c in runs])
        med[name] = np.median(wall)
        mem = f"{memory[name]:.0f}" if name in memory else "-"
        print(f"| {name} | {len(runs)} | {np.median(wall):.2f} | {wall.min():.2f} | "
              f"{np.median(cpu):.2f} | {mem} |")
    print(f"\nratio skimage / ours (median wall): {med['skimage'] / med['ours']:.1f}x")


# =============================================================================================
# --oracle: does edge-aware upsampling beat bilinear?
# =============================================================================================
def _box(x, radius):
    from scipy.ndimage import uniform_filter
    return uniform_filter(x, size=(2 * radius + 1, 2 * radius + 1) + (1,) * (x.ndim - 2),
                          mode="reflect")


def _resize(x, height, width, antialias):
    import tensorflow as tf
    x4 = x[None] if x.ndim == 3 else x[None, :, :, None]
    out = tf.image.resize(x4, [height, width], method="bilinear", antialias=antialias)[0].numpy()
    return out if x.ndim == 3 else out[:, :, 0]


def fast_guided_upsample(ab_small, l_full, guide_size, radius, eps):
    """He & Sun's fast guided filter for joint upsampling: ab = A * L + B, with A and B fitted
    per window at guide_size x guide_size and upsampled bilinearly."""
    guide = _resize(l_full, guide_size, guide_size, True)
    p = (ab_small if guide_size == ab_small.shape[0]
         else _resize(ab_small, guide_size, guide_size, False))
    mean_i, mean_p = _box(guide, radius), _box(p, radius)
    cov = _box(guide[:, :, None] * p, radius) - mean_i[:, :, None] * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var[:, :, None] + eps)
    b = mean_p - a * mean_i[:, :, None]
    height, width = l_full.shape
    return (_resize(_box(a, radius), height, width, False) * l_full[:, :, None]
            + _resize(_box(b, radius), height, width, False))


def oracle():
    from skimage.color import rgb2lab
    configs = [("bilinear", None)] + [
        (f"guided filter {g}px r={r} eps={e}", (g, r, e))
        for g, r, e in [(64, 1, 10.0), (128, 1, 1.0), (256, 1, 0.1), (256, 2, 0.1), (512, 1, 0.1)]]
    files = cu.find_files(cu.DEFAULT_PHOTOS, cu.IMAGE_EXTENSIONS)
    errors = {name: [] for name, _ in configs}
    for path in files:
        lab = rgb2lab(cu.to_float01(cu.read_image(path))).astype(np.float32)
        l_full, ab_true = lab[:, :, 0], lab[:, :, 1:]
        ab_small = _resize(ab_true, 64, 64, True)  # a perfect model's 64x64 prediction
        for name, cfg in configs:
            ab_up = (cu.upsample_ab(ab_small, *l_full.shape) if cfg is None
                     else fast_guided_upsample(ab_small, l_full, *cfg))
            errors[name].append(float(np.mean((ab_up - ab_true) ** 2)))
    base = np.array(errors["bilinear"])
    print(f"{len(files)} photos of resources/data/photos; true ab -> 64x64 -> full size; "
          "error vs the true ab (PSNR with peak 110)\n")
    print("| upsampling | mean ab MSE | mean PSNR (dB) | better than bilinear on |")
    print("|---|---|---|---|")
    for name, _ in configs:
        mse = np.array(errors[name])
        print(f"| {name} | {mse.mean():.3f} | {np.mean(10 * np.log10(110 ** 2 / mse)):.2f} | "
              f"{np.mean(mse < base) * 100:.0f} % |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--model", default=None)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--oracle", action="store_true")
    parser.add_argument("--measure-memory", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_memory:
        measure_memory(args.measure_memory, args.image, args.model)
    elif args.oracle:
        oracle()
    else:
        bench(args)


if __name__ == "__main__":
    main()
