"""Model `vesper`: the compact student, its two-stage masking and the three prediction heads."""

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model
from omegaconf import II

from ..config_utils import persist_build_values
from ..formats import load_encoder
from ..logging_setup import hide_absent_parameter_notices
from ..modules.masking import MaskingConfig, check_frame_geometry, compute_vesper_masks
from ..modules.prediction_head import PredictionHead
from ..modules.student import STUDENT_INITS, build_student
from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import WavLMConfig

logger = logging.getLogger(__name__)

HEADS = ("low", "high", "cross")
DROPOUTS = (
    "dropout",
    "attention_dropout",
    "activation_dropout",
    "encoder_layerdrop",
    "dropout_input",
)


@dataclass
class VesperConfig(FairseqDataclass):
    teacher_path: Optional[str] = field(
        default=II("task.teacher_path"),
        metadata={"help": "WavLM checkpoint the student is initialised from"},
    )
    num_layers: int = field(default=4, metadata={"help": "student layers N (4 or 12)"})
    init: ChoiceEnum(STUDENT_INITS) = field(
        default="uniform_extract", metadata={"help": "how student layers come from the teacher"}
    )
    init_layers: Optional[str] = field(
        default=None, metadata={"help": "custom_extract: 1-based teacher layers, e.g. '1,7,13,19'"}
    )
    masking: MaskingConfig = field(
        default_factory=MaskingConfig, metadata={"help": "emotion-guided masking (two stages)"}
    )
    mask_seed: int = field(
        default=II("common.seed"), metadata={"help": "common.seed (masks computed online)"}
    )
    stage2_layer: Optional[int] = field(
        default=None,
        metadata={"help": "stage-2 masking enters layer this+1, in [1, N-1] (default N/2)"},
    )
    low_source_layer: Optional[int] = field(
        default=None, metadata={"help": "student layer feeding the L_l head (default N/2)"}
    )
    high_source_layer: Optional[int] = field(
        default=None, metadata={"help": "student layer feeding the L_h head (default N)"}
    )
    cross_source_layer: Optional[int] = field(
        default=None, metadata={"help": "student layer feeding the L_x head (default N)"}
    )
    head_hidden_dim: int = field(default=512, metadata={"help": "prediction head hidden width"})
    freeze_feature_extractor: bool = field(default=True, metadata={"help": "freeze the CNN"})
    compile_encoder: bool = field(
        default=False,
        metadata={"help": "torch.compile the student encoder (its state dict is unchanged)"},
    )
    compile_backend: str = field(
        default="inductor", metadata={"help": "torch.compile backend for compile_encoder"}
    )
    # Student dropouts as the authors' (whatever the teacher's checkpoint says)
    dropout: float = field(
        default=0.1,
        metadata={"help": "dropout after the positional conv, after attention and after fc2"},
    )
    attention_dropout: float = field(
        default=0.1, metadata={"help": "dropout on the attention probabilities"}
    )
    activation_dropout: float = field(
        default=0.1, metadata={"help": "dropout after the FFN activation (WavLM-Large: 0)"}
    )
    encoder_layerdrop: float = field(default=0.0, metadata={"help": "student LayerDrop"})
    dropout_input: float = field(
        default=0.0, metadata={"help": "dropout after the feature projection"}
    )
    student: Optional[Any] = field(
        default=None,
        metadata={"help": "set at build time: the student's WavLM cfg (no teacher needed later)"},
    )
    teacher_dim: Optional[int] = field(default=None, metadata={"help": "set at build time"})


def _layer_or(value: int | None, default: int, num_layers: int, name: str, lowest=0) -> int:
    layer = default if value is None else value
    if not lowest <= layer <= num_layers:
        raise ValueError(f"model.{name}={layer} is not in [{lowest}, {num_layers}]")
    return layer


@register_model("vesper", dataclass=VesperConfig)
class VesperModel(BaseFairseqModel):
    def __init__(self, cfg: VesperConfig, encoder: WavLMEncoder, teacher_dim: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        n = encoder.num_layers
        if n < 2:
            raise ValueError("a Vesper student needs 2 layers or more: stage 2 masks a later one")
        # stage 1 masks the input of layer 1: stage 2 needs a layer of its own after it
        self.stage2_layer = _layer_or(cfg.stage2_layer, n // 2, n - 1, "stage2_layer", lowest=1)
        self.source_layers = {
            "low": _layer_or(cfg.low_source_layer, n // 2, n, "low_source_layer"),
            "high": _layer_or(cfg.high_source_layer, n, n, "high_source_layer"),
            "cross": _layer_or(cfg.cross_source_layer, n, n, "cross_source_layer"),
        }
        check_frame_geometry(cfg.masking, encoder.cfg)
        dim = encoder.embed_dim
        self.heads = torch.nn.ModuleDict(
            {k: PredictionHead(dim, cfg.head_hidden_dim, teacher_dim) for k in HEADS}
        )
        if cfg.freeze_feature_extractor:
            encoder.feature_extractor.requires_grad_(False)
        if cfg.compile_encoder:
            encoder.compile(backend=cfg.compile_backend)
        self.num_updates = 0
        self._mask_calls = 0

    @classmethod
    def build_model(cls, cfg: VesperConfig, task=None):
        student = None
        if cfg.student is None:
            teacher = cls._teacher(cfg, task)
            store = getattr(task, "store", None)
            if store is not None:  # precomputed targets must come from this very teacher
                store.check_teacher(teacher, cfg.teacher_path)
            layers = None
            if cfg.init_layers:
                layers = [int(x) for x in str(cfg.init_layers).split(",")]
            student = build_student(teacher, cfg.num_layers, str(cfg.init), layers)
            student_cfg = student.cfg.to_dict()
            student_cfg.update({name: getattr(cfg, name) for name in DROPOUTS})
            persist_build_values(cfg, student=student_cfg, teacher_dim=teacher.embed_dim)
        encoder = WavLMEncoder(WavLMConfig.from_dict(cfg.student))
        if student is not None:  # fresh: the teacher's weights; reloading: the checkpoint's
            encoder.load_state_dict(student.state_dict())
        model = cls(cfg, encoder, cfg.teacher_dim)
        hide_absent_parameter_notices(model)
        return model

    @staticmethod
    def _teacher(cfg: VesperConfig, task) -> WavLMEncoder:
        if cfg.teacher_path is None:
            raise ValueError(
                "model.teacher_path (the WavLM checkpoint to initialise from) is unset"
            )
        same = task is not None and getattr(task.cfg, "teacher_path", None) == cfg.teacher_path
        if same and getattr(task, "teacher", None) is not None:
            return task.teacher.encoder
        trusted = bool(getattr(getattr(task, "cfg", None), "trust_teacher", False))
        return load_encoder(
            cfg.teacher_path, allow_pickle=trusted, opt_in="task.trust_teacher=true"
        )

    def set_num_updates(self, num_updates):
        super().set_num_updates(num_updates)
        self.num_updates = num_updates
        self._mask_calls = 0

    def train(self, mode: bool = True):
        if mode != self.training:
            self._mask_calls = 0
        return super().train(mode)

    def _mask_rng(self) -> np.random.Generator:
        """Online fallback (the model called without masks): a function of (seed, update, call
        within the update, rank). Training batches carry their masks from the collater."""
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        update = self.num_updates if self.training else -1
        self._mask_calls += 1
        return np.random.default_rng((self.cfg.mask_seed, update + 1, self._mask_calls, rank))

    def compute_masks(self, source, padding_mask):
        with torch.no_grad():
            return compute_vesper_masks(source, padding_mask, self.cfg.masking, self._mask_rng())

    def forward(
        self,
        source,
        padding_mask=None,
        mask: bool = True,
        stage1_mask=None,
        stage2_mask=None,
        features=None,
    ):
        """`source` is the task's normalised crop; `stage1_mask`/`stage2_mask` come with the
        batch (the task's collater computes them), else they are computed here; `features`, the
        stored output of the frozen CNN, replaces running it. Returns head predictions, masks
        and the frame padding mask."""
        if features is not None and not self.cfg.freeze_feature_extractor:
            raise ValueError(
                "stored CNN features replace a frozen CNN only: set "
                "task.stored_features=false with model.freeze_feature_extractor=false"
            )
        frame_masks, stage1, stage2 = None, None, None
        if mask:
            if stage1_mask is None or stage2_mask is None:
                stage1_mask, stage2_mask = self.compute_masks(source, padding_mask)
            stage1, stage2 = stage1_mask.to(source.device), stage2_mask.to(source.device)
            frame_masks = {0: stage1, self.stage2_layer: stage2}
        out = self.encoder(
            source, padding_mask, frame_masks=frame_masks, normalize=False, features=features
        )
        results = out.layer_results
        if stage1 is not None and stage1.size(1) != results[0].size(1):
            raise RuntimeError("mask frames and encoder frames differ: check masking.frame_*")
        predictions = {k: self.heads[k](results[self.source_layers[k]]) for k in HEADS}
        return {
            "predictions": predictions,
            "stage1_mask": stage1,
            "stage2_mask": stage2,
            "padding_mask": out.padding_mask,
        }
