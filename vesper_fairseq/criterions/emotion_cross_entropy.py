"""Criterion `emotion_cross_entropy`: cross-entropy, and WA / UA / WF1 / macro-F1 over a whole
evaluation set, derived from a confusion matrix summed across batches and workers."""

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..evaluation.scores import confusion_matrix, emotion_scores

SCORES = ("wa", "ua", "wf1", "macro_f1")
CELL = "_conf_{}_{}"  # a leading "_" keeps the cells out of the log lines


@dataclass
class EmotionCrossEntropyConfig(FairseqDataclass):
    class_weights: Optional[str] = field(
        default=None,
        metadata={
            "help": "'balanced' (inverse class frequency in dict.emo.txt, i.e. the train "
            "counts) or comma-separated weights in class order; default: unweighted"
        },
    )


def parse_class_weights(spec: str | None, counts: list[int]) -> torch.Tensor | None:
    if spec is None or str(spec).strip() == "":
        return None
    if str(spec) == "balanced":
        counts = np.asarray(counts, dtype=np.float64)
        if (counts <= 0).any():
            raise ValueError(f"class_weights=balanced needs every class count > 0, got {counts}")
        return torch.tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)
    try:
        weights = [float(w) for w in str(spec).split(",")]
    except ValueError:
        raise ValueError(f"criterion.class_weights={spec!r}: not 'balanced' nor numbers") from None
    if len(weights) != len(counts) or min(weights) < 0:
        raise ValueError(
            f"criterion.class_weights={spec!r}: need {len(counts)} non-negative weights"
        )
    return torch.tensor(weights, dtype=torch.float32)


def confusion_from_meters(meters, num_classes: int) -> np.ndarray:
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    for i in range(num_classes):
        for j in range(num_classes):
            key = CELL.format(i, j)
            if key in meters:
                conf[i, j] = int(meters[key].sum)
    return conf


def _derived_score(name: str, num_classes: int):
    def fn(meters) -> float:
        conf = confusion_from_meters(meters, num_classes)
        if conf.sum() == 0:
            return 0.0
        return round(emotion_scores(conf)[name], 4)

    return fn


@register_criterion("emotion_cross_entropy", dataclass=EmotionCrossEntropyConfig)
class EmotionCrossEntropyCriterion(FairseqCriterion):
    def __init__(self, cfg: EmotionCrossEntropyConfig, task):
        super().__init__(task)
        self.num_classes = task.num_classes
        weights = parse_class_weights(cfg.class_weights, task.label_counts)
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, model, sample, reduce=True):
        logits = model(**sample["net_input"])
        target = sample["target"]
        if logits.size(-1) != self.num_classes:
            raise ValueError(f"model gives {logits.size(-1)} classes, task has {self.num_classes}")
        loss = F.cross_entropy(logits.float(), target, weight=self.class_weights, reduction="sum")
        batch = target.numel()
        conf = confusion_matrix(target, logits.argmax(-1), self.num_classes).cpu()
        logging_output = {"loss": loss.item(), "ntokens": batch, "nsentences": batch}
        logging_output["sample_size"] = batch
        for i in range(self.num_classes):
            for j in range(self.num_classes):
                logging_output[CELL.format(i, j)] = int(conf[i, j])
        return loss, batch, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        sample_size = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(sample_size, 1), sample_size, round=4)
        metrics.log_scalar("nsentences", total("nsentences"), round=0)
        metrics.log_scalar("ntokens", total("ntokens"), round=0)
        cells = [k for log in logging_outputs[:1] for k in log if k.startswith("_conf_")]
        num_classes = int(round(len(cells) ** 0.5))
        if num_classes == 0:
            return
        for key in cells:
            metrics.log_scalar_sum(key, total(key))
        for name in SCORES:
            metrics.log_derived(name, _derived_score(name, num_classes))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
