"""Figures for the notebooks: sample grids and loss curves read back from the event files."""
import matplotlib.pyplot as plt
import numpy as np

from .colour import l_ab_to_rgb
from .training import read_scalars


def show_training_samples(dataset, n=16, title="Training samples (random-scale crops, augmented)"):
    """A grid of colour crops from a (l_norm, ab_norm) dataset, with their L channel beside them."""
    l_norm, ab_norm = next(iter(dataset))
    rgb = l_ab_to_rgb(l_norm[:n], ab_norm[:n]).numpy()
    cols = 8
    rows = int(np.ceil(len(rgb) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.4, rows * 1.4))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, im in zip(np.ravel(axes), rgb):
        ax.imshow(im)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(log_dir, tags, title=None, smooth=0.0, ax=None):
    """Draw TensorBoard scalars from `log_dir` with matplotlib (so they show on a static page).

    `smooth` is the weight of an exponential moving average applied to the training curves, as in
    TensorBoard's slider; validation curves (a point every few hundred steps) are drawn raw.
    """
    series = read_scalars(log_dir)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for tag in tags:
        if tag not in series:
            continue
        steps, values = series[tag]
        if smooth > 0 and len(values) > 1 and "validation" not in tag:  # noisy training curves only
            out, acc = [], values[0]
            for v in values:
                acc = smooth * acc + (1 - smooth) * v
                out.append(acc)
            values = np.array(out)
        ax.plot(steps, values, label=tag.split("/")[-1])
    ax.set_xlabel("step")
    ax.set_title(title or str(log_dir))
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def show_rows(rows, titles, row_labels=None, width=12):
    """A grid of uint8 images: one row per example, one column per method."""
    n_rows, n_cols = len(rows), len(titles)
    aspect = rows[0][0].shape[0] / rows[0][0].shape[1]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, width / n_cols * aspect * n_rows + 0.5),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            axes[r, c].imshow(im)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(titles[c])
        if row_labels:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    fig.tight_layout()
    return fig


def write_side_by_side_gif(frame_rows, path, fps, panel_width=256, every=1, max_frames=None,
                           gap=4):
    """Write an animated GIF of panels side by side (e.g. grayscale | colorized | original).

    `frame_rows` yields, per video frame, a tuple of uint8 RGB images (one per panel). Each panel is
    resized to `panel_width` pixels wide; every `every`-th frame is kept (the GIF plays at
    fps / every, so its duration matches the clip's). Written to a temporary name, then renamed.
    """
    import os
    from pathlib import Path

    from PIL import Image

    from .inference import side_by_side

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = []
    for i, panels in enumerate(frame_rows):
        if i % every:
            continue
        resized = []
        for im in panels:
            h = round(im.shape[0] * panel_width / im.shape[1])
            resized.append(np.asarray(Image.fromarray(im).resize((panel_width, h),
                                                                  Image.Resampling.LANCZOS)))
        # An adaptive palette without dithering: dithering noise defeats GIF's compression
        # (files several times larger) for little visible gain at this size.
        frames.append(Image.fromarray(side_by_side(*resized, gap=gap)).quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
        if max_frames and len(frames) >= max_frames:
            break
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    tmp = path.with_name(path.name + ".tmp")
    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=round(1000 * every / fps), optimize=True)
    os.replace(tmp, path)
    return path
