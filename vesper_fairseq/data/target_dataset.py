"""Attaches precomputed teacher targets to the items of a cropped audio dataset."""

import torch
from fairseq.data import BaseWrapperDataset

from ..modules.wavlm_config import WavLMConfig
from .audio_dataset import CroppedAudioDataset
from .target_store import SplitTargets


class TeacherTargetDataset(BaseWrapperDataset):
    """Adds `sample["stored_layers"] = {layer: (B, T, D) float32}` (zero on padded frames; the
    task selects the targets from them) and, with `features`, `sample["net_input"]["features"]`:
    the stored (B, T, C) CNN output."""

    def __init__(
        self,
        dataset: CroppedAudioDataset,
        targets: SplitTargets,
        conv_feature_layers,
        features: bool = False,
    ):
        super().__init__(dataset)
        self.targets = targets
        self.features = features
        self.frames = WavLMConfig(conv_feature_layers=conv_feature_layers)  # frame geometry
        num_rows = len(dataset.manifest_rows) + len(dataset.skipped_indices)
        if len(targets) != num_rows:
            raise ValueError(
                f"target store has {len(targets)} rows for {dataset.manifest_path}, "
                f"which has {num_rows}"
            )

    def num_frames(self, num_samples: int) -> int:
        return self.frames.num_frames(num_samples)

    def __getitem__(self, index):
        item = self.dataset[index]
        row = int(self.dataset.manifest_rows[index])
        expected = self.num_frames(len(item["source"]))
        targets = {}
        for layer, array in self.targets[row].items():
            if layer == "features" and not self.features:
                continue
            if len(array) != expected:
                raise ValueError(
                    f"stored targets of {self.dataset.manifest_path} row {row + 1} have "
                    f"{len(array)} frames, the crop has {expected}: the audio or the crop changed"
                )
            targets[layer] = torch.from_numpy(array.astype("float32"))
        if self.features:
            item["features"] = targets.pop("features")
        item["stored_layers"] = targets
        return item

    def collater(self, samples):
        batch = self.dataset.collater(samples)
        if not batch:
            return batch
        samples = [s for s in samples if s["source"] is not None]
        frames = self.num_frames(batch["net_input"]["source"].size(1))
        batch["stored_layers"] = {
            layer: _padded([s["stored_layers"][layer] for s in samples], frames)
            for layer in samples[0]["stored_layers"]
        }
        if self.features:
            batch["net_input"]["features"] = _padded([s["features"] for s in samples], frames)
        return batch


def _padded(arrays, frames: int) -> torch.Tensor:
    """(B, frames, D), each array's first rows, zeros after."""
    out = arrays[0].new_zeros(len(arrays), frames, arrays[0].size(-1))
    for i, array in enumerate(arrays):
        array = array[:frames]
        out[i, : len(array)] = array
    return out
