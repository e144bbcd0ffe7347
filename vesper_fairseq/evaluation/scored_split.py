"""The split vesper-evaluate scores, in the classifier's own classes.

The class names come from the checkpoint (``model.labels``), never from a data folder: the
manifests may have moved, their ``dict.emo.txt`` may be gone, or list other classes, or the
same ones in another order. A row's label is matched to the model's classes by name (after
``--label-map``); rows whose class the model does not know are left out and reported, never
scored as another class.
"""

import logging
import os
from pathlib import Path

from ..data.labelled_audio import load_label_dict
from ..data.manifest_file import read_audio_manifest
from ..label_map import LabelMap, Remapped, parse_label_map, remap_split

logger = logging.getLogger(__name__)


def model_labels(state: dict, checkpoint) -> list[str]:
    """The class names a fine-tuned classifier checkpoint stores, in class-id order."""
    labels = (state.get("cfg") or {}).get("model", {}).get("labels")
    if not labels:
        raise ValueError(f"{checkpoint}: model.labels (the class names) is not in the checkpoint")
    return [str(label) for label in labels]


def data_folder(state: dict, data: str | None, split: str, checkpoint) -> Path:
    """``data``, else the folder the classifier was trained on (task.data), holding the split."""
    trained_on = (state.get("cfg") or {}).get("task", {}).get("data")
    folder = data or trained_on
    if not folder:
        raise ValueError(f"{checkpoint} names no data folder: pass --data MANIFESTS")
    tsv = Path(folder) / f"{split}.tsv"
    if not tsv.is_file():
        hint = "" if data else (
            f" ({folder} is the folder {checkpoint} was trained on: it has moved or is gone; "
            "pass --data with the manifests to score)"
        )  # fmt: skip
        raise FileNotFoundError(f"{tsv} not found{hint}")
    read_audio_manifest(tsv)  # its audio folder exists and it has rows
    return Path(os.path.abspath(folder))


def split_labels(data: Path, split: str) -> list[str]:
    path = data / f"{split}.emo"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (one label per row of {split}.tsv)")
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    return labels


def to_model_labels(
    labels: list[str], data: Path, split: str, label_map: LabelMap, out: Path
) -> Remapped | None:
    """None when every row's label is one of ``labels`` and no map is given (the split is
    scored as it is, by name); else the split rewritten in the model's classes (in
    OUT/scored_manifest/), rows of classes the model does not know left out and logged."""
    found = set(split_labels(data, split))
    if not label_map.mapping and found <= set(labels):
        note_data_dict(data, labels)
        return None
    remapped = remap_split(data, split, labels, label_map, out / "scored_manifest")
    for text in left_out_text(remapped).splitlines():
        logger.warning(text)
    return remapped


def note_data_dict(data: Path, labels: list[str]) -> None:
    """Says when the data's own dict.emo.txt lists other classes (or another order)."""
    path = data / "dict.emo.txt"
    try:
        theirs, _ = load_label_dict(str(path))
    except (OSError, ValueError):
        return
    if theirs != labels:
        logger.info(
            "%s lists %s, the classifier's classes are %s: labels are matched by name",
            path,
            theirs,
            labels,
        )


def left_out_text(remapped: Remapped | None) -> str:
    if remapped is None:
        return ""
    lines = [f"data labels mapped to the model's classes; {remapped.kept} rows kept"]
    for what, counts in (
        ("the model does not know", remapped.left_out),
        ("the label map drops", remapped.dropped),
    ):
        if counts:
            detail = ", ".join(f"{label} ({n})" for label, n in sorted(counts.items()))
            lines.append(f"left out, classes {what}: {detail}")
    return "\n".join(lines) + "\n"


def cross_corpus_info(remapped: Remapped | None, label_map: str | None) -> dict:
    if remapped is None:
        return {}
    return {
        "label_map": parse_label_map(label_map).mapping,
        "left_out": dict(sorted(remapped.left_out.items())),
        "dropped_by_label_map": dict(sorted(remapped.dropped.items())),
    }
