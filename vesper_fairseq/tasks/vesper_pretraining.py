"""Task `vesper_pretraining`: manifests -> cropped audio -> teacher targets (online or stored).

The task owns layer selection: its config names the teacher layer each loss trains against, and
`add_teacher_targets` puts those targets into the sample (`sample["targets"][loss]`), from the
target store or from the online teacher; the criterion only reads them."""

import logging
from dataclasses import dataclass, field
from typing import Optional

from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task
from omegaconf import MISSING

from ..data.audio_dataset import CROP_MODES, CroppedAudioDataset
from ..data.span_masks import SpanMaskDataset, plain_masking_config
from ..data.target_dataset import TeacherTargetDataset
from ..data.target_store import CropPolicy, TeacherTargetStore
from ..data.teacher import FrozenTeacher, default_target_layers
from ..modules.wavlm_config import WavLMConfig
from ..safe_load import trust_fairseq_checkpoints
from .audio_task import AudioTask, AudioTaskConfig

logger = logging.getLogger(__name__)

TARGET_LOSSES = ("low", "high", "cross")


@dataclass
class VesperPretrainingConfig(AudioTaskConfig):
    data: str = field(default=MISSING, metadata={"help": "folder holding {split}.tsv manifests"})
    teacher_path: Optional[str] = field(
        default=None,
        metadata={"help": "WavLM teacher (original .pt, HF folder, exported): online targets"},
    )
    trust_teacher: bool = field(
        default=False,
        metadata={
            "help": "unpickle a teacher checkpoint that a weights-only load refuses (runs code "
            "from the file: only a file you trust)"
        },
    )
    target_store: Optional[str] = field(
        default=None,
        metadata={
            "help": "folder written by vesper-dump-teacher: precomputed targets (the teacher "
            "is then only used to initialise the student)"
        },
    )
    stored_features: bool = field(
        default=True,
        metadata={
            "help": "when the target store holds the CNN's output (vesper-dump-teacher "
            "--with-features), feed it to the student, which then skips its frozen CNN"
        },
    )
    max_sample_size: int = field(
        default=80000, metadata={"help": "crop every utterance to this many samples (5 s)"}
    )
    min_sample_size: int = field(
        default=3200, metadata={"help": "drop utterances shorter than this many samples"}
    )
    teacher_max_sample_size: int = field(
        default=0,
        metadata={
            "help": "0: targets on the student's crop (the method); N: stored targets whose "
            "teacher saw the first N samples of each file (the authors' code: 320000), "
            "from vesper-dump-teacher --teacher-max-sample-size N"
        },
    )
    crop: ChoiceEnum(CROP_MODES) = field(
        default="first", metadata={"help": "'first': crop from the start (authors); 'random'"}
    )
    pad: bool = field(
        default=True, metadata={"help": "pad a batch to its longest item (else cut to shortest)"}
    )
    normalize: Optional[bool] = field(
        default=None, metadata={"help": "standardise each crop; default: as the teacher's cfg"}
    )
    low_target_layer: Optional[int] = field(
        default=None,
        metadata={"help": "teacher layer L_l trains against (default M/2); also criterion.*"},
    )
    high_target_layer: Optional[int] = field(
        default=None,
        metadata={"help": "teacher layer L_h trains against (default M); also criterion.*"},
    )
    cross_target_layer: Optional[int] = field(
        default=None,
        metadata={"help": "teacher layer L_x trains against (default M/2); also criterion.*"},
    )
    reuse_dataloader: bool = field(
        default=False,
        metadata={
            "help": "keep the loader workers across epochs; off so that every epoch's workers "
            "see the new epoch (random crops and span masks depend on it)"
        },
    )


@register_task("vesper_pretraining", dataclass=VesperPretrainingConfig)
class VesperPretrainingTask(AudioTask):
    cfg: VesperPretrainingConfig

    def __init__(self, cfg: VesperPretrainingConfig):
        super().__init__(cfg)
        if cfg.teacher_path is None and cfg.target_store is None:
            raise ValueError(
                "vesper_pretraining needs task.teacher_path (online targets) or "
                "task.target_store (precomputed targets)"
            )
        if cfg.teacher_max_sample_size and cfg.target_store is None:
            raise ValueError(
                f"task.teacher_max_sample_size={cfg.teacher_max_sample_size} (the authors' "
                "whole-file targets) is offline only: compute a store with vesper-dump-teacher "
                "--teacher-max-sample-size and set task.target_store"
            )
        self._teacher = None
        self._store = None
        if cfg.trust_restore_file:
            trust_fairseq_checkpoints("task.trust_restore_file=true")
        self.span_masks = None  # (masking cfg, seed) once the model is built
        self._criterion_layers = {}  # loss -> layer from criterion.*_target_layer

    @classmethod
    def setup_task(cls, cfg: VesperPretrainingConfig, **kwargs):
        return cls(cfg)

    @property
    def teacher(self) -> FrozenTeacher | None:
        """The online teacher, loaded on first use (never when reloading for inference)."""
        if self._teacher is None and self.cfg.target_store is None:
            self._teacher = FrozenTeacher.from_path(
                self.cfg.teacher_path, self.cfg.trust_teacher, "task.trust_teacher=true"
            )
        return self._teacher

    @property
    def store(self) -> TeacherTargetStore | None:
        if self._store is None and self.cfg.target_store is not None:
            self._store = TeacherTargetStore(self.cfg.target_store)
        return self._store

    @property
    def teacher_cfg(self) -> WavLMConfig:
        if self.store is not None:
            return WavLMConfig.from_dict(self.store.teacher_cfg)
        return self.teacher.cfg

    @property
    def teacher_num_layers(self) -> int:
        return self.teacher_cfg.encoder_layers

    @property
    def target_layers(self) -> dict[str, int]:
        """The teacher layer each loss (low, high, cross) trains against."""
        middle, last = default_target_layers(self.teacher_num_layers)
        defaults = {"low": middle, "high": last, "cross": middle}
        return {loss: self._target_layer(loss) or layer for loss, layer in defaults.items()}

    def _target_layer(self, loss: str) -> int | None:
        return getattr(self.cfg, f"{loss}_target_layer", None) or self._criterion_layers.get(loss)

    def build_criterion(self, cfg, from_checkpoint=False):
        """`criterion.*_target_layer` (the older spelling) sets the task's layer when the task
        leaves it unset; the two disagreeing is an error."""
        for loss in TARGET_LOSSES:
            key = f"{loss}_target_layer"
            value, own = getattr(cfg, key, None), getattr(self.cfg, key, None)
            if value is not None and own is not None and value != own:
                raise ValueError(
                    f"criterion.{key}={value} and task.{key}={own} disagree: set one of them"
                )
            if value is not None:
                self._criterion_layers[loss] = value
        return super().build_criterion(cfg)

    @property
    def crop_policy(self) -> CropPolicy:
        normalize = self.cfg.normalize
        normalize = self.teacher_cfg.normalize if normalize is None else normalize
        return CropPolicy(
            self.cfg.crop,
            self.cfg.max_sample_size,
            normalize,
            self.cfg.sample_rate,
            self.cfg.teacher_max_sample_size,
        )

    def load_dataset(self, split: str, **kwargs):
        manifest = self.manifest(split)
        crop = self.crop_policy
        dataset = CroppedAudioDataset(
            manifest,
            crop=crop.mode,
            seed=self.cfg.seed,
            sample_rate=crop.sample_rate,
            max_sample_size=crop.max_sample_size,
            min_sample_size=self.cfg.min_sample_size,
            pad=self.cfg.pad,
            normalize=crop.normalize,
            num_buckets=self.cfg.num_batch_buckets,
        )
        if self.store is not None:
            if crop.mode != "first" or not self.cfg.pad:
                raise ValueError(
                    "precomputed targets need task.crop=first and task.pad=true: "
                    "other crops depend on the epoch or the batch"
                )
            self.store.check_compatible(crop, self.store.layers)
            targets = self.store.split(split, manifest)
            features = self.store.has_features and self.cfg.stored_features
            conv = self.teacher_cfg.conv_feature_layers
            dataset = TeacherTargetDataset(dataset, targets, conv, features)
        self.datasets[split] = SpanMaskDataset(dataset)
        self._set_span_masks(self.datasets[split])

    def build_model(self, cfg, from_checkpoint=False):
        """The model's masking settings go to the datasets, whose collaters compute the masks
        (fairseq loads the validation set before it builds the model)."""
        model = super().build_model(cfg, from_checkpoint)
        if getattr(cfg, "masking", None) is not None:
            self.span_masks = (plain_masking_config(cfg.masking), int(cfg.mask_seed))
            for dataset in self.datasets.values():
                self._set_span_masks(dataset)
        return model

    def _set_span_masks(self, dataset) -> None:
        if self.span_masks is not None and isinstance(dataset, SpanMaskDataset):
            dataset.masking, dataset.seed = self.span_masks

    def teacher_layers(self, sample, layers: list[int]) -> dict:
        """{layer: (B, T, D)} teacher outputs on this batch: read from the store (the dataset's
        `stored_layers`) or computed by the online teacher on the very batch (crop,
        normalisation, padding) given to the student."""
        stored = sample.get("stored_layers")
        if stored is not None:
            missing = sorted(set(layers) - set(stored))
            if missing:
                raise ValueError(f"the target store has no teacher layers {missing}")
            return {layer: stored[layer] for layer in layers}
        net_input = sample["net_input"]
        targets, _ = self.teacher(net_input["source"], net_input.get("padding_mask"), layers)
        return targets

    def add_teacher_targets(self, sample):
        """The one place targets enter the sample: `sample["targets"][loss]` is the teacher
        layer `target_layers[loss]`, for the stored and the online path alike."""
        wanted = self.target_layers
        outputs = self.teacher_layers(sample, sorted(set(wanted.values())))
        sample["targets"] = {loss: outputs[layer] for loss, layer in wanted.items()}
        return sample

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        sample = self.add_teacher_targets(sample)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def valid_step(self, sample, model, criterion):
        sample = self.add_teacher_targets(sample)
        return super().valid_step(sample, model, criterion)
