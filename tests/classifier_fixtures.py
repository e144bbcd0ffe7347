"""A tiny fine-tuned `vesper_classifier` checkpoint, built directly from the model class and
saved with the layout fairseq's trainer writes (cfg as plain dicts, optimizer_history, ...),
and speech-like test audio with silent stretches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vesper_fairseq.models.vesper_classifier import VesperClassifier, VesperClassifierConfig
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

LABELS = ["ang", "hap", "neu", "sad"]
CROP = 16000  # 1-s training crop


def make_tiny_classifier(path: Path, labels=LABELS, crop=CROP, seed=0, **encoder) -> Path:
    torch.manual_seed(seed)
    small = dict(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                 encoder_attention_heads=2, conv_pos_groups=2,
                 conv_feature_layers="[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2")  # fmt: skip
    upstream = WavLMEncoder(tiny_wavlm_config(**{**small, **encoder}))
    cfg = VesperClassifierConfig(upstream=upstream.cfg.to_dict(), labels=list(labels))
    model = VesperClassifier(cfg, upstream, len(labels)).eval()
    with torch.no_grad():  # a trained head: layer weights away from uniform, larger logits
        model.head.layer_sum.weights.normal_(0, 1)
        model.head.classifier.weight.mul_(3)
    model_cfg = {"_name": "vesper_classifier", "upstream_path": "/gone/upstream.pt",
                 "freeze_upstream": True, "unfreeze_top_k": 0, "freeze_feature_extractor": True,
                 "hidden_dim": 256, "head_dropout": 0.0, "normalize": None,
                 "upstream": upstream.cfg.to_dict(), "labels": list(labels)}  # fmt: skip
    state = {
        "args": None,
        "cfg": {
            "model": model_cfg,
            "task": {"_name": "emotion_classification", "data": "/gone/manifests/fold1",
                     "labels": "emo", "sample_rate": 16000, "max_sample_size": crop,
                     "min_sample_size": 400, "crop": "first"},  # fmt: skip
            "checkpoint": {"best_checkpoint_metric": "ua", "maximize_best_checkpoint_metric": True},
            "common": {"seed": 1},
            "optimization": {"max_update": 42},
            "dataset": {"valid_subset": "valid"},
        },
        "model": model.state_dict(),
        "criterion": {},
        "optimizer_history": [{"criterion_name": "EmotionCrossEntropyCriterion",
                               "optimizer_name": "Adam", "num_updates": 42,
                               "lr_scheduler_state": {"best": 0.625}}],  # fmt: skip
        "task_state": {},
        "extra_state": {"val_loss": 0.625, "best": 0.625,
                        "train_iterator": {"epoch": 3, "iterations_in_epoch": 0}},  # fmt: skip
        "last_optimizer_state": None,
    }
    torch.save(state, path)
    return path


def speech_like(seconds: float, seed: int = 0, f0=140.0, sr=16000) -> np.ndarray:
    """Voiced, syllable-modulated harmonic signal with a little noise (about -15 dBFS)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    wave = 0.15 * voiced * syllables + 0.01 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def long_recording(seed: int = 0, sr=16000) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """60 s: speech-like stretches and silent ones (very faint noise); the silent spans."""
    rng = np.random.default_rng(seed)
    plan = [("speech", 12), ("silence", 10), ("speech", 15), ("silence", 8), ("speech", 15)]
    parts, silent, t = [], [], 0.0
    for i, (kind, seconds) in enumerate(plan):
        if kind == "speech":
            parts.append(speech_like(seconds, seed + i, f0=rng.uniform(110, 220), sr=sr))
        else:
            parts.append((1e-4 * rng.standard_normal(seconds * sr)).astype(np.float32))
            silent.append((t, t + seconds))
        t += seconds
    return np.concatenate(parts), silent
