"""LR scheduler `epoch_cosine`: the authors' schedule, a learning rate that changes only between
epochs (their `LambdaLR`, stepped once per epoch): linear warm-up over `warmup_epochs`, epoch e
(from 0) at (e + 1) / warmup_epochs of the peak, then a cosine staircase from the peak to
`min_lr` at `max_epoch`. fairseq's `cosine` draws the same curve per update."""

import math
from dataclasses import dataclass, field

from fairseq.dataclass import FairseqDataclass
from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler
from omegaconf import II


@dataclass
class EpochCosineConfig(FairseqDataclass):
    warmup_epochs: int = field(
        default=0, metadata={"help": "epochs of linear warm-up (the authors' pretraining: 5)"}
    )
    min_lr: float = field(
        default=0.0,
        metadata={"help": "the floor of the cosine, reached at max_epoch (the authors: 1% of lr)"},
    )
    max_epoch: int = field(
        default=II("optimization.max_epoch"),
        metadata={"help": "optimization.max_epoch: the epochs the cosine spans"},
    )
    lr: list[float] = field(
        default=II("optimization.lr"), metadata={"help": "optimization.lr: the peak"}
    )


def epoch_factor(epoch: int, warmup: int, epochs: int, min_ratio: float) -> float:
    """The fraction of the peak rate during `epoch` (0-based)."""
    if epoch < warmup:
        return (epoch + 1) / warmup
    progress = (epoch - warmup) / (epochs - warmup)
    return min_ratio + 0.5 * (1.0 - min_ratio) * (1.0 + math.cos(progress * math.pi))


@register_lr_scheduler("epoch_cosine", dataclass=EpochCosineConfig)
class EpochCosineSchedule(FairseqLRScheduler):
    def __init__(self, cfg: EpochCosineConfig, optimizer):
        super().__init__(cfg, optimizer)
        if len(cfg.lr) != 1:
            raise ValueError(f"epoch_cosine takes one peak rate (optimization.lr), got {cfg.lr}")
        if not cfg.max_epoch or cfg.max_epoch <= cfg.warmup_epochs:
            raise ValueError(
                f"epoch_cosine needs optimization.max_epoch ({cfg.max_epoch}) set and above "
                f"lr_scheduler.warmup_epochs ({cfg.warmup_epochs})"
            )
        self.peak = cfg.lr[0]
        self.step_begin_epoch(1)

    def step_begin_epoch(self, epoch: int) -> float:
        """fairseq counts epochs from 1."""
        cfg = self.cfg
        floor = cfg.min_lr / self.peak
        factor = epoch_factor(epoch - 1, cfg.warmup_epochs, cfg.max_epoch, floor)
        self.optimizer.set_lr(self.peak * factor)
        return self.optimizer.get_lr()

    def step_update(self, num_updates: int) -> float:
        return self.optimizer.get_lr()
