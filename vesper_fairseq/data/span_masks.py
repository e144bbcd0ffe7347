"""Adds Vesper's stage-1 and stage-2 span masks to each batch, computed in the collater.

The collater runs in the data loader's workers, so the masks cost the training process
nothing; each utterance's masks depend only on (seed, epoch, utterance index), not on its batch,
the number of GPUs, `update_freq` or where a resumed run restarts.
"""

from enum import Enum

from fairseq.data import BaseWrapperDataset
from omegaconf import DictConfig, OmegaConf

from ..modules.masking import MaskingConfig, compute_vesper_masks


def plain_masking_config(cfg) -> MaskingConfig:
    """A plain dataclass: cheaper to read in the masking loops than an OmegaConf node, and
    light to send to the loader workers."""
    if isinstance(cfg, DictConfig):
        values = OmegaConf.to_container(cfg, resolve=True)
        # choices as plain strings: fairseq's ChoiceEnum classes do not pickle (spawned workers)
        return MaskingConfig(**{k: str(v) if isinstance(v, Enum) else v for k, v in values.items()})
    return cfg


class SpanMaskDataset(BaseWrapperDataset):
    """`batch["net_input"]` gains `stage1_mask` and `stage2_mask`, (B, T) bool over CNN frames,
    False on padding. `masking` None (not known yet) leaves batches as they are."""

    def __init__(self, dataset, masking: MaskingConfig | None = None, seed: int = 1):
        super().__init__(dataset)
        self.masking = masking
        self.seed = seed
        self.epoch = 1

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.epoch = epoch

    def utterance_seeds(self, ids) -> list[tuple[int, int, int]]:
        return [(int(self.seed), int(self.epoch), int(i)) for i in ids]

    def collater(self, samples):
        batch = self.dataset.collater(samples)
        if not batch or self.masking is None:
            return batch
        net_input = batch["net_input"]
        seeds = self.utterance_seeds(batch["id"].tolist())
        net_input["stage1_mask"], net_input["stage2_mask"] = compute_vesper_masks(
            net_input["source"], net_input.get("padding_mask"), self.masking, seeds
        )
        return batch
