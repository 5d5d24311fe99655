"""Training throughput of the MSE and GAN steps, and how much of the machine's FLOP rate they use.

Prints a table: the machine, images/s of one MSE step and one GAN step (the tf.function that
`train` runs, on random batches of the right shapes), the networks' forward FLOPs per image, and the
FLOP rate the steps reach as a fraction of a large float32 matmul timed in the same run (on a shared
machine, a rate without its baseline says little).

FLOPs are counted analytically from the layers' shapes: 2 x multiply-adds of every convolution and
transposed convolution (BatchNorm, activations and the optimiser add well under 1 %). The
TensorFlow profiler's count on the forward graph is printed beside it as a cross-check. Training
FLOPs are taken as 3 x forward (backward ~ 2 x forward): MSE step 3 G; GAN step 3 (G + 2 D), the
discriminator running on the real and the generated batch. (The generator's gradient also flows
back through D's fake branch, ~ +1 D, which this rule leaves out.)

    .venv/bin/python bench/bench_train.py                       # batch 32, TrainConfig's networks
    .venv/bin/python bench/bench_train.py --batch-size 8 --steps 5
"""
import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import colorizerutils as cu  # noqa: E402


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------
def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def load_average():
    try:
        return "%.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        return "n/a"


# ---------------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------------
def _leaf_layers(model):
    for layer in model.layers:
        if getattr(layer, "layers", None):
            yield from _leaf_layers(layer)
        else:
            yield layer


def conv_flops(model):
    """Forward FLOPs per example: 2 x multiply-adds of every (transposed) convolution."""
    total = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.Conv2DTranspose):  # before Conv2D: it subclasses it
            kh, kw, c_out, c_in = layer.kernel.shape  # transposed kernels are (h, w, out, in)
            _, h_in, w_in, _ = layer.input.shape
            total += 2 * h_in * w_in * c_in * kh * kw * c_out  # each input pixel scatters a kernel
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h_out, w_out, _ = layer.output.shape
            total += 2 * h_out * w_out * c_out * kh * kw * c_in
    return total


def profiler_flops(model):
    """The TensorFlow profiler's float-op count for one example's forward pass (cross-check)."""
    specs = [tf.TensorSpec((1,) + tuple(x.shape[1:]), tf.float32) for x in model.inputs]
    concrete = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False)
                           ).get_concrete_function(*specs)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=concrete.graph, options=options)
    return info.total_float_ops


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------
def matmul_flop_rate(n=2048, seconds=2.0):
    """FLOP/s of a float32 n x n matmul (the baseline): 2 n^3 per product."""
    a = tf.random.stateless_normal((n, n), (1, 2))
    b = tf.random.stateless_normal((n, n), (3, 4))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product().numpy()  # trace and warm up
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or reps < 3:
        product().numpy()
        reps += 1
    return 2.0 * n ** 3 * reps / (time.perf_counter() - start)


def step_throughput(kind, config, steps, warmup):
    """Images/s of the training step that train() runs (losses fetched every step, as there)."""
    state = cu.build_train_state(dataclasses.replace(config, kind=kind))
    step = cu.make_distributed_step(tf.distribute.get_strategy(), state, config.batch_size)
    size = config.image_size
    l_norm = tf.random.stateless_uniform((config.batch_size, size, size, 1), (5, 6), -1.0, 1.0)
    ab_norm = 0.3 * tf.tanh(tf.random.stateless_normal((config.batch_size, size, size, 2),
                                                       (7, 8)) + l_norm)
    start = time.perf_counter()
    for _ in range(warmup):  # the first call traces and compiles
        {k: float(v) for k, v in step(l_norm, ab_norm).items()}
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        {k: float(v) for k, v in step(l_norm, ab_norm).items()}
    elapsed = time.perf_counter() - start
    return steps * config.batch_size / elapsed, elapsed / steps, compile_s, state


# ---------------------------------------------------------------------------------------------
def main(argv=None):
    defaults = cu.TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (default 32)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per kind (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--image-size", type=int, default=defaults.image_size)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--max-width", type=int, default=defaults.max_width)
    parser.add_argument("--disc-width", type=int, default=defaults.disc_width)
    parser.add_argument("--matmul-size", type=int, default=2048)
    args = parser.parse_args(argv)

    config = dataclasses.replace(defaults, batch_size=args.batch_size,
                                 image_size=args.image_size, width=args.width,
                                 max_width=args.max_width, disc_width=args.disc_width)
    load_before = load_average()
    gpus = tf.config.list_physical_devices("GPU")
    matmul_before = matmul_flop_rate(args.matmul_size)
    mse_ips, mse_step_s, mse_compile_s, _ = step_throughput("mse", config, args.steps,
                                                                    args.warmup)
    gan_ips, gan_step_s, gan_compile_s, gan_state = step_throughput("gan", config, args.steps,
                                                                    args.warmup)
    matmul_after = matmul_flop_rate(args.matmul_size)
    matmul = max(matmul_before, matmul_after)  # the better of two: the machine is shared

    gen, disc = gan_state.generator, gan_state.discriminator
    g_flops, d_flops = conv_flops(gen), conv_flops(disc)
    g_prof, d_prof = profiler_flops(gen), profiler_flops(disc)
    mse_train_flops = 3 * g_flops
    gan_train_flops = 3 * (g_flops + 2 * d_flops)

    rows = [
        ("machine", f"{cpu_model()}, {usable_cores()} usable cores of {os.cpu_count()}"
                    + (f", GPU: {', '.join(g.name for g in gpus)}" if gpus else "")),
        ("software", f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
                     f"Python {platform.python_version()}"),
        ("load average (1/5/15 min)", f"{load_before} before, {load_average()} after"),
        ("networks", f"{config.image_size}x{config.image_size}, generator width {config.width}"
                     f"-{config.max_width} ({gen.count_params() / 1e6:.2f} M params), "
                     f"discriminator width {config.disc_width} "
                     f"({disc.count_params() / 1e6:.2f} M params)"),
        ("batch, timed steps", f"{config.batch_size}, {args.steps} (+{args.warmup} warm-up)"),
        ("generator forward FLOPs/image", f"{g_flops / 1e6:.1f} M (profiler: {g_prof / 1e6:.1f} M)"),
        ("discriminator forward FLOPs/image",
         f"{d_flops / 1e6:.1f} M (profiler: {d_prof / 1e6:.1f} M)"),
        ("matmul baseline", f"{args.matmul_size}x{args.matmul_size} float32: "
                            f"{matmul / 1e9:.1f} GFLOP/s (before {matmul_before / 1e9:.1f}, "
                            f"after {matmul_after / 1e9:.1f})"),
    ]
    for name, ips, step_s, compile_s, flops in (
            ("MSE step", mse_ips, mse_step_s, mse_compile_s, mse_train_flops),
            ("GAN step", gan_ips, gan_step_s, gan_compile_s, gan_train_flops)):
        rate = ips * flops
        rows.append((name, f"{ips:8.1f} images/s ({step_s * 1e3:.0f} ms/step; first "
                           f"{args.warmup} steps incl. compile {compile_s:.1f} s), "
                           f"{flops / 1e6:.0f} MFLOP/image trained, {rate / 1e9:.2f} GFLOP/s = "
                           f"{rate / matmul:.1%} of the matmul"))
    width = max(len(name) for name, _ in rows)
    print(f"{'what':{width}s} | value")
    print(f"{'-' * width}-|-{'-' * 60}")
    for name, value in rows:
        print(f"{name:{width}s} | {value}")
    if os.getloadavg()[0] > usable_cores() * 0.5:
        print(f"\nNote: the machine was busy (load {load_average()} on {usable_cores()} cores): "
              "other processes compete, so absolute rates are low; the ratio to the matmul, "
              "timed in the same conditions, is the more telling number.")


if __name__ == "__main__":
    main()
