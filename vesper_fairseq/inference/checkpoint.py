"""A fine-tuned `vesper_classifier` fairseq checkpoint as a ready model, without its data folder.

Everything needed to classify new audio is in the checkpoint: the upstream's WavLM cfg and
weights, the head, the class names (model.labels) and the training crop (task.max_sample_size).
"""

import json
import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..formats.encoder_state import check_tensor
from ..formats.fairseq_checkpoint import encoder_from_fairseq_state, fairseq_num_updates
from ..models.vesper_classifier import VesperClassifier, VesperClassifierConfig
from ..modules.wavlm_config import SAMPLE_RATE
from ..safe_load import CheckpointError, load_checkpoint

logger = logging.getLogger(__name__)


@dataclass
class ClassifierInfo:
    """What a classifier checkpoint says about itself (labels, crop, provenance, metrics)."""

    labels: list[str]
    crop_samples: int
    sample_rate: int = SAMPLE_RATE
    checkpoint: str = ""
    training_data: str | None = None
    num_updates: int | None = None
    metric: dict = field(default_factory=dict)  # {"name", "value", "subset"} when known

    @property
    def crop_seconds(self) -> float:
        return self.crop_samples / self.sample_rate


def read_classifier_state(
    path, map_location="cpu", allow_pickle: bool = False, opt_in: str = "allow_pickle=True"
) -> dict:
    """The raw state of a fairseq `vesper_classifier` checkpoint; CheckpointError otherwise."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(path, folder_problem(path))
    if not path.is_file():
        raise CheckpointError(path, "no such file (a vesper_classifier checkpoint_*.pt)")
    state = load_checkpoint(path, map_location, allow_pickle, opt_in)
    cfg = state.get("cfg") if isinstance(state, dict) else None
    name = cfg.get("model", {}).get("_name") if isinstance(cfg, dict) else None
    if name != "vesper_classifier":
        what = f"a {name!r} checkpoint" if name else "not a fairseq checkpoint"
        raise CheckpointError(path, f"{what}, not a fine-tuned vesper_classifier one")
    return state


def folder_problem(path: Path) -> str:
    """Why the folder `path` is no classifier checkpoint, saying what it holds."""
    config = path / "config.json"
    try:
        found = json.loads(config.read_text()) if config.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        found = None
    found = found if isinstance(found, dict) else {}
    if any(str(a).endswith("ForSequenceClassification") for a in found.get("architectures") or []):
        return (
            "a transformers classifier folder (vesper-export --to hf), which is used through "
            f'transformers: pipeline("audio-classification", model="{path}") (README, Classify '
            "new audio); vesper-predict reads the vesper_classifier checkpoint it was exported "
            "from"
        )
    if found.get("format") == "vesper-encoder" or found.get("model_type") == "wavlm":
        return (
            "an encoder folder (no classification head); vesper-predict needs a fine-tuned "
            "vesper_classifier checkpoint_*.pt"
        )
    return "a folder, not a checkpoint file (a vesper_classifier checkpoint_*.pt)"


def is_classifier_checkpoint(state) -> bool:
    cfg = state.get("cfg") if isinstance(state, dict) else None
    return isinstance(cfg, dict) and cfg.get("model", {}).get("_name") == "vesper_classifier"


def classifier_from_state(state: dict, source) -> tuple[VesperClassifier, ClassifierInfo]:
    """Build the classifier (eval mode, float32) and its info from a checkpoint's state."""
    model_cfg = state["cfg"]["model"]
    labels = model_cfg.get("labels")
    if not labels:
        raise CheckpointError(source, "model.labels (the class names) is not in the checkpoint")
    upstream = encoder_from_fairseq_state(state, source)
    known = {f.name for f in fields(VesperClassifierConfig)}
    cfg = VesperClassifierConfig(**{k: v for k, v in model_cfg.items() if k in known})
    cfg.upstream_path = None
    model = VesperClassifier(cfg, upstream, len(labels))
    head = {k[len("head.") :]: v for k, v in state["model"].items() if k.startswith("head.")}
    for key, ref in model.head.state_dict().items():
        if key in head:  # NaN or integer weights would classify silently wrong
            check_tensor(source, f"head.{key}", head[key], ref, "the classification head")
    try:
        model.head.load_state_dict({k: v.float() for k, v in head.items()}, strict=True)
    except RuntimeError as e:
        raise CheckpointError(source, f"head tensors do not fit model.labels: {e}") from None
    return model.eval(), _info(state, source, list(labels))


def _info(state: dict, source, labels: list[str]) -> ClassifierInfo:
    task = state["cfg"].get("task") or {}
    checkpoint_cfg = state["cfg"].get("checkpoint") or {}
    dataset = state["cfg"].get("dataset") or {}
    extra = state.get("extra_state") or {}
    metric = {}
    if extra.get("best") is not None:
        metric = {
            "name": checkpoint_cfg.get("best_checkpoint_metric"),
            "value": float(extra["best"]),
            "subset": dataset.get("valid_subset"),
        }
    return ClassifierInfo(
        labels=labels,
        crop_samples=int(task.get("max_sample_size") or 0) or 104000,
        sample_rate=int(task.get("sample_rate") or SAMPLE_RATE),
        checkpoint=os.path.abspath(str(source)),
        training_data=task.get("data"),
        num_updates=fairseq_num_updates(state),
        metric=metric,
    )


def load_classifier(
    path, map_location="cpu", allow_pickle: bool = False, opt_in: str = "allow_pickle=True"
) -> tuple[VesperClassifier, ClassifierInfo]:
    """A `vesper_classifier` checkpoint -> (model in eval mode on CPU, ClassifierInfo), read
    weights-only unless `allow_pickle` (docs/security.md)."""
    state = read_classifier_state(path, map_location, allow_pickle, opt_in)
    return classifier_from_state(state, path)
