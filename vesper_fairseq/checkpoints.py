"""Encoder checkpoints in and out: original WavLM (.pt) and HuggingFace WavLM folders."""

import json
import logging
import os
import tempfile
from pathlib import Path

import torch

from .checkpoint_names import (
    HF_MODEL_PREFIXES,
    hf_config_to_wavlm,
    hf_to_wavlm_key,
    wavlm_to_hf_config,
    wavlm_to_hf_key,
)
from .modules.wavlm import WavLMConfig, WavLMEncoder

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "encoder_from_hf_state_dict",
    "encoder_from_state_dict",
    "hf_config_to_wavlm",
    "hf_to_wavlm_key",
    "load_encoder",
    "save_wavlm_checkpoint",
    "wavlm_to_hf_config",
    "wavlm_to_hf_key",
]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not describe a valid encoder."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def load_encoder(path: str | os.PathLike, map_location="cpu") -> WavLMEncoder:
    """Load a WavLM encoder (original .pt or HF folder), in eval mode."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such file or directory")
    if path.is_dir():
        if (path / "config.json").is_file():
            return _load_hf_folder(path, map_location)
        raise CheckpointError(path, "unknown checkpoint folder (no config.json)")
    if path.suffix == ".safetensors" or path.name == "config.json":
        raise CheckpointError(path, "a HuggingFace checkpoint is loaded from its folder")
    state = _torch_load(path, map_location)
    if _is_wavlm_checkpoint(state):
        cfg = _config_or_error(path, lambda: WavLMConfig.from_dict(state["cfg"]))
        return encoder_from_state_dict(cfg, state["model"], source=path)
    keys = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
    raise CheckpointError(path, f"unknown checkpoint format (top level: {keys})")


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


def _torch_load(path: Path, map_location):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, garbage bytes, disallowed pickled globals, ...
        problem = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(path, f"cannot be read as a PyTorch checkpoint: {problem}") from None


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
        if tuple(state_dict[key].shape) != tuple(ref.shape):
            raise CheckpointError(
                source,
                f"{key} has shape {tuple(state_dict[key].shape)}, "
                f"the config needs {tuple(ref.shape)}",
            )
    tensors = {k: _to_float32(v) for k, v in state_dict.items()}
    encoder.load_state_dict(tensors, strict=True, assign=True)
    return encoder.eval()


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
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(path / "config.json", f"not a readable JSON config: {e}") from None
    if not isinstance(config, dict) or config.get("model_type") != "wavlm":
        found = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(path / "config.json", f"model_type is {found!r}, not 'wavlm'")
    normalize = None
    preprocessor = path / "preprocessor_config.json"
    if preprocessor.is_file():
        try:
            normalize = json.loads(preprocessor.read_text()).get("do_normalize")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
            raise CheckpointError(preprocessor, f"not a readable JSON config: {e}") from None
    return encoder_from_hf_state_dict(
        config, _read_hf_weights(path, map_location), normalize=normalize, source=path
    )


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
        state = _torch_load(path / "pytorch_model.bin", map_location)
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


def save_wavlm_checkpoint(encoder: WavLMEncoder, path: str | os.PathLike) -> None:
    """Write {"cfg": plain dict, "model": state_dict} (original WavLM layout), atomically."""
    state = {
        "cfg": encoder.cfg.to_dict(),
        "model": {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()},
    }
    atomic_torch_save(state, path)


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
