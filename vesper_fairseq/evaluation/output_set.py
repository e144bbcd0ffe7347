"""vesper-evaluate's output folder, written as one set and recording what made it.

Every file is written into a temporary sibling folder, which takes the place of OUT only when
all are written: a run killed at any moment leaves the earlier complete set or the new one.
metrics.json records the settings (``made_by``: checkpoint path and file digest, data folder,
split, digests of its manifest and labels, label map); a rerun into a folder made with other
settings is refused, naming what differs, unless ``overwrite``; one with the same settings
redoes and replaces it. A folder holding files vesper-evaluate does not write is never replaced.
"""

import contextlib
import glob
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from ..fingerprint import differences, file_digest
from ..io_utils import atomic_folder, exclusive_lock
from ..label_map import LabelMap
from .scored_split import split_labels

logger = logging.getLogger(__name__)

OUTPUTS = ("metrics.json", "predictions.tsv", "report.txt", "confusion.png", "scored_manifest")
STAGING = ".evaluating"  # suffix of the temporary folder beside OUT


def made_by(checkpoint, data: Path, split: str, label_map: LabelMap) -> dict:
    """The settings an evaluation's outputs depend on (device and batch size aside)."""
    labels = "".join(f"{label}\n" for label in split_labels(data, split))
    return {
        "checkpoint": os.path.abspath(checkpoint),
        "checkpoint_sha256": file_digest(checkpoint),
        "data": str(data),
        "split": split,
        "manifest_sha256": file_digest(data / f"{split}.tsv"),
        "labels_sha256": hashlib.sha256(labels.encode("utf-8")).hexdigest(),
        "label_map": label_map.mapping,
    }


@contextlib.contextmanager
def output_set(out: Path, settings: dict, overwrite: bool = False):
    """Yields the temporary folder to write the outputs into; it becomes `out` when the block
    completes. Checks `out` first (see check_folder); a second run on `out` stops at once."""
    out = Path(os.path.abspath(out))
    with exclusive_lock(out.parent / f".{out.name}.lock", f"the evaluation {out}"):
        check_folder(out, settings, overwrite)
        for stale in glob.glob(f"{glob.escape(str(out.parent / f'.{out.name}.'))}*{STAGING}*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
        with atomic_folder(out, suffix=STAGING) as staging:
            yield staging


def check_folder(out: Path, settings: dict, overwrite: bool) -> None:
    """`out` may be absent, empty, an incomplete evaluation (no metrics.json) or one made with
    `settings`; with `overwrite`, any evaluation. Never a folder holding other files."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUTS)
    if foreign:
        raise ValueError(
            f"--out {out} holds files vesper-evaluate does not write ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}): give a new folder or an earlier evaluation's"
        )
    if not (out / "metrics.json").is_file():
        return  # empty, or the partial outputs of an earlier release's killed run: replaced
    diffs = setting_differences(recorded_settings(out / "metrics.json"), settings)
    if diffs and not overwrite:
        raise ValueError(
            f"{out} holds an evaluation made with other settings ({'; '.join(diffs)}): rerun "
            "with --overwrite to replace it, or write to another --out"
        )
    if diffs:
        logger.info("%s: replacing an evaluation made with other settings (--overwrite)", out)


def setting_differences(recorded: dict | None, settings: dict) -> list[str]:
    """What differs; the paths and names first: a digest differs too when they do."""
    if recorded is None:
        return ["it records none (an earlier release wrote it)"]
    named = [key for key in settings if not key.endswith("_sha256")]
    named = differences({k: recorded.get(k) for k in named}, {k: settings[k] for k in named})
    return named or differences(recorded, settings)


def recorded_settings(path: Path) -> dict | None:
    """metrics.json's ``made_by``; None where an earlier release wrote it (or it is unreadable)."""
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("made_by")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, dict) else None
