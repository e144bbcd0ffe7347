"""Confusion-matrix figures for papers (matplotlib, Agg canvas, no pyplot global state)."""

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vesper_fairseq.evaluation.scores import as_confusion_array
from vesper_fairseq.io_utils import atomic_path


def _panel(fig, ax, values, labels, title, fmt, vmax, cbar_label):
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax)
    ticks = np.arange(len(labels))
    rotate = max(len(str(label)) for label in labels) > 4
    ax.set_xticks(ticks, labels, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    size = max(6.0, 11.0 - 0.4 * len(labels))
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = fmt(i, j)
            color = "white" if vmax > 0 and values[i, j] > 0.6 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=size)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label(cbar_label)


def plot_confusion(confusion, labels: list[str], path: str, title: str | None = None) -> None:
    """Write a PNG with the row-normalised confusion (recall per class, %) and the raw counts,
    rows = true class, columns = predicted class. Rows without samples show a dash."""
    conf = as_confusion_array(confusion)
    if len(labels) != conf.shape[0]:
        raise ValueError(f"{len(labels)} labels for a {conf.shape[0]}-class confusion ({path})")
    support = conf.sum(axis=1, keepdims=True)
    percent = np.divide(100.0 * conf, support, out=np.zeros_like(conf), where=support > 0)

    side = max(3.2, 0.55 * len(labels) + 1.6)
    fig = Figure(figsize=(2 * side + 1.6, side + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)

    def percent_text(i, j):
        return "–" if support[i, 0] == 0 else f"{percent[i, j]:.1f}"

    def count_text(i, j):
        return f"{int(conf[i, j])}"

    _panel(fig, left, percent, labels, "Recall per class (%)", percent_text, 100.0, "%")
    _panel(fig, right, conf, labels, "Counts", count_text, max(conf.max(), 1.0), "utterances")
    if title:
        fig.suptitle(title)

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=200)
