"""colorize.py, the command line: outputs (names, formats, sizes, L), reruns, dry runs, every kind
of bad input named with its reason while the batch goes on, refusing to overwrite inputs, exit
codes, interruption (temporary names, a killed run, a rerun that completes the rest), and the
main job's side-by-sides.

The CLI runs in-process (`colorize.main(argv)`) so that TensorFlow starts once; one test runs it
as a subprocess to kill it. A tiny generator saved to a temporary folder is the model.
"""
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin
from skimage.color import rgb2lab

import colorize
import colorizerutils as cu
from colorizerutils import inference
from conftest import ROOT

PHOTO = ROOT / "resources" / "data" / "photos" / "lomiri__Bridge_by_Sander_Klootwijk.jpg"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A saved tiny generator; its path is what --model gets."""
    stem = tmp_path_factory.mktemp("model") / "tiny_generator"
    cu.save_generator(cu.build_generator(64, width=8, max_width=16), stem, width=8, max_width=16)
    return str(stem)


def run_cli(*argv):
    """(exit status, stdout, stderr) of colorize.main(argv), in-process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = colorize.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def photo_crop(width, height, mode="L"):
    photo = Image.open(PHOTO).convert(mode)
    return photo.resize((width, height), Image.Resampling.BILINEAR)


def l_of(path):
    return rgb2lab(cu.to_float01(cu.read_image(path)))[:, :, 0]


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
def test_outputs_mirror_the_folder_with_jpeg_for_jpeg_and_png_for_the_rest(tmp_path, model):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub" / "deeper").mkdir(parents=True)
    photo_crop(90, 60).save(src / "a.jpg", quality=90)
    photo_crop(50, 70, "RGB").save(src / "sub" / "b.png")
    photo_crop(33, 21).save(src / "sub" / "deeper" / "c.tif")
    (src / "notes.txt").write_text("not an image, not picked up from a folder")
    code, stdout, _ = run_cli(src, "-o", out, "--model", model)
    assert code == colorize.EXIT_OK
    assert "3 colorized, 0 skipped" in stdout and "0 failed" in stdout
    produced = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert produced == ["a.jpg", "sub/b.png", "sub/deeper/c.png"]
    with Image.open(out / "a.jpg") as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (90, 60) and jpeg.mode == "RGB"
        assert JpegImagePlugin.get_sampling(jpeg) == 0  # 4:4:4, colour at full resolution
        assert jpeg.quantization[0][0] <= 2  # quality 95's luma table starts at 2 (q75: 8)
    for source, output in [("sub/b.png", "sub/b.png"), ("sub/deeper/c.tif", "sub/deeper/c.png")]:
        with Image.open(out / output) as png:
            assert png.format == "PNG" and png.size == Image.open(src / source).size
        assert np.abs(l_of(out / output) - l_of(src / source)).max() < 0.6  # lossless: exact L
    assert np.abs(l_of(out / "a.jpg") - l_of(src / "a.jpg")).mean() < 1.0  # JPEG: close L


def test_rerun_skips_existing_outputs_and_overwrite_redoes_them(tmp_path, model):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("x.jpg", "y.jpg"):
        photo_crop(40, 30).save(src / name)
    assert run_cli(src, "-o", out, "--model", model)[0] == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, stdout, _ = run_cli(src, "-o", out, "--model", model)
    assert code == 0 and "0 colorized, 2 skipped" in stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    time.sleep(0.01)
    code, stdout, _ = run_cli(src, "-o", out, "--model", model, "--overwrite")
    assert code == 0 and "2 colorized, 0 skipped" in stdout
    assert all(p.stat().st_mtime_ns > stamps[p.name] for p in out.iterdir())


def test_dry_run_lists_the_plan_and_writes_nothing(tmp_path, model):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    photo_crop(40, 30).save(src / "x.png")
    code, stdout, _ = run_cli(src, tmp_path / "missing.jpg", "-o", out, "--model", model,
                              "--dry-run")
    assert code == colorize.EXIT_FAILED  # the missing input is reported even in a dry run
    assert f"{src / 'x.png'} -> {out / 'x.png'}" in stdout
    assert "missing.jpg: no such file or folder" in stdout
    assert "1 to colorize, 0 to skip, 1 failing; nothing written" in stdout
    assert not out.exists()


def test_side_by_side_puts_the_grey_input_left_of_the_colour(tmp_path, model):
    src, out = tmp_path / "in.png", tmp_path / "out"
    grey = photo_crop(64, 48)
    grey.save(src)
    assert run_cli(src, "-o", out, "--model", model, "--side-by-side")[0] == 0
    pair = np.asarray(Image.open(out / "in.png"))
    assert pair.shape == (48, 64 + 4 + 64, 3)
    assert np.abs(pair[:, :64].astype(int) - np.asarray(grey)[:, :, None]).max() <= 1
    assert (pair[:, 64:68] == 255).all()
    assert np.abs(rgb2lab(pair[:, 68:])[:, :, 0] - l_of(src)).max() < 0.6


# ---------------------------------------------------------------------------------------------
# Bad inputs: one batch, each failure named with its reason, the rest done
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_batch(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("batch")
    src, out = root / "in", root / "out"
    (src / "dir with spaces ü").mkdir(parents=True)
    photo_crop(60, 40).save(src / "good.jpg")
    photo_crop(30, 20).save(src / "dir with spaces ü" / "naïve été.png")
    grey16 = (np.asarray(photo_crop(30, 20), np.uint16) * 257)
    Image.fromarray(grey16).save(src / "sixteen.png")  # mode I;16
    rgba = np.dstack([np.asarray(photo_crop(30, 20, "RGB")), np.full((20, 30), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src / "rgba.png")
    photo_crop(30, 20, "RGB").convert("P", palette=Image.Palette.ADAPTIVE).save(src / "palette.png")
    photo_crop(30, 20, "RGB").convert("CMYK").save(src / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    photo_crop(40, 20).save(src / "rotated.jpg", exif=exif)
    Image.new("L", (1, 1), 77).save(src / "one.png")
    Image.new("L", (150, 100), 50).save(src / "bomb.png")  # over --max-pixels 10000
    (src / "notimage.jpg").write_text("this is text, not a JPEG")
    good_bytes = (src / "good.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(good_bytes[:len(good_bytes) // 2])
    (src / "empty.png").write_bytes(b"")
    _write_tiny_video(src / "clip.mp4")
    code, stdout, stderr = run_cli(src, root / "no" / "such.png", "-o", out, "--model", model,
                                   "--max-pixels", 10000)
    return dict(src=src, out=out, code=code, stdout=stdout, stderr=stderr)


def _write_tiny_video(path):
    import imageio_ffmpeg
    writer = imageio_ffmpeg.write_frames(str(path), (32, 32), fps=5, macro_block_size=1)
    writer.send(None)
    for i in range(5):
        writer.send(np.full((32, 32, 3), 40 * i, np.uint8).tobytes())
    writer.close()


def _failure_line(batch, name):
    """The summary's line for a failed input ("  PATH: reason")."""
    return next((line for line in batch["stdout"].splitlines()
                 if line.startswith("  ") and name in line), None)


@pytest.mark.parametrize("name,reason", [
    ("notimage.jpg", "not an image file"),
    ("truncated.jpg", "truncated"),
    ("empty.png", "empty file (0 bytes)"),
    ("bomb.png", "too large"),
])
def test_unreadable_files_are_named_with_their_reason(bad_batch, name, reason):
    line = _failure_line(bad_batch, name)
    assert line is not None and reason in line, bad_batch["stdout"]
    assert not any(p.stem == name[:-4] for p in bad_batch["out"].iterdir())
    assert name in bad_batch["stderr"]  # also reported when it happened


def test_missing_input_is_named_and_the_batch_exits_1(bad_batch):
    assert bad_batch["code"] == colorize.EXIT_FAILED
    assert "such.png: no such file or folder" in bad_batch["stdout"]
    assert "5 failed" in bad_batch["stdout"]


def test_video_in_the_batch_comes_out_as_mp4(bad_batch):
    import imageio_ffmpeg
    output = bad_batch["out"] / "clip.mp4"
    assert output.is_file(), bad_batch["stdout"]
    reader = imageio_ffmpeg.read_frames(str(output))
    assert next(reader)["size"] == (32, 32)
    assert sum(1 for _ in reader) == 5


def test_video_options_reach_colorize_video(tmp_path, model, monkeypatch):
    seen = []

    def fake(generator, source, output, **options):
        seen.append(options)
        Path(output).write_bytes(b"video")
    monkeypatch.setattr(cu, "colorize_video", fake)
    _write_tiny_video(tmp_path / "clip.mp4")
    for extra, expected in (
            ([], {}),
            (["--smoothing", "0"], {"stabilize": False}),
            (["--smoothing", "0.5", "--no-motion", "--exact", "--crf", "23", "--preset", "fast"],
             {"stabilize": True, "smoothing": 0.5, "motion": False, "exact": True, "crf": 23,
              "preset": "fast"})):
        code, stdout, _ = run_cli(tmp_path / "clip.mp4", "-o", tmp_path / "out", "--model", model,
                                  "--overwrite", "-q", *extra)
        assert code == 0, stdout
        options = seen.pop()
        options.pop("progress")
        assert options == expected


@pytest.mark.parametrize("extra,message", [
    (["--smoothing", "1"], "--smoothing must be in [0, 1)"),
    (["--crf", "60"], "--crf must be between 0 and 51"),
    (["--preset", "quick"], "--preset must be one of ultrafast"),
])
def test_bad_video_options_are_usage_errors(tmp_path, extra, message):
    code, _, stderr = run_cli(tmp_path / "clip.mp4", "-o", tmp_path / "out", *extra)
    assert code == colorize.EXIT_USAGE
    assert message in stderr


@pytest.mark.parametrize("name,output", [
    ("good.jpg", "good.jpg"), ("sixteen.png", "sixteen.png"), ("rgba.png", "rgba.png"),
    ("palette.png", "palette.png"), ("cmyk.jpg", "cmyk.jpg"), ("one.png", "one.png"),
    ("dir with spaces ü/naïve été.png", "dir with spaces ü/naïve été.png"),
])
def test_unusual_but_valid_images_are_colorized_with_their_size_and_l(bad_batch, name, output):
    source, result = bad_batch["src"] / name, bad_batch["out"] / output
    assert result.is_file(), bad_batch["stdout"]
    expected = cu.read_image(source)  # alpha composited on white, CMYK and palette as RGB
    with Image.open(result) as im:
        assert im.mode == "RGB" and im.size == (expected.shape[1], expected.shape[0])
    tolerance = 1.5 if output.endswith(".jpg") else 0.6  # JPEG re-encoding moves L a little
    assert np.abs(l_of(result) - rgb2lab(cu.to_float01(expected))[:, :, 0]).max() < tolerance


def test_exif_rotated_jpeg_comes_out_upright(bad_batch):
    with Image.open(bad_batch["out"] / "rotated.jpg") as im:
        assert im.size == (20, 40)  # stored 40x20 with "rotate 90": displayed 20 wide, 40 high


# ---------------------------------------------------------------------------------------------
# Inputs are never overwritten; the output folder is never read as input
# ---------------------------------------------------------------------------------------------
def test_output_folder_inside_the_input_folder_is_not_read_back(tmp_path, model):
    src = tmp_path / "photos"
    src.mkdir()
    photo_crop(40, 30).save(src / "a.jpg")
    for _ in range(2):
        code, stdout, _ = run_cli(src, "-o", src / "colour", "--model", model, "--overwrite")
        assert code == 0 and "1 colorized" in stdout
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*")) == [
        "a.jpg", "colour", "colour/a.jpg"]


def test_input_folder_as_output_folder_is_refused(tmp_path, model):
    src = tmp_path / "photos"
    src.mkdir()
    photo_crop(40, 30).save(src / "a.jpg")
    before = (src / "a.jpg").read_bytes()
    code, _, stderr = run_cli(src, "-o", src, "--model", model)
    assert code == colorize.EXIT_USAGE and "is the input folder" in stderr
    assert (src / "a.jpg").read_bytes() == before


def test_an_output_that_would_replace_its_input_is_refused(tmp_path, model):
    photo_crop(40, 30).save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    code, stdout, _ = run_cli(tmp_path / "a.png", "-o", tmp_path, "--model", model, "--overwrite")
    assert code == colorize.EXIT_FAILED and "would overwrite an input" in stdout
    assert (tmp_path / "a.png").read_bytes() == before


def test_same_stem_png_and_tif_get_distinct_outputs(tmp_path, model):
    src = tmp_path / "in"
    src.mkdir()
    photo_crop(20, 10).save(src / "scan.png")
    photo_crop(20, 10).save(src / "scan.tif")
    code, stdout, _ = run_cli(src, "-o", tmp_path / "out", "--model", model)
    assert code == 0 and "2 colorized" in stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scan.png", "scan.tif.png"]


# ---------------------------------------------------------------------------------------------
# Usage errors: exit status 2, nothing done
# ---------------------------------------------------------------------------------------------
def test_output_folder_that_cannot_be_created_is_a_usage_error(tmp_path, model):
    # Tests run as root, so permissions do not stop writes; a regular file in the way does.
    photo_crop(20, 10).save(tmp_path / "a.png")
    (tmp_path / "blocker").write_text("a file, not a folder")
    code, _, stderr = run_cli(tmp_path / "a.png", "-o", tmp_path / "blocker" / "out",
                              "--model", model)
    assert code == colorize.EXIT_USAGE
    assert "cannot create the output folder" in stderr and "blocker" in stderr


def test_missing_shipped_model_is_a_clear_usage_error(tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "MODELS_DIR", tmp_path / "models")
    photo_crop(20, 10).save(tmp_path / "a.png")
    for extra in (["--model", "gan"], []):  # named, and the default when nothing is shipped
        code, _, stderr = run_cli(tmp_path / "a.png", "-o", tmp_path / "out", *extra)
        assert code == colorize.EXIT_USAGE and "is not shipped yet" in stderr
    code, _, stderr = run_cli(tmp_path / "a.png", "-o", tmp_path / "out", "--model",
                              tmp_path / "nope")
    assert code == colorize.EXIT_USAGE and "nope.json" in stderr
    assert not (tmp_path / "out" / "a.png").exists()


def test_bad_command_lines_exit_with_2(tmp_path):
    assert run_cli()[0] == colorize.EXIT_USAGE  # no input, no -o
    assert run_cli(tmp_path, "-o", tmp_path / "o", "--quality", 0)[0] == colorize.EXIT_USAGE
    assert run_cli("--help")[0] == colorize.EXIT_OK


# ---------------------------------------------------------------------------------------------
# Interruption
# ---------------------------------------------------------------------------------------------
def test_sigterm_during_a_write_removes_the_partial_file(tmp_path, model, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.png", "b.png"):
        photo_crop(30, 20).save(src / name)
    real_save = colorize.save_image

    def save_then_get_killed(rgb, path, suffix, quality):
        real_save(rgb, path, suffix, quality)
        assert path.is_file() and path.name.startswith(".a.png.colorize-")
        os.kill(os.getpid(), signal.SIGTERM)  # the handler turns it into KeyboardInterrupt
        time.sleep(5)  # not reached: the signal interrupts here at the latest

    monkeypatch.setattr(colorize, "save_image", save_then_get_killed)
    handler_before = signal.getsignal(signal.SIGTERM)
    code, stdout, _ = run_cli(src, "-o", out, "--model", model)
    assert code == colorize.EXIT_INTERRUPTED and "Interrupted" in stdout
    assert list(out.iterdir()) == []  # neither a.png nor its partial file
    assert signal.getsignal(signal.SIGTERM) == handler_before  # restored after the run
    monkeypatch.setattr(colorize, "save_image", real_save)
    code, stdout, _ = run_cli(src, "-o", out, "--model", model)
    assert code == 0 and "2 colorized" in stdout


def test_killed_run_leaves_only_complete_outputs_and_a_rerun_finishes(tmp_path, model):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    names = [f"photo{i:02d}.png" for i in range(8)]
    for name in names:
        photo_crop(900, 600).save(src / name, compress_level=1)
    proc = subprocess.Popen([sys.executable, str(ROOT / "colorize.py"), str(src), "-o", str(out),
                             "--model", model, "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
            break
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    finished = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert 0 < len(finished) < len(names), "the kill should land in the middle of the batch"
    for path in finished:  # every file under a final name is complete
        with Image.open(path) as im:
            im.load()
            assert im.size == (900, 600)
    code, stdout, _ = run_cli(src, "-o", out, "--model", model)
    assert code == 0
    assert f"{len(names) - len(finished)} colorized, {len(finished)} skipped" in stdout
    assert sorted(p.name for p in out.iterdir()) == names  # stale partial files removed too


# ---------------------------------------------------------------------------------------------
# The main job (`make run`): the shipped samples, side by side
# ---------------------------------------------------------------------------------------------
def test_main_job_writes_one_side_by_side_per_sample(tmp_path, monkeypatch, capsys):
    from colorizerutils import main as main_job
    models = tmp_path / "models"
    monkeypatch.setattr(inference, "MODELS_DIR", models)
    assert main_job.main(["--output", str(tmp_path / "none")]) == 0
    assert "no trained model is shipped yet" in capsys.readouterr().out
    cu.save_generator(cu.build_generator(64, width=8, max_width=16), models / "mse_generator",
                      width=8, max_width=16)
    assert main_job.main(["--output", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    samples = sorted(p.name for p in main_job.DEFAULT_SAMPLES.glob("*.jpg"))
    assert len(samples) >= 3 and str(tmp_path / "out") in printed
    for name in samples:
        grey = Image.open(main_job.DEFAULT_SAMPLES / name)
        width = grey.width
        # input | mse | original, each under a label strip, 4-pixel gaps
        with Image.open(tmp_path / "out" / name) as sheet:
            assert sheet.size == (3 * width + 2 * 4, grey.height + main_job._LABEL_HEIGHT)
        with Image.open(tmp_path / "none" / name) as sheet:
            assert sheet.size == (2 * width + 4, grey.height + main_job._LABEL_HEIGHT)


def test_help_states_the_video_defaults_in_force():
    """colorize.py does not import colorizerutils before parsing, so its help repeats defaults."""
    text = " ".join(colorize.build_parser().format_help().split())
    assert f"(default {cu.DEFAULT_SMOOTHING:g})" in text
    assert f"(default {cu.DEFAULT_CRF})" in text and f"(default {cu.DEFAULT_PRESET})" in text
