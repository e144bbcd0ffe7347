"""Attaches precomputed teacher targets to the items of a cropped audio dataset."""

import torch
from fairseq.data import BaseWrapperDataset

from ..modules.wavlm_config import parse_conv_layers
from ..modules.wavlm_layers import conv_output_lengths
from .audio_dataset import CroppedAudioDataset
from .target_store import SplitTargets


class TeacherTargetDataset(BaseWrapperDataset):
    """Adds `sample["targets"] = {layer: (B, T, D) float32}` (zero on padded frames)."""

    def __init__(self, dataset: CroppedAudioDataset, targets: SplitTargets, conv_feature_layers):
        super().__init__(dataset)
        self.targets = targets
        self.conv_layers = parse_conv_layers(conv_feature_layers)
        num_rows = len(dataset.manifest_rows) + len(dataset.skipped_indices)
        if len(targets) != num_rows:
            raise ValueError(
                f"target store has {len(targets)} rows for {dataset.manifest_path}, "
                f"which has {num_rows}"
            )

    def num_frames(self, num_samples: int) -> int:
        return int(conv_output_lengths(torch.tensor(num_samples), self.conv_layers))

    def __getitem__(self, index):
        item = self.dataset[index]
        row = int(self.dataset.manifest_rows[index])
        expected = self.num_frames(len(item["source"]))
        targets = {}
        for layer, array in self.targets[row].items():
            if len(array) != expected:
                raise ValueError(
                    f"stored targets of {self.dataset.manifest_path} row {row + 1} have "
                    f"{len(array)} frames, the crop has {expected}: the audio or the crop changed"
                )
            targets[layer] = torch.from_numpy(array.astype("float32"))
        item["targets"] = targets
        return item

    def collater(self, samples):
        batch = self.dataset.collater(samples)
        if not batch:
            return batch
        samples = [s for s in samples if s["source"] is not None]
        frames = self.num_frames(batch["net_input"]["source"].size(1))
        batch["targets"] = {}
        for layer in samples[0]["targets"]:
            first = samples[0]["targets"][layer]
            out = first.new_zeros(len(samples), frames, first.size(-1))
            for i, sample in enumerate(samples):
                target = sample["targets"][layer][:frames]
                out[i, : len(target)] = target
            batch["targets"][layer] = out
        return batch
