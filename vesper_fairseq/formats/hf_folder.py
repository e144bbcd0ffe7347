"""A transformers WavLM folder (config.json with model_type "wavlm", safetensors or
pytorch_model.bin weights, preprocessor_config.json), read and written.

transformers' pre-LN (do_stable_layer_norm) encoder always applies encoder.layer_norm to
last_hidden_state; a Vesper student has none, so an identity-initialised one (weight 1, bias 0)
is written. That LayerNorm still normalises: last_hidden_state = (h_N - mean(h_N)) /
sqrt(var(h_N) + 1e-5) per frame, NOT the raw h_N of our layer_results[-1]. Raw per-layer outputs
come from forward hooks on model.encoder.layers (or, in transformers 5.x,
output_hidden_states=True: hidden_states[l] = our layer_results[l]; in 4.x the last entry of
hidden_states is layer-normed like last_hidden_state).
"""

import json
import logging
import os
from pathlib import Path

import torch

from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import SAMPLE_RATE
from ..safe_load import CheckpointError, load_checkpoint
from .encoder_state import (
    add_identity_final_norm,
    config_or_error,
    encoder_from_state_dict,
    few,
    plain_state,
    read_json,
    read_safetensors,
    write_folder,
)
from .hf_names import (
    HF_MODEL_PREFIXES,
    hf_config_to_wavlm,
    hf_to_wavlm_key,
    wavlm_to_hf_config,
    wavlm_to_hf_key,
)

logger = logging.getLogger(__name__)


def encoder_from_hf_state_dict(config: dict, state_dict: dict, normalize=None, source="<hf>"):
    """Encoder from a transformers WavLM config dict and WavLMModel (or WavLMFor*) tensors."""
    cfg = config_or_error(source, lambda: hf_config_to_wavlm(config, normalize=normalize))
    prefix = "wavlm." if any(k.startswith("wavlm.") for k in state_dict) else ""
    converted, ignored = {}, []
    for key, value in state_dict.items():
        name = key[len(prefix) :] if key.startswith(prefix) else None
        if name is None or not name.startswith(HF_MODEL_PREFIXES):
            ignored.append(key)
            continue
        try:
            converted[hf_to_wavlm_key(name, extractor_mode=cfg.extractor_mode)] = value
        except KeyError:
            raise CheckpointError(source, f"unexpected tensor {key!r} for a WavLM model") from None
    if ignored:
        logger.info(
            "%s: ignoring %d tensors outside WavLMModel: %s", source, len(ignored), few(ignored)
        )
    if "mask_emb" not in converted:  # transformers omits it when mask_time_prob == 0
        logger.warning("%s: no masked_spec_embed; mask_emb is initialised randomly", source)
        converted["mask_emb"] = torch.empty(cfg.encoder_embed_dim).uniform_()
    return encoder_from_state_dict(cfg, converted, source=source)


def load_hf_folder(path: Path, map_location) -> WavLMEncoder:
    config = read_json(path / "config.json")
    if not isinstance(config, dict) or config.get("model_type") != "wavlm":
        found = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(path / "config.json", f"model_type is {found!r}, not 'wavlm'")
    return encoder_from_hf_state_dict(
        config, _read_hf_weights(path, map_location), normalize=_hf_normalize(path), source=path
    )


def _hf_normalize(path: Path) -> bool | None:
    preprocessor = path / "preprocessor_config.json"
    if not preprocessor.is_file():
        return None
    config = read_json(preprocessor)
    if not isinstance(config, dict):
        raise CheckpointError(preprocessor, "not a readable JSON config: not an object")
    return config.get("do_normalize")


def _read_hf_weights(path: Path, map_location) -> dict:
    single = path / "model.safetensors"
    index = path / "model.safetensors.index.json"
    if single.is_file():
        return read_safetensors(single, map_location)
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, json.JSONDecodeError, KeyError, AttributeError) as e:
            raise CheckpointError(index, f"not a valid safetensors index: {e}") from None
        state = {}
        for shard in shards:
            state.update(read_safetensors(path / shard, map_location))
        return state
    if (path / "pytorch_model.bin").is_file():
        state = load_checkpoint(path / "pytorch_model.bin", map_location)
        if not isinstance(state, dict):
            raise CheckpointError(path / "pytorch_model.bin", "not a state dict")
        return state
    raise CheckpointError(path, "no model.safetensors or pytorch_model.bin next to config.json")


def save_hf_folder(encoder: WavLMEncoder, out: str | os.PathLike, overwrite=False) -> Path:
    """A folder transformers.WavLMModel.from_pretrained(out) loads with no missing or
    unexpected keys: config.json, model.safetensors, preprocessor_config.json. An `out`
    holding other files is refused unless `overwrite` (encoder_state.write_folder)."""
    files = hf_encoder_files(encoder)
    return write_folder(Path(out), files, {"format": "pt"}, "hf (WavLMModel)", overwrite)


def hf_encoder_files(encoder: WavLMEncoder) -> dict:
    """{file name: content} of a transformers WavLMModel folder for `encoder`."""
    cfg = encoder.cfg
    config = wavlm_to_hf_config(cfg)
    config["torch_dtype"] = "float32"
    state = plain_state(encoder)
    add_identity_final_norm(state, cfg.to_dict(), encoder.embed_dim)
    state = {wavlm_to_hf_key(k): v for k, v in state.items()}
    preprocessor = {
        "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "feature_size": 1,
        "sampling_rate": SAMPLE_RATE,
        "padding_value": 0.0,
        "padding_side": "right",
        "do_normalize": bool(cfg.normalize),
        "return_attention_mask": cfg.extractor_mode == "layer_norm",
    }
    return {
        "model.safetensors": state,
        "config.json": config,
        "preprocessor_config.json": preprocessor,
    }
