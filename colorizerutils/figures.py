"""Figures for the report: a model's architecture drawn from the Keras model itself, and the ab
accuracy curves of compare_models.

`draw_architecture` reads the real layers (names, output shapes, the graph's connections), so the
figure cannot drift from the code. It uses matplotlib only: keras.utils.plot_model would need
graphviz and pydot.
"""
import math
import os
from pathlib import Path

import keras
import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

from .metrics import AB_AUC_MAX, AB_THRESHOLDS

__all__ = ["architecture_blocks", "draw_architecture", "plot_ab_accuracy"]

# Layers that keep the shape of the layer before them are drawn inside its box (Conv -> BN -> act).
_FOLDED = (keras.layers.BatchNormalization, keras.layers.LeakyReLU, keras.layers.ReLU,
           keras.layers.Activation, keras.layers.Dropout)

# Geometry, in data units: one level per halving of the spatial size, one column per box.
_LEVEL_GAP = 1.0
_COLUMN_GAP = 1.0
_INTO_MERGE_GAP = 0.6  # a concatenation node is a small circle and takes less room
_FROM_MERGE_GAP = 0.8
_LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.3}  # arrows pass under labels
_FACE = {"input": "#d9d9d9", "conv": "#9ecae1", "up": "#fdae6b", "other": "white",
         "output": "#a1d99b"}
_KIND_LABEL = {"input": "input", "conv": "convolution block", "up": "upsampling block",
               "other": "padding / other", "output": "output"}


def _short(layer):
    """A few characters saying what a layer does, read from its config (e.g. 'Conv 4x4 s2')."""
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
        kind = "ConvT" if isinstance(layer, keras.layers.Conv2DTranspose) else "Conv"
        k, s = layer.kernel_size, layer.strides
        text = f"{kind} {k[0]}\u00d7{k[1]}" + (f" s{s[0]}" if s[0] > 1 else "")
        activation = getattr(layer.activation, "__name__", "linear")
        return text + ("" if activation == "linear" else f", {activation}")
    names = {keras.layers.BatchNormalization: "BN", keras.layers.LeakyReLU: "LReLU",
             keras.layers.ReLU: "ReLU", keras.layers.ZeroPadding2D: "zero pad",
             keras.layers.Concatenate: "concat", keras.layers.InputLayer: "input"}
    for cls, name in names.items():
        if isinstance(layer, cls):
            return name
    if isinstance(layer, keras.layers.Dropout):
        return f"drop {layer.rate:g}"
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, "__name__", "activation")
    return type(layer).__name__


def _describe(layers):
    """The operations of a box on two short lines: the first one, then the rest."""
    parts = []
    for layer in layers:
        parts += [_short(sub) for sub in layer.layers] if isinstance(layer, keras.Sequential) \
            else [_short(layer)]
    return parts[0] + ("\n" + ", ".join(parts[1:]) if len(parts) > 1 else "")


def _shape_text(shape):
    """(None, 32, 32, 8) -> '(32, 32, 8)': one example's output shape (H, W, channels)."""
    return str(tuple(int(d) for d in shape[1:]))


def architecture_blocks(model):
    """The boxes of the figure, in the model's order: dicts of name, layers, shape, kind, inputs.

    Each Keras layer of `model` (a U-Net block is one Sequential layer) is a box, except shape-
    keeping BatchNorm / activation / dropout layers that directly follow a single layer, which are
    folded into that layer's box. `inputs` names the boxes feeding a box.
    """
    producer = {id(layer.output): layer for layer in model.layers}
    box_of = {}  # layer name -> the box it is drawn in
    blocks = []
    for layer in model.layers:
        inputs = [] if isinstance(layer, keras.layers.InputLayer) else \
            [producer[id(t)] for t in keras.tree.flatten(layer.input) if id(t) in producer]
        shape = tuple(layer.output.shape)
        if (isinstance(layer, _FOLDED) and len(inputs) == 1 and blocks
                and box_of[inputs[0].name] is blocks[-1] and blocks[-1]["shape"] == shape):
            blocks[-1]["layers"].append(layer)
            box_of[layer.name] = blocks[-1]
            continue
        if isinstance(layer, keras.layers.InputLayer):
            kind = "input"
        elif isinstance(layer, keras.layers.Concatenate):
            kind = "merge"
        elif layer is model.layers[-1]:
            kind = "output"
        else:
            parts = layer.layers if isinstance(layer, keras.Sequential) else [layer]
            if any(isinstance(p, (keras.layers.Conv2DTranspose, keras.layers.UpSampling2D))
                   for p in parts):
                kind = "up"
            elif any(isinstance(p, (keras.layers.Conv2D, keras.layers.Dense)) for p in parts):
                kind = "conv"
            else:
                kind = "other"
        block = {"name": layer.name, "layers": [layer], "shape": shape, "kind": kind,
                 "inputs": list(dict.fromkeys(box_of[x.name]["name"] for x in inputs))}
        box_of[layer.name] = block
        blocks.append(block)
    return blocks


def _box_size(shape):
    """Box height grows with log2 of the spatial size, width with log2 of the channels."""
    spatial = math.sqrt(shape[1] * shape[2])
    return 0.14 + 0.06 * math.log2(shape[3]) + 0.02, 0.22 + 0.09 * math.log2(spatial)


def draw_architecture(model, path=None, title=None):
    """Draw `model` (e.g. cu.build_generator() or cu.build_discriminator()) as a matplotlib figure.

    One box per block, placed left to right in the model's order and lower the smaller its
    output (one level per halving of height and width), so a U-Net looks like a U. Box height
    grows with log2(spatial size), width with log2(channels). Each box is labelled with its name,
    its operations and its output shape (H, W, channels); arrows follow the real graph, and
    connections that skip ahead (the U-Net's skip connections) are drawn dashed, over the top.
    Writes the figure to `path` (any matplotlib format, by its suffix) when given. Returns the
    figure.
    """
    blocks = architecture_blocks(model)
    top_size = max(math.sqrt(b["shape"][1] * b["shape"][2]) for b in blocks)

    # Positions: inputs share the first column (stacked around their level), the rest follow
    # one per column.
    x = 0.0
    model_inputs = [b for b in blocks if b["kind"] == "input"]
    for i, block in enumerate(blocks):
        width, height = _box_size(block["shape"])
        if block["kind"] == "merge":
            width = height = 0.22
        level = math.log2(top_size / math.sqrt(block["shape"][1] * block["shape"][2]))
        block.update(width=width, height=height, y=-level * _LEVEL_GAP)
        if block["kind"] == "input":
            k = model_inputs.index(block)
            block.update(x=0.0, y=block["y"] - (k - (len(model_inputs) - 1) / 2) * (height + 0.75))
            continue
        previous = blocks[i - 1]
        x += (_INTO_MERGE_GAP if block["kind"] == "merge" else
              _FROM_MERGE_GAP if previous["kind"] == "merge" else _COLUMN_GAP)
        block["x"] = x
    by_name = {b["name"]: b for b in blocks}

    n_columns = x / _COLUMN_GAP + 1
    y_min = min(b["y"] - b["height"] / 2 for b in blocks) - 0.75
    y_max = max(b["y"] + b["height"] / 2 for b in blocks) + 0.45
    fig, ax = plt.subplots(figsize=(max(6.0, 0.95 * n_columns + 0.6),
                                    max(3.0, 1.0 * (y_max - y_min) + 0.8)))

    for block in blocks:
        bx, by, w, h = block["x"], block["y"], block["width"], block["height"]
        if block["kind"] == "merge":
            ax.add_patch(Circle((bx, by), w / 2, facecolor="white", edgecolor="black", lw=0.8,
                                zorder=3))
            ax.text(bx, by, "C", ha="center", va="center", fontsize=6, zorder=4)
            ax.text(bx, by - h / 2 - 0.06, _shape_text(block["shape"]), ha="center", va="top",
                    fontsize=6.5, zorder=4, bbox=_LABEL_BOX)
            continue
        ax.add_patch(Rectangle((bx - w / 2, by - h / 2), w, h, facecolor=_FACE[block["kind"]],
                               edgecolor="black", lw=0.8, zorder=3))
        ax.text(bx, by - h / 2 - 0.06, block["name"], ha="center", va="top", fontsize=6.5,
                fontweight="bold", zorder=4, bbox=_LABEL_BOX)
        details = _describe(block["layers"]) + "\n" + _shape_text(block["shape"])
        ax.text(bx, by - h / 2 - 0.2, details,
                ha="center", va="top", fontsize=6.5, linespacing=1.15, zorder=4, bbox=_LABEL_BOX)

    # Edges: a plain arrow from the box just before; anything else skips ahead, over the top.
    order = [b["name"] for b in blocks]
    has_skips = False
    for i, block in enumerate(blocks):
        for source_name in block["inputs"]:
            source = by_name[source_name]
            adjacent = order.index(source_name) == i - 1 or source["kind"] == "input"
            if adjacent:
                start = (source["x"] + source["width"] / 2, source["y"])
                end = (block["x"] - block["width"] / 2, block["y"])
                ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=7,
                                             lw=0.8, color="black", zorder=2,
                                             shrinkA=0, shrinkB=0))
                continue
            has_skips = True
            between = [b for b in blocks if source["x"] <= b["x"] <= block["x"]]
            route_y = max(b["y"] + b["height"] / 2 for b in between) + 0.14
            source_top = source["y"] + source["height"] / 2
            block_top = block["y"] + block["height"] / 2
            ax.plot([source["x"], source["x"], block["x"]], [source_top, route_y, route_y],
                    ls="--", lw=0.8, color="#555555", zorder=1)
            ax.add_patch(FancyArrowPatch((block["x"], route_y), (block["x"], block_top),
                                         arrowstyle="-|>", mutation_scale=7, lw=0.8,
                                         color="#555555", zorder=2, shrinkA=0, shrinkB=0))

    kinds = [k for k in _FACE if any(b["kind"] == k for b in blocks)]
    handles = [Rectangle((0, 0), 1, 1, facecolor=_FACE[k], edgecolor="black", lw=0.8)
               for k in kinds]
    legend = [_KIND_LABEL[k] for k in kinds]
    if any(b["kind"] == "merge" for b in blocks):
        handles.append(Circle((0, 0), 1, facecolor="white", edgecolor="black"))
        legend.append("C: concatenate" + (" (dashed: skip connection)" if has_skips else ""))
    ax.legend(handles, legend, loc="lower left", fontsize=7, frameon=False, ncol=len(legend),
              bbox_to_anchor=(0.0, -0.02), handlelength=1.2)
    ax.set_title(title or f"{model.name}: {model.count_params():,} parameters; box height ~ "
                 "log2(size), width ~ log2(channels); shapes are (H, W, channels)", fontsize=8)
    ax.set_xlim(-0.7, x + 0.7)
    ax.set_ylim(y_min - 0.35, y_max)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    if path is not None:
        _save_atomically(fig, path)
    return fig


def plot_ab_accuracy(rows, ax=None):
    """The mean ab accuracy curve of each model from compare_models, with its AuC in the legend."""
    new_figure = ax is None
    if new_figure:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for row in rows:
        ax.plot(AB_THRESHOLDS, row["ab_curve"], label=f"{row['model']} (AuC {row['auc']:.3f})",
                ls="--" if row["model"] == "grayscale" else "-")
    ax.set_xlim(0, AB_AUC_MAX)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("threshold on the ab error (LAB units)")
    ax.set_ylabel("fraction of pixels within it")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if new_figure:
        ax.figure.tight_layout()
    return ax


def _save_atomically(fig, path):
    """Save under a temporary name, then rename: an interrupted run leaves no half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=200, bbox_inches="tight")
    os.replace(tmp, path)
