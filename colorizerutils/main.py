"""The README's main job (`make run`): colorize the sample photos with every shipped image model.

    python -m colorizerutils.main [--samples resources/samples] [--output output/samples]

Each sample in resources/samples (grayscale JPEGs made from held-out test photos, see its README)
is written to the output folder as one side-by-side JPEG: the grayscale input | one panel per
shipped model | the original colour photo it was made from. When no model is shipped yet, it says
so and writes input | original only, so the job still shows what it would compare.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import colorizerutils as cu
from colorizerutils.data import REPO_ROOT

DEFAULT_SAMPLES = REPO_ROOT / "resources" / "samples"
DEFAULT_OUTPUT = Path("output") / "samples"
IMAGE_MODELS = ("mse", "gan")  # the shipped models made for still photos, in panel order
_LABEL_HEIGHT = 22


def load_samples(samples_dir):
    """[(sample path, original colour photo path or None)] for the images in `samples_dir`."""
    samples_dir = Path(samples_dir)
    sources_file = samples_dir / "sources.json"
    sources = json.loads(sources_file.read_text()) if sources_file.is_file() else {}
    samples = []
    for path in cu.find_files(samples_dir, cu.IMAGE_EXTENSIONS):
        original = sources.get(path.name)
        original = REPO_ROOT / original if original else None
        samples.append((path, original if original and original.is_file() else None))
    return samples


def labelled(panel, label):
    """A panel (uint8 RGB) with a white strip above it holding `label`."""
    strip = Image.new("RGB", (panel.shape[1], _LABEL_HEIGHT), "white")
    try:
        font = ImageFont.load_default(size=_LABEL_HEIGHT - 6)  # scalable when FreeType is there
    except (TypeError, OSError):
        font = ImageFont.load_default()
    ImageDraw.Draw(strip).text((6, 2), label, fill="black", font=font)
    return np.concatenate([np.asarray(strip), panel], axis=0)


def sample_sheet(sample, original, models):
    """One side-by-side for a sample: input | each model's colorization | original (if known)."""
    pixels = cu.as_pixels(cu.read_image(sample))
    panels = [labelled(cu.grayscale_baseline(pixels), "grayscale input")]
    for name, generator in models.items():
        panels.append(labelled(cu.colorize_image(generator, pixels), f"{name} model"))
    if original is not None:
        colour = cu.to_uint8(cu.read_image(original))
        if colour.shape[:2] == pixels.shape[:2]:
            panels.append(labelled(colour, "original colour"))
    return cu.side_by_side(*panels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default=str(DEFAULT_SAMPLES), help="folder of sample photos")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="folder for the results")
    args = parser.parse_args(argv)

    samples = load_samples(args.samples)
    if not samples:
        print(f"No sample photos in {args.samples}.", file=sys.stderr)
        return 1
    names = cu.shipped_models(IMAGE_MODELS)
    if names:
        print(f"Models: {', '.join(names)} (from {cu.MODELS_DIR})")
    else:
        print(f"NOTE: no trained model is shipped yet ({cu.MODELS_DIR} has none of "
              f"{', '.join(n + '_generator.json' for n in IMAGE_MODELS)}). Train one with "
              "MSE_Colorizer.ipynb or GAN_Colorizer.ipynb. Writing grayscale input | original "
              "only, without any colorization.")
    models = {name: cu.load_model(name) for name in names}
    output_dir = Path(args.output)
    output_dir.mkdir(parents=True, exist_ok=True)
    for sample, original in samples:
        sheet = sample_sheet(sample, original, models)
        target = output_dir / (sample.stem + ".jpg")
        partial = target.with_name(f".{target.name}.partial")
        Image.fromarray(sheet).save(partial, format="JPEG", quality=92, subsampling=0)
        os.replace(partial, target)  # never a half-written result under the final name
        print(f"  {target}")
    print(f"{len(samples)} side-by-side results in {output_dir.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
