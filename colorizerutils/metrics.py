"""Metrics, at full resolution against the original colour image. Always report the grayscale
baseline (ab = 0) beside a model: it scores a deceptively high PSNR."""
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .data import to_uint8


def psnr(reference, output):
    """PSNR in dB of two uint8 RGB images (scikit-image's implementation)."""
    return float(peak_signal_noise_ratio(to_uint8(reference), to_uint8(output), data_range=255))


def ssim(reference, output):
    """SSIM of two uint8 RGB images (scikit-image's, over the colour channels)."""
    return float(structural_similarity(to_uint8(reference), to_uint8(output), channel_axis=2,
                                       data_range=255))
