"""The exported Vesper folder (format "vesper-encoder", format_version 1): no pickle at all.

OUT/config.json        {"format": "vesper-encoder", "format_version": 1,
                        "encoder": {WavLMConfig fields, as in an original WavLM cfg},
                        "num_layers": N, "embed_dim": D, "sample_rate": 16000,
                        "frame_rate": 50, "source": {...where it came from...}}
OUT/model.safetensors  float32 tensors under the original WavLM key names, without
                       mask_emb (never used for feature extraction)
"""

import os
from pathlib import Path

import torch

from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import SAMPLE_RATE, WavLMConfig
from ..safe_load import CheckpointError
from .encoder_state import (
    config_or_error,
    encoder_from_state_dict,
    plain_state,
    read_safetensors,
    write_folder,
)

VESPER_FORMAT = "vesper-encoder"
VESPER_FORMAT_VERSION = 1


def is_vesper_folder_config(config) -> bool:
    return isinstance(config, dict) and "format" in config


def _vesper_folder_config(path: Path, config) -> WavLMConfig:
    where = path / "config.json"
    if not isinstance(config, dict) or config.get("format") != VESPER_FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise CheckpointError(where, f"format is {found!r}, not {VESPER_FORMAT!r}")
    version = config.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= VESPER_FORMAT_VERSION:
        raise CheckpointError(
            where,
            f"format_version {version!r} is not one this vesper-fairseq reads "
            f"(1..{VESPER_FORMAT_VERSION}); a newer release may have written it",
        )
    if not isinstance(config.get("encoder"), dict):
        raise CheckpointError(where, "no 'encoder' object (the WavLM config)")
    return config_or_error(where, lambda: WavLMConfig.from_dict(config["encoder"]))


def load_vesper_folder(path: Path, config, map_location) -> WavLMEncoder:
    """config.json + model.safetensors (WavLM key names, no mask_emb: an exported encoder
    extracts features and is never masked; zeros stand in for it)."""
    cfg = _vesper_folder_config(path, config)
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(path, "no model.safetensors next to config.json")
    state = read_safetensors(weights, map_location)
    state.setdefault("mask_emb", torch.zeros(cfg.encoder_embed_dim))
    return encoder_from_state_dict(cfg, state, source=path)


def save_vesper_folder(
    encoder: WavLMEncoder, out: str | os.PathLike, source=None, overwrite: bool = False
) -> Path:
    """Exported Vesper folder: config.json + model.safetensors; load_encoder(out) reads it.
    An `out` holding other files is refused unless `overwrite` (encoder_state.write_folder)."""
    config = {
        "format": VESPER_FORMAT,
        "format_version": VESPER_FORMAT_VERSION,
        "encoder": encoder.cfg.to_dict(),
        "num_layers": encoder.num_layers,
        "embed_dim": encoder.embed_dim,
        "sample_rate": SAMPLE_RATE,
        "frame_rate": SAMPLE_RATE // encoder.cfg.frame_stride,
        "source": dict(source or {}),
    }
    files = {
        "model.safetensors": plain_state(encoder, drop=("mask_emb",)),
        "config.json": config,
    }
    return write_folder(Path(out), files, {"format": VESPER_FORMAT}, "vesper", overwrite)
