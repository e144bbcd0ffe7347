"""Rows of a scored split that are not scored, each named with its reason: too short for the
model (left out when the split is loaded) or audio that cannot be read (found while scoring:
a corrupt file, another sample rate, a missing file). The other rows are scored."""

import os

import torch

from ..data.manifest_file import ManifestError, read_manifest


class ReadableItems(torch.utils.data.Dataset):
    """The items of a (labelled) CroppedAudioDataset; an item whose audio cannot be read becomes
    its reason, and each batch lists those as ``unreadable``: [(index, reason)]."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        try:
            return self.dataset[index]
        except ManifestError as e:  # the audio dataset's error for a file it cannot read
            found = os.path.exists(self.dataset.dataset.audio_path(index))
            reason = str(e.__cause__ or e) if found else "file not found"
            return {"id": index, "unreadable": reason}

    def collater(self, samples):
        readable = [s for s in samples if "unreadable" not in s]
        batch = self.dataset.collater(readable) if readable else {}
        batch["unreadable"] = [(s["id"], s["unreadable"]) for s in samples if "unreadable" in s]
        return batch


def skipped_rows(dataset, unreadable: dict[int, str]) -> list[dict]:
    """{"file", "reason"} of every row of `dataset`'s manifest that was not scored, in manifest
    order: those too short to load and `unreadable` ({item index: reason})."""
    audio = dataset.dataset  # the CroppedAudioDataset under the labels
    root, rows = read_manifest(audio.manifest_path)
    short = f"shorter than {audio.min_sample_size} samples (task.min_sample_size)"
    found = {int(i): (os.path.join(root, rows[i][0]), short) for i in audio.skipped_indices}
    for index, reason in unreadable.items():
        found[int(audio.manifest_rows[index])] = (audio.audio_path(index), reason)
    return [{"file": found[row][0], "reason": found[row][1]} for row in sorted(found)]


def skipped_text(skipped: list[dict]) -> str:
    """The report's list of the rows not scored ("" if none)."""
    if not skipped:
        return ""
    lines = [f"{rows_text(len(skipped))} not scored:"]
    lines += [f"  {row['file']}: {row['reason']}" for row in skipped]
    return "\n".join(lines) + "\n"


def rows_text(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"
