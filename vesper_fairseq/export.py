"""Writers for exported encoders: our Vesper folder, original WavLM .pt, HuggingFace folder.

Vesper folder (format "vesper-encoder", format_version 1):

    OUT/config.json        {"format": "vesper-encoder", "format_version": 1,
                            "encoder": {WavLMConfig fields, as in an original WavLM cfg},
                            "num_layers": N, "embed_dim": D, "sample_rate": 16000,
                            "frame_rate": 50, "source": {...where it came from...}}
    OUT/model.safetensors  float32 tensors under the original WavLM key names, without
                           mask_emb (never used for feature extraction)

HuggingFace folder: transformers' WavLMModel. Its pre-LN (do_stable_layer_norm) encoder
always applies encoder.layer_norm to last_hidden_state; a Vesper student has none, so an
identity-initialised one (weight 1, bias 0) is written. That LayerNorm still normalises:
last_hidden_state = (h_N - mean(h_N)) / sqrt(var(h_N) + 1e-5) per frame, NOT the raw h_N of
our layer_results[-1]. Raw per-layer outputs come from forward hooks on model.encoder.layers
(or, in transformers 5.x, output_hidden_states=True: hidden_states[l] = our layer_results[l];
in 4.x the last entry of hidden_states is layer-normed like last_hidden_state).
"""

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .checkpoint_names import wavlm_to_hf_config, wavlm_to_hf_key
from .checkpoints import VESPER_FORMAT, VESPER_FORMAT_VERSION, save_wavlm_checkpoint
from .modules.wavlm import WavLMEncoder

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("vesper", "wavlm", "hf")
SAMPLE_RATE = 16000


def export_encoder(
    encoder: WavLMEncoder, out: str | os.PathLike, to: str, source: dict | None = None
) -> Path:
    """Write `encoder` as `to` ("vesper" / "hf": folder OUT; "wavlm": file OUT)."""
    if to not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {to!r}")
    out = Path(out)
    if to == "wavlm":
        save_wavlm_checkpoint(encoder, out, original_layout=True)
    elif to == "vesper":
        save_vesper_folder(encoder, out, source=source)
    else:
        save_hf_folder(encoder, out)
    return out


def _plain_state(encoder: WavLMEncoder, drop=()) -> dict:
    return {
        k: v.detach().float().cpu().contiguous()
        for k, v in encoder.state_dict().items()
        if k not in drop
    }


def save_vesper_folder(encoder: WavLMEncoder, out: str | os.PathLike, source=None) -> Path:
    """Exported Vesper folder: config.json + model.safetensors; load_encoder(out) reads it."""
    config = {
        "format": VESPER_FORMAT,
        "format_version": VESPER_FORMAT_VERSION,
        "encoder": encoder.cfg.to_dict(),
        "num_layers": encoder.num_layers,
        "embed_dim": encoder.embed_dim,
        "sample_rate": SAMPLE_RATE,
        "frame_rate": SAMPLE_RATE // _total_stride(encoder),
        "source": dict(source or {}),
    }
    files = {
        "model.safetensors": _plain_state(encoder, drop=("mask_emb",)),
        "config.json": config,
    }
    return _write_folder(Path(out), files, {"format": VESPER_FORMAT})


def save_hf_folder(encoder: WavLMEncoder, out: str | os.PathLike) -> Path:
    """A folder transformers.WavLMModel.from_pretrained(out) loads with no missing or
    unexpected keys: config.json, model.safetensors, preprocessor_config.json."""
    return _write_folder(Path(out), hf_encoder_files(encoder), {"format": "pt"})


def hf_encoder_files(encoder: WavLMEncoder) -> dict:
    """{file name: content} of a transformers WavLMModel folder for `encoder`."""
    cfg = encoder.cfg
    config = wavlm_to_hf_config(cfg)
    config["torch_dtype"] = "float32"
    state = _plain_state(encoder)
    if not cfg.encoder_layer_norm:  # pre-LN Vesper student: see the module docstring
        state["encoder.layer_norm.weight"] = torch.ones(encoder.embed_dim)
        state["encoder.layer_norm.bias"] = torch.zeros(encoder.embed_dim)
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


def _total_stride(encoder: WavLMEncoder) -> int:
    stride = 1
    for _, _, s in encoder.cfg.conv_layers:
        stride *= s
    return stride


def _write_folder(out: Path, files: dict, metadata: dict) -> Path:
    """Write every file into a temporary sibling folder, then move them into `out` one by
    one (each os.replace is atomic), model.safetensors before config.json."""
    from safetensors.torch import save_file

    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for name, content in files.items():
            if name.endswith(".safetensors"):
                save_file(content, str(tmp / name), metadata=metadata)
            elif isinstance(content, str):
                (tmp / name).write_text(content)
            else:
                (tmp / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
        for name in files:  # dict order: weights first, config.json (what marks it) later
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote %s (%s)", out, ", ".join(files))
    return out
