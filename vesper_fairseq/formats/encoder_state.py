"""What every encoder format shares: building a WavLMEncoder from a state dict strictly, the
identity final LayerNorm that outside formats expect of a pre-LN Vesper student, reading JSON
and safetensors with errors that name the file, and writing a model folder atomically."""

import json
import logging
import os
from pathlib import Path

import torch

from ..io_utils import WriteError, atomic_folder, file_mode
from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import WavLMConfig
from ..safe_load import CheckpointError

logger = logging.getLogger(__name__)


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
            f"{cfg.extractor_mode} extractor): missing {few(missing)}, "
            f"unexpected {few(unexpected)}",
        )
    for key, ref in expected.items():
        check_tensor(source, key, state_dict[key], ref)
    tensors = {k: _to_float32(v) for k, v in state_dict.items()}
    encoder.load_state_dict(tensors, strict=True, assign=True)
    return encoder.eval()


def check_tensor(source, key: str, tensor, ref: torch.Tensor, model: str = "the encoder") -> None:
    """Shape, dtype and values of one checkpoint tensor against the model's (meta) tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise CheckpointError(source, f"{key} is a {type(tensor).__name__}, not a tensor")
    if tuple(tensor.shape) != tuple(ref.shape):
        raise CheckpointError(
            source, f"{key} has shape {tuple(tensor.shape)}, the config needs {tuple(ref.shape)}"
        )
    if ref.is_floating_point() and not tensor.is_floating_point():
        raise CheckpointError(
            source, f"{key} has dtype {tensor.dtype}; {model} needs floating-point weights"
        )
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise CheckpointError(source, f"{key} holds NaN or infinite values")


def _to_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.is_floating_point() else t


def few(keys, n=5) -> str:
    if not keys:
        return "[]"
    return str(keys[:n])[:-1] + (f", ... {len(keys)} in all]" if len(keys) > n else "]")


def config_or_error(path, build):
    try:
        return build()
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(path, f"invalid config: {e}") from None


def plain_state(encoder: WavLMEncoder, drop=()) -> dict:
    return {
        k: v.detach().float().cpu().contiguous()
        for k, v in encoder.state_dict().items()
        if k not in drop
    }


def add_identity_final_norm(state: dict, cfg: dict, dim: int) -> None:
    """Give a pre-LN student without encoder.layer_norm an identity one (weight 1, bias 0,
    cfg encoder_layer_norm True), which the original WavLM code and transformers always build.
    Per-layer outputs do not change: a pre-LN model applies it only to its final output."""
    if cfg.get("encoder_layer_norm", True):
        return
    cfg["encoder_layer_norm"] = True
    state["encoder.layer_norm.weight"] = torch.ones(dim)
    state["encoder.layer_norm.bias"] = torch.zeros(dim)


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(path, f"not a readable JSON config: {e}") from None


def read_safetensors(path: Path, map_location) -> dict:
    from safetensors.torch import load_file

    device = str(map_location) if isinstance(map_location, str | torch.device) else "cpu"
    try:
        return load_file(path, device=device)
    except Exception as e:  # truncated header or data, not a safetensors file
        raise CheckpointError(path, f"cannot be read as safetensors: {e}") from None


def write_folder(out: Path, files: dict, metadata: dict, kind: str, overwrite=False) -> Path:
    """Make `out` a folder holding exactly `files` ({name: content}), a `kind` export: written
    into a temporary sibling folder that then takes its place whole (io_utils.atomic_folder).
    Other files already in `out` are refused, unless `overwrite` (then removed)."""
    from safetensors.torch import save_file

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WriteError(out, FileExistsError("it exists and is not a folder"))
    check_other_files(out, files, kind, overwrite)
    with atomic_folder(out) as tmp:
        for name, content in files.items():
            try:
                if name.endswith(".safetensors"):
                    save_file(content, str(tmp / name), metadata=metadata)
                elif isinstance(content, str):
                    (tmp / name).write_text(content)
                else:
                    (tmp / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
            except Exception as e:  # disk full, ...: the folder keeps its earlier files
                raise WriteError(out / name, e) from e
            os.chmod(tmp / name, file_mode())  # safetensors creates 0600, whatever the umask
    logger.info("wrote %s (%s)", out, ", ".join(files))
    return out


def check_other_files(out: Path, names, kind: str, overwrite: bool) -> None:
    """Refuse a folder `out` that holds anything but `names` (a `kind` export's files), unless
    `overwrite`, which removes other files but never a folder."""
    other = sorted(p.name for p in out.iterdir() if p.name not in names) if out.is_dir() else []
    folders = [name for name in other if (out / name).is_dir()]
    if folders or (other and not overwrite):
        what = "folders" if folders else "files"
        fix = (
            " (--overwrite removes files, never folders)"
            if folders
            else ", or add --overwrite to remove them"
        )
        raise ValueError(
            f"{out} holds {what} that are not part of the {kind} export: "
            f"{few(folders or other)}; write to another --out{fix}"
        )
    if other:
        logger.warning("%s: removing %s (--overwrite)", out, ", ".join(other))
