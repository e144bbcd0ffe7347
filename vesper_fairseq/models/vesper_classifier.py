"""Model `vesper_classifier`: a (frozen) upstream encoder and the SER head of the Vesper paper."""

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model

from ..config_utils import persist_build_values
from ..formats import load_encoder
from ..logging_setup import hide_absent_parameter_notices
from ..modules.emotion_head import EmotionHead
from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import WavLMConfig

logger = logging.getLogger(__name__)


@dataclass
class VesperClassifierConfig(FairseqDataclass):
    upstream_path: Optional[str] = field(
        default=None,
        metadata={
            "help": "the upstream encoder: a fairseq vesper checkpoint, an exported Vesper, an "
            "original WavLM .pt or a HuggingFace WavLM folder (read only when a new "
            "classifier is built; its weights are then kept in the classifier's checkpoints)"
        },
    )
    trust_upstream: bool = field(
        default=False,
        metadata={
            "help": "unpickle an upstream checkpoint that a weights-only load refuses (runs code "
            "from the file: only a file you trust)"
        },
    )
    freeze_upstream: bool = field(
        default=True,
        metadata={"help": "freeze the upstream (run in eval mode, without gradients)"},
    )
    upstream_dropout: bool = field(
        default=False,
        metadata={
            "help": "while training, run the frozen upstream in train mode so that its dropout "
            "stays active, as the authors do (its weights stay frozen either way)"
        },
    )
    unfreeze_top_k: int = field(
        default=0,
        metadata={"help": "with a frozen upstream, fine-tune its top k Transformer layers"},
    )
    freeze_feature_extractor: bool = field(
        default=True, metadata={"help": "keep the CNN frozen when freeze_upstream=false"}
    )
    hidden_dim: int = field(default=256, metadata={"help": "width of the head's projection"})
    head_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the pooled vector (0 in the paper)"}
    )
    normalize: Optional[bool] = field(
        default=None,
        metadata={"help": "standardise each waveform; default: as the upstream's cfg says"},
    )
    upstream: Optional[Any] = field(
        default=None,
        metadata={"help": "set at build time: the upstream's WavLM cfg (no upstream file later)"},
    )
    labels: Optional[Any] = field(
        default=None, metadata={"help": "set at build time: the class names, in id order"}
    )


@register_model("vesper_classifier", dataclass=VesperClassifierConfig)
class VesperClassifier(BaseFairseqModel):
    def __init__(self, cfg: VesperClassifierConfig, upstream: WavLMEncoder, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.upstream = upstream
        n = upstream.num_layers
        if not 0 <= cfg.unfreeze_top_k <= n:
            raise ValueError(f"model.unfreeze_top_k={cfg.unfreeze_top_k} is not in [0, {n}]")
        self.head = EmotionHead(
            n + 1, upstream.embed_dim, num_classes, cfg.hidden_dim, cfg.head_dropout
        )
        self._freeze()

    @property
    def fully_frozen(self) -> bool:
        return self.cfg.freeze_upstream and self.cfg.unfreeze_top_k == 0

    def _freeze(self):
        upstream = self.upstream
        if self.cfg.freeze_upstream:
            upstream.requires_grad_(False)
            top = self.cfg.unfreeze_top_k
            for layer in upstream.encoder.layers[len(upstream.encoder.layers) - top :]:
                layer.requires_grad_(True)
        elif self.cfg.freeze_feature_extractor:
            upstream.feature_extractor.requires_grad_(False)

    @classmethod
    def build_model(cls, cfg: VesperClassifierConfig, task=None):
        labels = list(task.labels) if task is not None else None
        if cfg.labels is not None and labels is not None and list(cfg.labels) != labels:
            raise ValueError(
                f"the classifier was trained on labels {list(cfg.labels)}, the task's "
                f"{task.labels_from} has {labels}"
            )
        fresh = None
        if cfg.upstream is None:
            if cfg.upstream_path is None:
                raise ValueError("model.upstream_path (the pretrained encoder) is unset")
            fresh = load_encoder(
                cfg.upstream_path,
                allow_pickle=cfg.trust_upstream,
                opt_in="model.trust_upstream=true",
            )
            logger.info(
                "upstream %s: %d layers, dim %d",
                cfg.upstream_path,
                fresh.num_layers,
                fresh.embed_dim,
            )
            persist_build_values(cfg, upstream=fresh.cfg.to_dict(), labels=labels)
        if cfg.labels is None:
            raise ValueError("model.labels is unset: build the classifier with its task")
        upstream = fresh if fresh is not None else WavLMEncoder(WavLMConfig.from_dict(cfg.upstream))
        model = cls(cfg, upstream, len(cfg.labels))
        hide_absent_parameter_notices(model)
        return model

    def set_num_updates(self, num_updates):
        super().set_num_updates(num_updates)
        self.num_updates = num_updates  # read by the task: a finished run stops at once

    def train(self, mode: bool = True):
        """Frozen parts of the upstream stay in eval mode (no dropout, no LayerDrop) unless
        `upstream_dropout` asks for the authors' train-mode upstream."""
        super().train(mode)
        if mode and self.cfg.freeze_upstream and not getattr(self.cfg, "upstream_dropout", False):
            self.upstream.eval()
            top = self.cfg.unfreeze_top_k
            for layer in self.upstream.encoder.layers[self.upstream.num_layers - top :]:
                layer.train()
        return self

    def extract_layers(self, source, padding_mask=None):
        normalize = self.cfg.normalize
        if self.fully_frozen:
            with torch.no_grad():
                return self.upstream(source, padding_mask, normalize=normalize)
        return self.upstream(source, padding_mask, normalize=normalize)

    def forward(self, source, padding_mask=None):
        """Class logits (B, C) for padded raw waveforms (B, L)."""
        out = self.extract_layers(source, padding_mask)
        return self.head(out.layer_results, out.padding_mask)

    def layer_weights(self) -> list[float]:
        return self.head.layer_sum.normalized_weights().tolist()
