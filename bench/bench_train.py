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
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # the v1 profiler warns that it is v1
    try:
        info = tf.compat.v1.profiler.profile(graph=concrete.graph, options=options)
    finally:
        tf.get_logger().setLevel(level)
    return info.total_float_ops


# ---------------------------------------------------------------------------------------------
# Timing. The machine may be shared, so the baseline is timed right before every block of steps
# and each block gets its own ratio; the table gives medians (and the spread).
# ---------------------------------------------------------------------------------------------
class Matmul:
    """A float32 n x n matmul (the baseline): 2 n^3 FLOPs per product."""

    def __init__(self, n=2048):
        self.n = n
        a = tf.random.stateless_normal((n, n), (1, 2))
        b = tf.random.stateless_normal((n, n), (3, 4))
        self.product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
        self.product().numpy()  # trace and warm up

    def flop_rate(self, seconds=1.0):
        """(FLOP per wall-clock second, FLOP per CPU-second of this process)."""
        reps, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds or reps < 3:
            self.product().numpy()
            reps += 1
        flops = 2.0 * self.n ** 3 * reps
        return (flops / (time.perf_counter() - start),
                flops / max(time.process_time() - cpu_start, 1e-9))


def time_steps(kind, config, steps, warmup, rounds, matmul):
    """Per round: images per wall-clock second and per CPU-second of the step train() runs, and
    the matmul's (FLOP/s, FLOP/CPU-s) just before it.

    Losses are fetched after every step, as train() does. Also returns the warm-up time (tracing
    and compiling) and the state (for counting FLOPs).
    """
    state = cu.build_train_state(dataclasses.replace(config, kind=kind))
    step = cu.make_distributed_step(tf.distribute.get_strategy(), state, config.batch_size)
    size = config.image_size
    l_norm = tf.random.stateless_uniform((config.batch_size, size, size, 1), (5, 6), -1.0, 1.0)
    ab_norm = 0.3 * tf.tanh(tf.random.stateless_normal((config.batch_size, size, size, 2),
                                                       (7, 8)) + l_norm)
    start = time.perf_counter()
    for _ in range(warmup):  # the first call traces and compiles
        {k: float(v) for k, v in step(l_norm, ab_norm).items()}
    warmup_s = time.perf_counter() - start
    per_round = max(1, steps // rounds)
    results = []
    for _ in range(rounds):
        baseline = matmul.flop_rate()
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(per_round):
            {k: float(v) for k, v in step(l_norm, ab_norm).items()}
        images = per_round * config.batch_size
        results.append((images / (time.perf_counter() - start),
                        images / max(time.process_time() - cpu_start, 1e-9), baseline))
    return results, warmup_s, state


def spread(values, fmt):
    values = sorted(values)
    median = fmt.format(float(np.median(values)))
    return f"{median} ({fmt.format(values[0])}-{fmt.format(values[-1])})"


# ---------------------------------------------------------------------------------------------
def main(argv=None):
    defaults = cu.TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (default 32)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per kind (default 20)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="blocks the timed steps are split into, each with its own baseline")
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
    matmul = Matmul(args.matmul_size)
    timings = {kind: time_steps(kind, config, args.steps, args.warmup, args.rounds, matmul)
               for kind in ("mse", "gan")}
    gen, disc = timings["gan"][2].generator, timings["gan"][2].discriminator
    g_flops, d_flops = conv_flops(gen), conv_flops(disc)
    g_prof, d_prof = profiler_flops(gen), profiler_flops(disc)
    train_flops = {"mse": 3 * g_flops, "gan": 3 * (g_flops + 2 * d_flops)}
    baselines = [b for kind in timings for _, _, b in timings[kind][0]]

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
        ("batch, timed steps", f"{config.batch_size}, {args.steps} per kind in {args.rounds} "
                               f"rounds (+{args.warmup} warm-up)"),
        ("generator forward FLOPs/image",
         f"{g_flops / 1e6:.1f} M analytic (profiler: {g_prof / 1e6:.1f} M)"),
        ("discriminator forward FLOPs/image",
         f"{d_flops / 1e6:.1f} M analytic (profiler: {d_prof / 1e6:.1f} M)"),
        ("matmul baseline", f"{args.matmul_size}x{args.matmul_size} float32: "
                            + spread([b[0] / 1e9 for b in baselines], "{:.1f}") + " GFLOP/s; "
                            + spread([b[1] / 1e9 for b in baselines], "{:.1f}")
                            + " GFLOP per CPU-second"),
    ]
    for kind, name in (("mse", "MSE step"), ("gan", "GAN step")):
        results, warmup_s, _ = timings[kind]
        flops = train_flops[kind]
        rows.append((f"{name}, images/s", spread([ips for ips, _, _ in results], "{:.1f}")
                     + f"; {flops / 1e6:.0f} MFLOP/image trained; warm-up incl. compile "
                       f"{warmup_s:.1f} s"))
        rows.append((f"{name}, vs matmul (wall)",
                     spread([ips * flops / 1e9 for ips, _, _ in results], "{:.1f}")
                     + " GFLOP/s = "
                     + spread([100 * ips * flops / b[0] for ips, _, b in results], "{:.0f}%")
                     + " of the matmul's"))
        rows.append((f"{name}, vs matmul (CPU time)",
                     spread([ipc * flops / 1e9 for _, ipc, _ in results], "{:.1f}")
                     + " GFLOP per CPU-s = "
                     + spread([100 * ipc * flops / b[1] for _, ipc, b in results], "{:.0f}%")
                     + " of the matmul's"))
    width = max(len(name) for name, _ in rows)
    print(f"{'what':{width}s} | value (median (min-max) over rounds)")
    print(f"{'-' * width}-|-{'-' * 60}")
    for name, value in rows:
        print(f"{name:{width}s} | {value}")
    if os.getloadavg()[0] > usable_cores() * 0.5:
        print(f"\nNote: the machine was busy (load {load_average()} on {usable_cores()} cores): "
              "other processes compete, so wall-clock rates are low and noisy. The rates per "
              "CPU-second of this process (and their ratio to the matmul's) depend far less on "
              "the competition.")


if __name__ == "__main__":
    main()
