"""Emotion labels next to a fairseq audio manifest: ``dict.emo.txt`` and ``{split}.emo``."""

import logging
import os

import numpy as np
import torch
from fairseq.data import BaseWrapperDataset

from vesper_fairseq.data.manifest_file import read_manifest

logger = logging.getLogger(__name__)


class LabelFileError(ValueError):
    """A label dictionary or label file that does not fit its manifest."""


def load_label_dict(path: str) -> tuple[list[str], list[int]]:
    """Class names (index = class id) and counts from a fairseq-style ``label count`` file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label dictionary {path} not found")
    labels, counts = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 3 and fields[2] == "#fairseq:overwrite":
                fields = fields[:2]
            if len(fields) != 2 or not fields[1].isdigit():
                raise LabelFileError(f"{path}, line {n}: expected 'label count', got {line!r}")
            if fields[0] in labels:
                raise LabelFileError(f"{path}, line {n}: label {fields[0]!r} appears twice")
            labels.append(fields[0])
            counts.append(int(fields[1]))
    if len(labels) < 2:
        raise LabelFileError(f"{path}: a classification needs at least 2 labels, found {labels}")
    return labels, counts


def load_labels(path: str, labels: list[str], dict_path: str, num_rows: int) -> np.ndarray:
    """Class ids of every manifest row; a clear error for unknown labels or a count mismatch."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label file {path} not found (one label per manifest row)")
    index = {label: i for i, label in enumerate(labels)}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != num_rows:
        raise LabelFileError(
            f"{path}: {len(lines)} labels for {num_rows} manifest rows (they must be aligned)"
        )
    ids = np.empty(len(lines), dtype=np.int64)
    for n, line in enumerate(lines, start=1):
        label = line.strip()
        if label not in index:
            raise LabelFileError(
                f"{path}, line {n}: label {label!r} is not in {dict_path} (known: {labels})"
            )
        ids[n - 1] = index[label]
    return ids


def read_manifest_paths(manifest: str) -> list[str]:
    """Relative paths of the manifest rows, in order."""
    return [rel for rel, _ in read_manifest(manifest)[1]]


class LabelledAudioDataset(BaseWrapperDataset):
    """Adds ``target`` (class id) to the items and batches of a CroppedAudioDataset. Rows the
    audio dataset skipped (too short) lose their labels too (``dataset.manifest_rows``)."""

    def __init__(self, dataset, targets: np.ndarray, paths: list[str] | None = None):
        super().__init__(dataset)
        rows = dataset.manifest_rows
        if len(targets) != len(rows) + len(dataset.skipped_indices):
            raise LabelFileError(
                f"{len(targets)} labels for {len(rows) + len(dataset.skipped_indices)} rows of "
                f"{dataset.manifest_path}"
            )
        self.targets = targets[rows]
        self.paths = None if paths is None else [paths[i] for i in rows]
        if len(dataset.skipped_indices):
            logger.info(
                "%s: %d rows shorter than %d samples left out with their labels",
                dataset.manifest_path,
                len(dataset.skipped_indices),
                dataset.min_sample_size,
            )

    @classmethod
    def from_files(cls, dataset, label_path: str, labels: list[str], dict_path: str):
        num_rows = len(dataset.manifest_rows) + len(dataset.skipped_indices)
        targets = load_labels(label_path, labels, dict_path, num_rows)
        return cls(dataset, targets, read_manifest_paths(dataset.manifest_path))

    def __getitem__(self, index):
        item = self.dataset[index]
        item["target"] = int(self.targets[index])
        return item

    def collater(self, samples):
        batch = self.dataset.collater(samples)
        if batch:
            by_id = {s["id"]: s["target"] for s in samples}
            batch["target"] = torch.LongTensor([by_id[int(i)] for i in batch["id"]])
            batch["nsentences"] = len(samples)
        return batch
