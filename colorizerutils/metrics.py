"""Metrics, at full resolution against the original colour image.

Always report the grayscale baseline (ab = 0, `grayscale_baseline`) beside a model: it keeps the
original L exactly and so scores a deceptively high PSNR, SSIM and ab accuracy. `compare_models`
adds that row by itself.

- psnr, ssim: in RGB, scikit-image's implementations.
- colourfulness: Hasler and Suesstrunk (2003), of the output and of the original; a model that
  plays safe (brownish, desaturated) scores well on PSNR and badly here.
- ab_accuracy: the "AuC" of Zhang et al. (2016), the fraction of pixels whose ab error is within a
  threshold, swept from 0 to 150, and the area under that curve.

Colourfulness and the ab accuracy process an image a block of rows at a time: for a 12 MP photo
they need about 30 MB of working memory beyond the two images. scikit-image's PSNR and SSIM work
on whole float64 copies: about 0.7 GB and 1.3 GB more for a 12 MP photo (measured).
"""
import math

import numpy as np
from skimage.color import rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .data import read_image, to_float01, to_uint8
from .inference import grayscale_baseline

__all__ = ["psnr", "ssim", "colourfulness", "ab_accuracy", "image_metrics", "compare_models",
           "format_table", "AB_AUC_MAX", "AB_THRESHOLDS", "METRIC_KEYS"]

_ROWS_PER_BLOCK = 256  # rows converted at a time: ~12 MB of float32 per image for a 4000-wide photo


# ---------------------------------------------------------------------------------------------
# Inputs
def _as_rgb(image, what="image"):
    """A path or a numpy image -> (H, W, 3) array (uint8, uint16 or float), with a clear error."""
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        return read_image(image)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what}: expected an RGB image of shape (H, W, 3), got shape "
                         f"{image.shape}")
    return image


def _pair(original, output):
    """Both images as RGB arrays of the same size, or a ValueError naming them and their sizes."""
    names = [str(x) if isinstance(x, (str, bytes)) or hasattr(x, "__fspath__") else None
             for x in (original, output)]
    original = _as_rgb(original, names[0] or "original")
    output = _as_rgb(output, names[1] or "output")
    if original.shape != output.shape:
        raise ValueError(f"{names[1] or 'output'} has shape {output.shape} but "
                         f"{names[0] or 'the original'} has {original.shape}: metrics compare "
                         "an output with its original at full resolution (same size)")
    return original, output


# ---------------------------------------------------------------------------------------------
# PSNR and SSIM (RGB, 8-bit)
def psnr(reference, output):
    """PSNR in dB of two RGB images, as uint8 (scikit-image's implementation); inf if identical."""
    reference, output = _pair(reference, output)
    with np.errstate(divide="ignore"):  # identical images: 10 log10(255^2 / 0) = inf, as intended
        return float(peak_signal_noise_ratio(to_uint8(reference), to_uint8(output), data_range=255))


def ssim(reference, output):
    """SSIM of two RGB images, as uint8 (scikit-image's, averaged over the colour channels).

    scikit-image works on one channel at a time in float64: about 1 GB of working memory for a
    12 MP photo.
    """
    reference, output = _pair(reference, output)
    return float(structural_similarity(to_uint8(reference), to_uint8(output), channel_axis=2,
                                       data_range=255))


# ---------------------------------------------------------------------------------------------
# Colourfulness (Hasler and Suesstrunk 2003, "Measuring colourfulness in natural images")
def _rgb255(block):
    """An RGB block on the 0-255 scale, float64 (uint8 values stay exact integers)."""
    if block.dtype == np.uint8:
        return block.astype(np.float64)
    return to_float01(block).astype(np.float64) * 255.0


def colourfulness(image):
    """Hasler and Suesstrunk's colourfulness M of an RGB image (0-255 scale); 0 for grey.

    rg = R - G, yb = (R + G) / 2 - B over all pixels, and
    M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)  (population std).
    The authors' scale: about 15 "slightly colourful", 33 "moderately", 45 "averagely",
    59 "quite", 82 "highly", 109 "extremely colourful".
    """
    image = _as_rgb(image)
    # Sums and sums of squares, block by block: exact for uint8 input (integers and halves well
    # below 2^53), and the full-size rg / yb planes are never held.
    sums = np.zeros(4)  # sum rg, sum rg^2, sum yb, sum yb^2
    for top in range(0, image.shape[0], _ROWS_PER_BLOCK):
        rgb = _rgb255(image[top:top + _ROWS_PER_BLOCK])
        rg = rgb[..., 0] - rgb[..., 1]
        yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        sums += [rg.sum(), np.square(rg).sum(), yb.sum(), np.square(yb).sum()]
    n = image.shape[0] * image.shape[1]
    mean_rg, mean_yb = sums[0] / n, sums[2] / n
    var_rg = max(sums[1] / n - mean_rg ** 2, 0.0)
    var_yb = max(sums[3] / n - mean_yb ** 2, 0.0)
    return float(math.sqrt(var_rg + var_yb) + 0.3 * math.hypot(mean_rg, mean_yb))


# ---------------------------------------------------------------------------------------------
# ab accuracy and its area under the curve (Zhang, Isola and Efros 2016, "Colorful Image
# Colorization", the "AuC" of their Table 1)
AB_AUC_MAX = 150  # thresholds are swept from 0 to 150 LAB units
AB_THRESHOLDS = np.arange(AB_AUC_MAX + 1)  # the curve is sampled at every integer threshold
# Colour classes for the rebalanced variant: Zhang et al.'s grid, cells of 10x10 in ab centred on
# multiples of 10 (so grey, a = b = 0, is the centre of one class), a and b in [-135, 135).
_AB_CLASS_STEP = 10.0
_AB_CLASS_SIDE = 27


def _ab_blocks(original, output):
    """Per block of rows: (ab error (h, W) float32, original ab (h, W, 2)), in LAB units."""
    for top in range(0, original.shape[0], _ROWS_PER_BLOCK):
        rows = slice(top, top + _ROWS_PER_BLOCK)
        ab_true = rgb2lab(to_float01(original[rows]))[..., 1:]
        ab_out = rgb2lab(to_float01(output[rows]))[..., 1:]
        yield np.sqrt(np.square(ab_out - ab_true).sum(axis=-1)), ab_true


def ab_accuracy(original, output):
    """Zhang et al.'s raw ab accuracy of `output` against `original`, both RGB at full resolution.

    A pixel's error is the Euclidean distance between the ab of output and original (CIE LAB,
    scikit-image's rgb2lab, D65). Returns a dict:

    - thresholds: 0, 1, ..., 150 (LAB units) and
    - curve: the fraction of pixels with error <= each threshold (the cumulative mass function);
    - auc: the area under that curve for thresholds in [0, 150], divided by 150, so in [0, 1].
      It is the exact area of the empirical curve, which equals the mean over pixels of
      max(0, 1 - error / 150): a uniform error d gives exactly 1 - d / 150. (A trapezoid over the
      integer-sampled curve differs from it by at most 1/300.)
    - auc_rebalanced: the same with each pixel weighted by 1 / (frequency of its ground-truth
      colour class), classes being 10x10 cells of the ab plane centred on multiples of 10 as in
      Zhang et al., so that rare saturated colours count as much as the common near-grey ones.
      Zhang et al. took the class frequencies over all of ImageNet; here they are the
      frequencies within this one image, i.e. this is the mean of the per-class AuC over the
      classes present in the original.

    This is the plain ("non-rebal") metric of the paper unless stated: the curve and `auc` are
    not class-rebalanced. Predicting grey for every pixel already scores high on it, hence the
    grayscale baseline beside every model.
    """
    original, output = _pair(original, output)
    n_classes = _AB_CLASS_SIDE ** 2
    error_counts = np.zeros(AB_AUC_MAX + 2, np.int64)  # by ceil(error), the last bin for > 150
    area_sum = 0.0
    class_area = np.zeros(n_classes)
    class_count = np.zeros(n_classes)
    for error, ab_true in _ab_blocks(original, output):
        # error <= t for an integer t exactly when ceil(error) <= t
        error_bins = np.minimum(np.ceil(error), AB_AUC_MAX + 1).astype(np.int64).ravel()
        error_counts += np.bincount(error_bins, minlength=AB_AUC_MAX + 2)
        area = np.clip(1.0 - error / AB_AUC_MAX, 0.0, 1.0)
        area_sum += float(area.sum(dtype=np.float64))
        cell = np.clip(np.round(ab_true / _AB_CLASS_STEP) + _AB_CLASS_SIDE // 2, 0,
                       _AB_CLASS_SIDE - 1).astype(np.int64)
        classes = (cell[..., 0] * _AB_CLASS_SIDE + cell[..., 1]).ravel()
        class_area += np.bincount(classes, weights=area.ravel(), minlength=n_classes)
        class_count += np.bincount(classes, minlength=n_classes)
    n_pixels = original.shape[0] * original.shape[1]
    present = class_count > 0
    return {"thresholds": AB_THRESHOLDS.copy(),
            "curve": np.cumsum(error_counts)[:AB_AUC_MAX + 1] / n_pixels,
            "auc": area_sum / n_pixels,
            "auc_rebalanced": float(np.mean(class_area[present] / class_count[present]))}


# ---------------------------------------------------------------------------------------------
# All metrics of one image, and a table over models
METRIC_KEYS = ("psnr", "ssim", "colourfulness_output", "colourfulness_original",
               "colourfulness_diff", "auc", "auc_rebalanced")


def image_metrics(original, output, with_curve=False):
    """Every image metric of one output against its original (paths or RGB arrays, same size).

    Returns {psnr, ssim, colourfulness_output, colourfulness_original, colourfulness_diff
    (output - original: negative means duller than the original), auc, auc_rebalanced}, plus
    `ab_curve` (the 151-point accuracy curve over AB_THRESHOLDS) when `with_curve`.
    """
    original, output = _pair(original, output)
    accuracy = ab_accuracy(original, output)
    colourful_out, colourful_orig = colourfulness(output), colourfulness(original)
    result = {"psnr": psnr(original, output),
              "ssim": ssim(original, output),
              "colourfulness_output": colourful_out,
              "colourfulness_original": colourful_orig,
              "colourfulness_diff": colourful_out - colourful_orig,
              "auc": accuracy["auc"],
              "auc_rebalanced": accuracy["auc_rebalanced"]}
    if with_curve:
        result["ab_curve"] = accuracy["curve"]
    return result


def compare_models(originals, outputs_by_name, grayscale=True):
    """One row of mean metrics per model, for the report; the grayscale baseline included.

    `originals`: a list of original colour images (paths or arrays). `outputs_by_name`:
    {model name: list of that model's outputs for the same images, in the same order}. Unless
    `grayscale` is False or a "grayscale" entry is given, a "grayscale" row is added first, made
    with `grayscale_baseline` (the original's L, ab = 0).

    Returns a list of dicts, one per model: {"model", "n_images", the means of METRIC_KEYS,
    "ab_curve" (the mean accuracy curve over AB_THRESHOLDS, for plot_ab_accuracy)}. PSNR is
    averaged in dB (it is inf where an output equals its original).
    """
    originals = list(originals)
    outputs_by_name = {name: list(outputs) for name, outputs in outputs_by_name.items()}
    for name, outputs in outputs_by_name.items():
        if len(outputs) != len(originals):
            raise ValueError(f"model {name!r}: {len(outputs)} outputs for {len(originals)} "
                             "originals (one output per original, in the same order)")
    if not originals:
        raise ValueError("compare_models: no images to compare")
    if grayscale and "grayscale" not in outputs_by_name:
        outputs_by_name = {"grayscale": None, **outputs_by_name}
    per_model = {name: [] for name in outputs_by_name}
    for i, original in enumerate(originals):
        original = _as_rgb(original, "original")  # read once per image, whatever the models
        for name, outputs in outputs_by_name.items():
            output = grayscale_baseline(original) if outputs is None else outputs[i]
            per_model[name].append(image_metrics(original, output, with_curve=True))
    rows = []
    for name, per_image in per_model.items():
        row = {"model": name, "n_images": len(per_image)}
        row.update({key: float(np.mean([m[key] for m in per_image])) for key in METRIC_KEYS})
        row["ab_curve"] = np.mean([m["ab_curve"] for m in per_image], axis=0)
        rows.append(row)
    return rows


_TABLE_COLUMNS = (("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
                  ("auc", "AuC", "{:.4f}"), ("auc_rebalanced", "AuC rebal.", "{:.4f}"),
                  ("colourfulness_output", "colourfulness", "{:.1f}"),
                  ("colourfulness_original", "original's", "{:.1f}"),
                  ("colourfulness_diff", "difference", "{:+.1f}"))


def format_table(rows):
    """compare_models rows -> a Markdown table (higher is better for all but |difference|)."""
    lines = ["| model | images | " + " | ".join(title for _, title, _ in _TABLE_COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(_TABLE_COLUMNS)]
    for row in rows:
        cells = [fmt.format(row[key]) for key, _, fmt in _TABLE_COLUMNS]
        lines.append(f"| {row['model']} | {row['n_images']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
