"""Task `emotion_classification`: manifests + emotion labels -> first-cropped, padded batches."""

import logging
import os
from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task
from omegaconf import MISSING

from ..data.audio_dataset import CROP_MODES, CroppedAudioDataset
from ..data.labelled_audio import LabelledAudioDataset, load_label_dict
from ..modules.wavlm_config import RECEPTIVE_FIELD
from ..safe_load import trust_fairseq_checkpoints
from .audio_task import AudioTask, AudioTaskConfig

logger = logging.getLogger(__name__)


@dataclass
class EmotionClassificationConfig(AudioTaskConfig):
    data: str = field(
        default=MISSING,
        metadata={"help": "folder with {split}.tsv, {split}.{labels} and dict.{labels}.txt"},
    )
    labels: str = field(default="emo", metadata={"help": "extension of the label files"})
    max_sample_size: int = field(
        default=104000,
        metadata={"help": "crop to this many samples (IEMOCAP 6.5 s, MELD 4.5 s, CREMA-D 3 s)"},
    )
    min_sample_size: int = field(
        default=RECEPTIVE_FIELD,
        metadata={"help": "leave out (with their labels) rows shorter than this many samples"},
    )
    crop: ChoiceEnum(CROP_MODES) = field(
        default="first", metadata={"help": "'first': the start of each clip (authors); 'random'"}
    )


@register_task("emotion_classification", dataclass=EmotionClassificationConfig)
class EmotionClassificationTask(AudioTask):
    """Utterance-level classification. Waveform normalisation is left to the upstream (over
    the real samples of each crop, as its cfg says), so the batches are raw padded crops."""

    cfg: EmotionClassificationConfig

    def __init__(
        self,
        cfg: EmotionClassificationConfig,
        labels: list[str],
        counts: list[int],
        labels_from: str | None = None,
    ):
        super().__init__(cfg)
        if cfg.trust_restore_file:
            trust_fairseq_checkpoints("task.trust_restore_file=true")
        self.labels = labels
        self.label_counts = counts
        self.labels_from = labels_from or self.dict_path  # named in label errors

    @property
    def dict_path(self) -> str:
        return os.path.join(self.cfg.data, f"dict.{self.cfg.labels}.txt")

    @classmethod
    def with_labels(cls, cfg: EmotionClassificationConfig, labels: list[str], source: str):
        """The task with the given class names (a checkpoint's model.labels, named `source`)
        instead of its data folder's dict.emo.txt, which is not read: a trained classifier
        scores manifests wherever they are, matching their labels by name."""
        return cls(cfg, list(labels), [0] * len(labels), labels_from=source)

    @classmethod
    def setup_task(cls, cfg: EmotionClassificationConfig, **kwargs):
        path = os.path.join(cfg.data, f"dict.{cfg.labels}.txt")
        labels, counts = load_label_dict(path)
        logger.info("%d classes: %s", len(labels), labels)
        return cls(cfg, labels, counts)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def load_dataset(self, split: str, **kwargs):
        manifest = self.manifest(split)
        audio = CroppedAudioDataset(
            manifest,
            crop=str(self.cfg.crop),
            seed=self.cfg.seed,
            sample_rate=self.cfg.sample_rate,
            max_sample_size=self.cfg.max_sample_size,
            min_sample_size=self.cfg.min_sample_size,
            pad=True,
            normalize=False,
            num_buckets=self.cfg.num_batch_buckets,
        )
        label_path = os.path.join(self.cfg.data, f"{split}.{self.cfg.labels}")
        self.datasets[split] = LabelledAudioDataset.from_files(
            audio, label_path, self.labels, self.labels_from
        )
