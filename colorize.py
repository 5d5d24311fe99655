"""Colorize grayscale photos and videos from the command line.

    python colorize.py INPUT [INPUT ...] -o OUTPUT_DIR [--model mse|gan|video|PATH] [options]

INPUT: any mix of image files, video files and folders (searched recursively; hidden files and the
output folder are skipped). A folder's images come out under OUTPUT_DIR with the same relative
path; a file given by itself comes out as OUTPUT_DIR/its name. JPEG in -> JPEG out (quality 95,
no chroma subsampling); anything else (PNG, TIFF, BMP, WebP, GIF) -> PNG; a video -> .mp4
(colorizerutils.video.colorize_video: H.264, audio kept).

Safe to interrupt and rerun: inputs are only read; each output is written under a hidden
temporary name next to its final place and renamed into place when complete, so a final path never
holds a half-written file; existing outputs are skipped (counted) unless --overwrite.

Exit status: 0 all done (skipped files included), 1 some inputs failed (each named, with the
reason, in the summary), 2 usage error (bad option, missing model, output folder unusable),
130 interrupted.
"""
import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

JPEG_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif"}
JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 3  # zlib: ~3x faster than Pillow's default 6 on 6 MP photos, ~10 % larger
VIDEO_OUTPUT_SUFFIX = ".mp4"
_PARTIAL = ".colorize-{pid}.partial"  # hidden temporary output: .NAME.colorize-PID.partialSUFFIX


class UsageError(Exception):
    """A problem with the command line as a whole (exit status 2)."""


class InputError(Exception):
    """One input cannot be done; `reason` says why (as ImageReadError's does)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Job:
    """One input file and where its output goes."""
    source: Path
    output: Path
    kind: str  # "image" or "video"


@dataclass
class Report:
    done: list = field(default_factory=list)      # (source, output)
    skipped: list = field(default_factory=list)   # (source, output)
    failed: list = field(default_factory=list)    # (source, reason)


# =============================================================================================
# Command line
# =============================================================================================
def build_parser():
    parser = argparse.ArgumentParser(
        prog="colorize.py",
        description="Colorize grayscale photos and films at full resolution with a trained "
                    "colorizer.",
        epilog="Exit status: 0 all done, 1 some inputs failed, 2 usage error, 130 interrupted.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, video files or folders (recursive)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT_DIR",
                        help="folder for the results (created if needed)")
    parser.add_argument("--model", default=None, metavar="mse|gan|video|PATH",
                        help="a shipped model by name, or a saved generator (.json/.weights.h5 "
                             "or their stem); default: the best shipped image model")
    parser.add_argument("--side-by-side", action="store_true",
                        help="write grayscale | colour next to each other, for review")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo outputs that exist (default: skip and count them)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would be done, write nothing")
    parser.add_argument("--quality", type=int, default=JPEG_QUALITY, metavar="Q",
                        help=f"JPEG quality 1-100 for JPEG outputs (default {JPEG_QUALITY})")
    parser.add_argument("--max-pixels", type=int, default=None, metavar="N",
                        help="refuse images with more pixels than N (Pillow's decompression-bomb "
                             "limit, default about 89 million); raise it for trusted huge scans")
    video = parser.add_argument_group("videos")
    video.add_argument("--smoothing", type=float, default=None, metavar="S",
                       help="weight of the past colour in the moving average over time, 0 to "
                            "below 1; 0 turns temporal smoothing off (default 0.8)")
    video.add_argument("--no-motion", action="store_true",
                       help="do not move the averaged colour with the camera's motion")
    video.add_argument("--exact", action="store_true",
                       help="full-resolution LAB recombination as for photos (2 to 3x slower)")
    video.add_argument("--crf", type=int, default=None, metavar="N",
                       help="x264 quality 0-51, lower is better (default 18)")
    video.add_argument("--preset", default=None, metavar="NAME",
                       help="x264 speed preset, ultrafast ... veryslow (default medium)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")


def video_options(args):
    """colorize_video keyword arguments from the command line (only what was given)."""
    options = {}
    if args.smoothing is not None:
        options["stabilize"] = args.smoothing > 0
        if args.smoothing > 0:
            options["smoothing"] = args.smoothing
    if args.no_motion:
        options["motion"] = False
    if args.exact:
        options["exact"] = True
    if args.crf is not None:
        options["crf"] = args.crf
    if args.preset is not None:
        options["preset"] = args.preset
    return options


def main(argv=None):
    """Run the command line; returns the exit status (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: usage error (2) or --help (0)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if not 1 <= args.quality <= 100:
        return _usage(parser, f"--quality must be between 1 and 100, got {args.quality}")
    if args.max_pixels is not None and args.max_pixels < 1:
        return _usage(parser, f"--max-pixels must be positive, got {args.max_pixels}")
    if args.smoothing is not None and not 0 <= args.smoothing < 1:
        return _usage(parser, f"--smoothing must be in [0, 1), got {args.smoothing}")
    if args.crf is not None and not 0 <= args.crf <= 51:
        return _usage(parser, f"--crf must be between 0 and 51, got {args.crf}")
    if args.preset is not None and args.preset not in X264_PRESETS:
        return _usage(parser, f"--preset must be one of {', '.join(X264_PRESETS)}, "
                              f"got {args.preset!r}")

    import colorizerutils as cu  # TensorFlow start-up: only once the command line is valid
    from PIL import Image

    saved_limit = Image.MAX_IMAGE_PIXELS
    restore_sigterm = _install_sigterm_handler()
    try:
        if args.max_pixels is not None:
            Image.MAX_IMAGE_PIXELS = args.max_pixels
        model_spec = args.model or cu.default_model_name()
        try:
            _check_model(cu, model_spec)
            jobs, report = plan(cu, args.inputs, Path(args.output))
            if not args.dry_run:
                _make_output_root(Path(args.output))
        except UsageError as err:
            return _usage(parser, str(err))
        if args.dry_run:
            return dry_run(jobs, report, args.overwrite)
        return run(cu, jobs, report, model_spec, args)
    except KeyboardInterrupt:  # before the first file (run() handles it after)
        print("Interrupted before any output was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
        restore_sigterm()


def _usage(parser, message):
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _install_sigterm_handler():
    """Turn SIGTERM (kill) into KeyboardInterrupt, so the partial output is removed as for Ctrl-C.
    Returns a function that puts the previous handler back."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous if previous is not None
                                 else signal.SIG_DFL)


def _check_model(cu, spec):
    """Fail early, before any work, when the model is missing."""
    if spec in cu.SHIPPED_MODELS:
        if not cu.shipped_models([spec]):
            stem = cu.shipped_model_path(spec)
            raise UsageError(f"model {spec!r} is not shipped yet ({stem}.json and "
                             f"{stem.name}.weights.h5 not found). Train it with its notebook, "
                             "or pass --model PATH of a saved generator.")
        return
    stem = Path(spec)
    for suffix in (".weights.h5", ".json"):
        if stem.name.endswith(suffix):
            stem = stem.with_name(stem.name[:-len(suffix)])
    missing = [p for p in (stem.with_name(stem.name + ".json"),
                           stem.with_name(stem.name + ".weights.h5")) if not p.is_file()]
    if missing:
        raise UsageError(f"--model {spec}: not one of {', '.join(cu.SHIPPED_MODELS)} and no saved "
                         f"generator there ({', '.join(str(p) for p in missing)} missing)")


def _make_output_root(output_dir):
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the output folder {output_dir}: "
                         f"{err.strerror or err}") from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise UsageError(f"the output folder {output_dir} is not writable")


# =============================================================================================
# Planning: which files, which outputs
# =============================================================================================
def output_name(source, kind):
    """The output's file name: JPEG keeps its name, other images become .png, videos .mp4."""
    if kind == "video":
        return source.stem + VIDEO_OUTPUT_SUFFIX
    if source.suffix.lower() in JPEG_SUFFIXES:
        return source.name
    return source.stem + ".png"


def _walk(folder, skip_dir, extensions):
    """Files under `folder` (sorted, recursive) whose suffix is in `extensions`; hidden files and
    folders and the output folder are skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        root = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (root / d).resolve() != skip_dir)
        found += [root / f for f in files
                  if not f.startswith(".") and Path(f).suffix.lower() in extensions]
    return sorted(found)


def plan(cu, inputs, output_dir):
    """Expand the inputs into jobs. Returns (jobs, report) with the inputs that cannot be done
    (missing, output clash) already in report.failed. Raises UsageError for the output folder
    being one of the input folders."""
    report = Report()
    out_resolved = output_dir.resolve()
    image_ext, video_ext = set(cu.IMAGE_EXTENSIONS), set(cu.VIDEO_EXTENSIONS)
    candidates = []  # (source, path relative to the output folder's, kind)
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            if path.resolve() == out_resolved:
                raise UsageError(f"the output folder {output_dir} is the input folder {path}: "
                                 "choose another output folder (inputs are never overwritten)")
            for source in _walk(path, out_resolved, image_ext | video_ext):
                kind = "video" if source.suffix.lower() in video_ext else "image"
                rel = source.relative_to(path).parent
                candidates.append((source, rel, kind))
        elif path.is_file():
            kind = "video" if path.suffix.lower() in video_ext else "image"
            candidates.append((path, Path(), kind))
        else:
            report.failed.append((path, "no such file or folder"))
    sources = {c[0].resolve() for c in candidates}
    taken = {}
    jobs = []
    for source, rel, kind in candidates:
        name = output_name(source, kind)
        output = output_dir / rel / name
        if output.resolve() in taken and kind == "image" and name != source.name:
            output = output_dir / rel / (source.name + ".png")  # e.g. a.png and a.tif: a.tif.png
        if output.resolve() in sources:
            report.failed.append((source, f"its output {output} would overwrite an input; "
                                          "choose another output folder"))
        elif output.resolve() in taken:
            report.failed.append((source, f"same output {output} as {taken[output.resolve()]}"))
        else:
            taken[output.resolve()] = source
            jobs.append(Job(source, output, kind))
    return jobs, report


# =============================================================================================
# Doing it
# =============================================================================================
def dry_run(jobs, report, overwrite):
    for job in jobs:
        if job.output.exists() and not overwrite:
            print(f"skip (exists)  {job.source} -> {job.output}")
        else:
            print(f"{'colorize':13s}  {job.source} -> {job.output}"
                  + ("  (video)" if job.kind == "video" else ""))
    for source, reason in report.failed:
        print(f"{'fail':13s}  {source}: {reason}")
    todo = sum(1 for j in jobs if overwrite or not j.output.exists())
    print(f"Dry run: {todo} to colorize, {len(jobs) - todo} to skip, {len(report.failed)} "
          "failing; nothing written.")
    return EXIT_FAILED if report.failed else EXIT_OK


def run(cu, jobs, report, model_spec, args):
    todo = []
    for job in jobs:
        if job.output.exists() and not args.overwrite:
            report.skipped.append((job.source, job.output))
        else:
            todo.append(job)
    generator = None
    if todo:
        try:
            generator = cu.load_model(model_spec)
        except (OSError, ValueError) as err:
            print(f"colorize.py: error: cannot load the model: {err}", file=sys.stderr)
            return EXIT_USAGE
    bar = _progress(todo, args.quiet)
    start = time.perf_counter()
    try:
        for job in todo:
            bar.set_postfix_str(job.source.name[-40:], refresh=False)
            try:
                process(cu, generator, job, args)
                report.done.append((job.source, job.output))
            except KeyboardInterrupt:
                raise
            except Exception as err:  # noqa: BLE001 - one bad file must not stop the batch
                reason = _reason(err)
                report.failed.append((job.source, reason))
                bar.write(f"FAILED {job.source}: {reason}", file=sys.stderr)
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        _summary(report, args.output, time.perf_counter() - start, interrupted=True)
        return EXIT_INTERRUPTED
    bar.close()
    _summary(report, args.output, time.perf_counter() - start)
    return EXIT_FAILED if report.failed else EXIT_OK


def _progress(todo, quiet):
    from tqdm import tqdm
    return tqdm(total=len(todo), unit="file", disable=quiet or len(todo) <= 1, file=sys.stderr,
                dynamic_ncols=True)


def _reason(err):
    """A one-line reason for a failure. ImageReadError already says file and problem."""
    reason = getattr(err, "reason", None)
    if reason:
        return reason
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}" + (f": {err.filename}" if err.filename else "")
    return f"{type(err).__name__}: {err}"


def process(cu, generator, job, args):
    """Colorize one file into its output, atomically."""
    if job.kind == "video":
        with _atomic_output(job.output) as partial:  # .NAME.colorize-PID.partial.mp4
            cu.colorize_video(generator, job.source, partial, progress=not args.quiet,
                              **video_options(args))
        return
    pixels = cu.as_pixels(cu.read_image(job.source))
    result = cu.colorize_image(generator, pixels)
    if args.side_by_side:
        result = cu.side_by_side(cu.grayscale_baseline(pixels), result)
    with _atomic_output(job.output) as partial:
        save_image(result, partial, job.output.suffix, args.quality)


def save_image(rgb, path, suffix, quality=JPEG_QUALITY):
    """uint8 RGB -> JPEG (quality, 4:4:4) if `suffix` is a JPEG one, else PNG."""
    from PIL import Image
    image = Image.fromarray(rgb)
    if suffix.lower() in JPEG_SUFFIXES:
        image.save(path, format="JPEG", quality=quality, subsampling=0)
    else:
        image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


class _atomic_output:
    """`with _atomic_output(final) as partial:` write `partial`; on success it is renamed to
    `final` (os.replace, atomic in one folder); on any error or interruption it is removed.
    Leftovers of killed runs (whose process is gone) are removed first."""

    def __init__(self, final):
        self.final = Path(final)
        self.partial = self.final.with_name(
            f".{self.final.name}{_PARTIAL.format(pid=os.getpid())}{self.final.suffix}")

    def __enter__(self):
        self.final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(self.final)
        return self.partial

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.partial, self.final)
        else:
            self.partial.unlink(missing_ok=True)
        return False


def _remove_stale_partials(final):
    pattern = f".{final.name}{_PARTIAL.format(pid='*')}{final.suffix}"
    for leftover in final.parent.glob(pattern):
        pid_text = leftover.name[len(f".{final.name}.colorize-"):].split(".", 1)[0]
        if not pid_text.isdigit() or not _process_alive(int(pid_text)):
            leftover.unlink(missing_ok=True)


def _process_alive(pid):
    if pid == os.getpid():
        return False  # ours, from an earlier failed attempt in this run
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _summary(report, output_dir, seconds, interrupted=False):
    lines = []
    if interrupted:
        lines.append("Interrupted: finished outputs are kept, the one in progress was removed; "
                     "run the same command again to do the rest.")
    lines.append(f"Done: {len(report.done)} colorized, {len(report.skipped)} skipped "
                 f"(output exists; --overwrite to redo), {len(report.failed)} failed "
                 f"in {seconds:.1f} s. Outputs in {output_dir}")
    if report.failed:
        lines.append("Failed:")
        lines += [f"  {source}: {reason}" for source, reason in report.failed]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
