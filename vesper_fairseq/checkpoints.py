"""Encoder checkpoints in: original WavLM (.pt), HuggingFace WavLM folders, exported Vesper
folders and fairseq checkpoints of models `vesper` / `vesper_classifier`; original .pt out."""

import json
import logging
import os
from pathlib import Path

import torch

from .checkpoint_names import (
    HF_MODEL_PREFIXES,
    hf_config_to_wavlm,
    hf_to_wavlm_key,
    wavlm_to_hf_config,
    wavlm_to_hf_key,
)
from .io_utils import atomic_path
from .modules.wavlm import WavLMConfig, WavLMEncoder
from .safe_load import CheckpointError, load_checkpoint

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "encoder_from_hf_state_dict",
    "encoder_from_state_dict",
    "hf_config_to_wavlm",
    "hf_to_wavlm_key",
    "load_encoder",
    "read_checkpoint_state",
    "save_wavlm_checkpoint",
    "wavlm_to_hf_config",
    "wavlm_to_hf_key",
]


VESPER_FORMAT = "vesper-encoder"
VESPER_FORMAT_VERSION = 1


def load_encoder(
    path: str | os.PathLike,
    map_location="cpu",
    allow_pickle: bool = False,
    opt_in: str = "allow_pickle=True",
) -> WavLMEncoder:
    """Load an encoder, in eval mode, from any of the formats this project knows:

    - an original WavLM ``.pt`` ({"cfg": dict, "model": state_dict}), read with
      ``weights_only=True``;
    - a HuggingFace WavLM folder (``config.json`` with model_type "wavlm" + weights);
    - an exported Vesper folder (``config.json`` with format "vesper-encoder" +
      ``model.safetensors``): no pickle at all;
    - a fairseq checkpoint of model ``vesper`` (the student) or ``vesper_classifier`` (its
      upstream), read with ``weights_only=True`` (see safe_load.py).

    A ``.pt`` that pickles other Python objects is refused, naming ``opt_in``; with
    ``allow_pickle=True`` it is unpickled (``weights_only=False``), which runs code from the
    file: only for a file you trust.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such file or directory")
    if path.is_dir():
        config = _read_json(path / "config.json") if (path / "config.json").is_file() else None
        if config is None:
            raise CheckpointError(path, "unknown checkpoint folder (no config.json)")
        if isinstance(config, dict) and "format" in config:
            return _load_vesper_folder(path, config, map_location)
        return _load_hf_folder(path, map_location)
    if path.suffix == ".safetensors" or path.name == "config.json":
        raise CheckpointError(
            path, "a HuggingFace or exported Vesper model is loaded from its folder"
        )
    state = load_checkpoint(path, map_location, allow_pickle, opt_in)
    if _is_wavlm_checkpoint(state):
        cfg = _config_or_error(path, lambda: WavLMConfig.from_dict(state["cfg"]))
        return encoder_from_state_dict(cfg, state["model"], source=path)
    if _is_fairseq_checkpoint(state):
        from .checkpoint_fairseq import encoder_from_fairseq_state

        return encoder_from_fairseq_state(state, path)
    keys = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
    raise CheckpointError(path, f"unknown checkpoint format (top level: {keys})")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(path, f"not a readable JSON config: {e}") from None


def _is_fairseq_checkpoint(state) -> bool:
    cfg = state.get("cfg") if isinstance(state, dict) else None
    return (
        isinstance(cfg, dict)
        and isinstance(state.get("model"), dict)
        and isinstance(cfg.get("model"), dict)
        and "optimizer_history" in state
    )


def read_checkpoint_state(
    path, map_location="cpu", allow_pickle: bool = False, opt_in: str = "allow_pickle=True"
):
    """The object stored in a .pt checkpoint, read exactly as load_encoder reads files."""
    return load_checkpoint(Path(path), map_location, allow_pickle, opt_in)


def _is_wavlm_checkpoint(state) -> bool:
    cfg = state.get("cfg") if isinstance(state, dict) else None
    return (
        isinstance(cfg, dict) and "encoder_layers" in cfg and isinstance(state.get("model"), dict)
    )


def _config_or_error(path, build):
    try:
        return build()
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(path, f"invalid config: {e}") from None


def encoder_from_state_dict(cfg: WavLMConfig, state_dict: dict, source="<state_dict>"):
    """Build an encoder from cfg and load state_dict strictly; CheckpointError on any mismatch."""
    with torch.device("meta"):
        encoder = WavLMEncoder(cfg)
    expected = encoder.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            source,
            f"tensors do not match the config ({cfg.encoder_layers} layers, "
            f"{cfg.extractor_mode} extractor): missing {_few(missing)}, "
            f"unexpected {_few(unexpected)}",
        )
    for key, ref in expected.items():
        _check_tensor(source, key, state_dict[key], ref)
    tensors = {k: _to_float32(v) for k, v in state_dict.items()}
    encoder.load_state_dict(tensors, strict=True, assign=True)
    return encoder.eval()


def _check_tensor(source, key: str, tensor, ref: torch.Tensor) -> None:
    """Shape, dtype and values of one checkpoint tensor against the model's (meta) tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise CheckpointError(source, f"{key} is a {type(tensor).__name__}, not a tensor")
    if tuple(tensor.shape) != tuple(ref.shape):
        raise CheckpointError(
            source, f"{key} has shape {tuple(tensor.shape)}, the config needs {tuple(ref.shape)}"
        )
    if ref.is_floating_point() and not tensor.is_floating_point():
        raise CheckpointError(
            source, f"{key} has dtype {tensor.dtype}; the encoder needs floating-point weights"
        )
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise CheckpointError(source, f"{key} holds NaN or infinite values")


def _to_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.is_floating_point() else t


def _few(keys, n=5):
    return (
        "[]"
        if not keys
        else str(keys[:n])[:-1] + (f", ... {len(keys)} in all]" if len(keys) > n else "]")
    )


def encoder_from_hf_state_dict(config: dict, state_dict: dict, normalize=None, source="<hf>"):
    """Encoder from a transformers WavLM config dict and WavLMModel (or WavLMFor*) tensors."""
    cfg = _config_or_error(source, lambda: hf_config_to_wavlm(config, normalize=normalize))
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
            "%s: ignoring %d tensors outside WavLMModel: %s", source, len(ignored), _few(ignored)
        )
    if "mask_emb" not in converted:  # transformers omits it when mask_time_prob == 0
        logger.warning("%s: no masked_spec_embed; mask_emb is initialised randomly", source)
        converted["mask_emb"] = torch.empty(cfg.encoder_embed_dim).uniform_()
    return encoder_from_state_dict(cfg, converted, source=source)


def _load_hf_folder(path: Path, map_location) -> WavLMEncoder:
    config = _read_json(path / "config.json")
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
    config = _read_json(preprocessor)
    if not isinstance(config, dict):
        raise CheckpointError(preprocessor, "not a readable JSON config: not an object")
    return config.get("do_normalize")


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
    return _config_or_error(where, lambda: WavLMConfig.from_dict(config["encoder"]))


def _load_vesper_folder(path: Path, config, map_location) -> WavLMEncoder:
    """Exported Vesper folder: config.json + model.safetensors (WavLM key names, no mask_emb:
    an exported encoder extracts features and is never masked; zeros stand in for it)."""
    cfg = _vesper_folder_config(path, config)
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(path, "no model.safetensors next to config.json")
    state = _read_safetensors(weights, map_location)
    state.setdefault("mask_emb", torch.zeros(cfg.encoder_embed_dim))
    return encoder_from_state_dict(cfg, state, source=path)


def _read_hf_weights(path: Path, map_location) -> dict:
    single = path / "model.safetensors"
    index = path / "model.safetensors.index.json"
    if single.is_file():
        return _read_safetensors(single, map_location)
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, json.JSONDecodeError, KeyError, AttributeError) as e:
            raise CheckpointError(index, f"not a valid safetensors index: {e}") from None
        state = {}
        for shard in shards:
            state.update(_read_safetensors(path / shard, map_location))
        return state
    if (path / "pytorch_model.bin").is_file():
        state = load_checkpoint(path / "pytorch_model.bin", map_location)
        if not isinstance(state, dict):
            raise CheckpointError(path / "pytorch_model.bin", "not a state dict")
        return state
    raise CheckpointError(path, "no model.safetensors or pytorch_model.bin next to config.json")


def _read_safetensors(path: Path, map_location) -> dict:
    from safetensors.torch import load_file

    device = str(map_location) if isinstance(map_location, str | torch.device) else "cpu"
    try:
        return load_file(path, device=device)
    except Exception as e:  # truncated header or data, not a safetensors file
        raise CheckpointError(path, f"cannot be read as safetensors: {e}") from None


def save_wavlm_checkpoint(
    encoder: WavLMEncoder, path: str | os.PathLike, original_layout: bool = False
) -> None:
    """Write {"cfg": plain dict, "model": state_dict} (original WavLM layout), atomically.

    ``original_layout`` gives a pre-LN encoder without ``encoder.layer_norm`` (a Vesper
    student) an identity one (weight 1, bias 0, cfg encoder_layer_norm=True) so that the
    original WavLM code, which always builds it, loads the file strictly. Per-layer outputs do
    not change: a pre-LN model applies it only to its final output, never to layer_results.
    """
    cfg = encoder.cfg.to_dict()
    model = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if original_layout and not cfg["encoder_layer_norm"]:
        cfg["encoder_layer_norm"] = True
        model["encoder.layer_norm.weight"] = torch.ones(encoder.embed_dim)
        model["encoder.layer_norm.bias"] = torch.zeros(encoder.embed_dim)
    atomic_torch_save({"cfg": cfg, "model": model}, path)


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
