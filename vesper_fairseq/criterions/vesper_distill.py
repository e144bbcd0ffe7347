"""Criterion `vesper_distill`: L = w_l L_l + w_h L_h + w_x L_x (docs/method.md section 4)."""

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

LOSSES = ("low", "high", "cross")


@dataclass
class VesperDistillConfig(FairseqDataclass):
    low_weight: float = field(default=1.0, metadata={"help": "w_l: hierarchical, acoustic"})
    high_weight: float = field(default=0.1, metadata={"help": "w_h: hierarchical, semantic"})
    cross_weight: float = field(default=1.0, metadata={"help": "w_x: cross-layer"})
    # read by the task (vesper_pretraining.build_criterion), which selects and provides targets
    low_target_layer: Optional[int] = field(
        default=None, metadata={"help": "same as task.low_target_layer (default M/2)"}
    )
    high_target_layer: Optional[int] = field(
        default=None, metadata={"help": "same as task.high_target_layer (default M)"}
    )
    cross_target_layer: Optional[int] = field(
        default=None, metadata={"help": "same as task.cross_target_layer (default M/2)"}
    )


@register_criterion("vesper_distill", dataclass=VesperDistillConfig)
class VesperDistillCriterion(FairseqCriterion):
    """L_l on stage-1 masked frames, L_h on stage-2 masked frames, L_x on all real frames; each
    an MSE over selected frames x dims against `sample["targets"][loss]` (the task selects
    the teacher layers and provides them). Padding is excluded everywhere."""

    def __init__(self, cfg: VesperDistillConfig, task):
        super().__init__(task)
        self.weights = {"low": cfg.low_weight, "high": cfg.high_weight, "cross": cfg.cross_weight}

    @staticmethod
    def selections(net_output) -> dict[str, torch.Tensor]:
        padding = net_output["padding_mask"]
        real = torch.ones_like(net_output["stage1_mask"]) if padding is None else ~padding
        return {
            "low": net_output["stage1_mask"] & real,
            "high": net_output["stage2_mask"] & real,
            "cross": real,
        }

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        selections = self.selections(net_output)
        loss = 0.0
        logging_output = {"nsentences": sample["id"].numel(), "sample_size": 1}
        for name in LOSSES:
            # float32 losses whatever the model's dtype (fp16 / bf16 / autocast)
            pred = net_output["predictions"][name][selections[name]].float()
            target = sample["targets"][name][selections[name]].float()
            sse = F.mse_loss(pred, target, reduction="sum")
            count = pred.numel()
            if count > 0 and self.weights[name] != 0:
                loss = loss + self.weights[name] * sse / count
            logging_output[f"sse_{name}"] = sse.item()
            logging_output[f"count_{name}"] = count
        real = selections["cross"]
        logging_output.update(
            {
                "loss": float(loss.detach()) if torch.is_tensor(loss) else 0.0,
                "ntokens": int(real.sum()),
                "masked_stage1": int(selections["low"].sum()),
                "masked_stage2": int(selections["high"].sum()),
            }
        )
        if not torch.is_tensor(loss):  # nothing selected at all: a zero that keeps the graph
            loss = sum(p.sum() * 0.0 for p in net_output["predictions"].values())
        return loss, 1, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        batches = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(batches, 1), batches, round=4)
        for name in LOSSES:
            count = total(f"count_{name}")
            if count > 0:
                metrics.log_scalar(f"loss_{name}", total(f"sse_{name}") / count, count, round=4)
        frames = total("ntokens")
        if frames > 0:
            metrics.log_scalar("mask_stage1", total("masked_stage1") / frames, frames, round=3)
            metrics.log_scalar("mask_stage2", total("masked_stage2") / frames, frames, round=3)
        metrics.log_scalar("nsentences", total("nsentences"), round=0)
        metrics.log_scalar("ntokens", frames, round=0)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
