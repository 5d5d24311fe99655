"""Colour: sRGB (D65) <-> CIE LAB in TensorFlow ops, and the network's normalisation.

Every function here works on tensors of any leading shape (a pixel, an image, a batch), runs inside
tf.data and on any device, and is differentiable. The constants are those of scikit-image
(`skimage.color.rgb2lab` / `lab2rgb`, illuminant D65, 2-degree observer) so that the two agree to
better than 0.01 in L, a and b (tests/test_colour.py).
"""
import numpy as np
import tensorflow as tf

# ---------------------------------------------------------------------------------------------
# Normalisation for the network. Named once, each with its inverse.
# L in [0, 100] -> [-1, 1]; ab in about [-110, 110] -> about [-1, 1] (the generator ends in tanh).
L_CENTER = 50.0
L_NORM = 50.0
AB_NORM = 110.0


def normalize_l(l_channel):
    """L in [0, 100] -> [-1, 1]."""
    return (l_channel - L_CENTER) / L_NORM


def unnormalize_l(l_norm):
    """[-1, 1] -> L in [0, 100]."""
    return l_norm * L_NORM + L_CENTER


def normalize_ab(ab):
    """ab in [-110, 110] -> [-1, 1]."""
    return ab / AB_NORM


def unnormalize_ab(ab_norm):
    """[-1, 1] -> ab in [-110, 110]."""
    return ab_norm * AB_NORM


# ---------------------------------------------------------------------------------------------
# sRGB <-> XYZ <-> LAB, as scikit-image defines them.
_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])  # reference white, D65, 2-degree observer

# f(t) of CIE LAB: cube root above a small threshold, a line below (scikit-image's constants).
_LAB_EPS = 0.008856
_LAB_KAPPA = 7.787
_LAB_F_EPS = 0.2068966  # f(_LAB_EPS), the same threshold on the other side


def _srgb_to_linear(rgb):
    rgb = tf.clip_by_value(rgb, 0.0, 1.0)
    # tf.maximum keeps pow away from 0 so that its gradient stays finite on the unused branch.
    high = tf.pow((tf.maximum(rgb, 0.04045) + 0.055) / 1.055, 2.4)
    return tf.where(rgb > 0.04045, high, rgb / 12.92)


def _linear_to_srgb(lin):
    high = 1.055 * tf.pow(tf.maximum(lin, 0.0031308), 1.0 / 2.4) - 0.055
    return tf.where(lin > 0.0031308, high, lin * 12.92)


def _lab_f(t):
    cube_root = tf.pow(tf.maximum(t, _LAB_EPS), 1.0 / 3.0)
    return tf.where(t > _LAB_EPS, cube_root, _LAB_KAPPA * t + 16.0 / 116.0)


def _lab_f_inv(f):
    cube = tf.pow(f, 3.0)
    return tf.where(f > _LAB_F_EPS, cube, (f - 16.0 / 116.0) / _LAB_KAPPA)


def _apply_3x3(matrix, v):
    """`matrix` (3, 3) times the last axis of v, written as multiply-adds.

    Not tf.tensordot: a matmul may run in TensorFloat-32 on recent NVIDIA GPUs (TensorFlow's
    default); rounding the inputs to its 10-bit mantissa costs up to 0.02 in L and 0.06 in a (a
    numpy simulation on random colours), above the 0.01 promised. Multiply-adds stay float32.
    """
    c0, c1, c2 = v[..., 0], v[..., 1], v[..., 2]
    return tf.stack([float(row[0]) * c0 + float(row[1]) * c1 + float(row[2]) * c2
                     for row in matrix], axis=-1)


def rgb_to_lab(rgb):
    """sRGB in [0, 1], shape (..., 3) -> LAB (..., 3): L in [0, 100], a and b in about [-128, 128]."""
    rgb = tf.convert_to_tensor(rgb, tf.float32)
    lin = _srgb_to_linear(rgb)
    xyz = _apply_3x3(_XYZ_FROM_RGB, lin)
    f = _lab_f(xyz / tf.constant(_WHITE_D65, tf.float32))
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab):
    """LAB (..., 3) -> sRGB in [0, 1]. Colours outside the sRGB gamut are clipped, never NaN."""
    lab = tf.convert_to_tensor(lab, tf.float32)
    l_channel, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (l_channel + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = tf.maximum(fy - b / 200.0, 0.0)  # scikit-image clips negative z the same way
    xyz = _lab_f_inv(tf.stack([fx, fy, fz], axis=-1)) * tf.constant(_WHITE_D65, tf.float32)
    lin = _apply_3x3(_RGB_FROM_XYZ, xyz)
    return tf.clip_by_value(_linear_to_srgb(lin), 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Network input/output <-> images.
def rgb_to_l_ab(rgb):
    """sRGB in [0, 1], (..., H, W, 3) -> (l_norm (..., H, W, 1) in [-1, 1], ab_norm (..., H, W, 2))."""
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[..., :1]), normalize_ab(lab[..., 1:])


def l_ab_to_rgb(l_norm, ab_norm):
    """The inverse of rgb_to_l_ab: normalised L and ab -> sRGB in [0, 1]."""
    lab = tf.concat([unnormalize_l(l_norm), unnormalize_ab(ab_norm)], axis=-1)
    return lab_to_rgb(lab)


# ---------------------------------------------------------------------------------------------
# Grey input. A grey pixel (v, v, v) has a = b = 0 and an L that depends on v alone, so 8-bit
# grayscale converts to L through a 256-entry table instead of the full conversion.
def _grey_l_table():
    v = tf.linspace(0.0, 1.0, 256)
    return rgb_to_lab(tf.stack([v, v, v], axis=-1))[:, 0].numpy().astype(np.float32)


_GREY_L_TABLE = None


def grey_to_l(grey):
    """Grey values -> L in [0, 100] (numpy float32, same shape).

    uint8 input is looked up in a 256-entry table; float input in [0, 1] (or uint16) goes through
    the exact formula, which for grey reduces to L = 116 f(Y) - 16 with Y the linearised value.
    """
    global _GREY_L_TABLE
    grey = np.asarray(grey)
    if grey.dtype == np.uint8:
        if _GREY_L_TABLE is None:
            _GREY_L_TABLE = _grey_l_table()
        return _GREY_L_TABLE[grey]
    if grey.dtype == np.uint16:
        grey = grey.astype(np.float32) / 65535.0
    y = np.clip(grey.astype(np.float32), 0.0, 1.0)
    lin = np.where(y > 0.04045, ((np.maximum(y, 0.04045) + 0.055) / 1.055) ** 2.4, y / 12.92)
    f = np.where(lin > _LAB_EPS, np.cbrt(lin), _LAB_KAPPA * lin + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


def rgb_to_luminance_l(rgb):
    """Numpy sRGB image (uint8, uint16 or float in [0, 1]) -> its L channel in [0, 100] (float32).

    The same L as rgb_to_lab, computed in numpy row block by row block so that a 12 MP scan needs
    only a few extra rows of float32 at a time. A grey image, (H, W) or (H, W, 1), goes through
    grey_to_l.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 1):
        return grey_to_l(rgb.reshape(rgb.shape[:2]))
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey image, got shape {rgb.shape}")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype, 1.0)
    out = np.empty(rgb.shape[:2], np.float32)
    y_row = _XYZ_FROM_RGB[1].astype(np.float32)
    for start in range(0, rgb.shape[0], 256):
        block = np.clip(rgb[start:start + 256].astype(np.float32) / scale, 0.0, 1.0)
        lin = np.where(block > 0.04045, ((np.maximum(block, 0.04045) + 0.055) / 1.055) ** 2.4,
                       block / 12.92)
        y = lin @ y_row
        f = np.where(y > _LAB_EPS, np.cbrt(np.maximum(y, 0)), _LAB_KAPPA * y + 16.0 / 116.0)
        out[start:start + 256] = 116.0 * f - 16.0
    return out
