"""The original WavLM checkpoint: a .pt holding {"cfg": WavLM cfg dict, "model": state_dict},
read weights-only."""

import os

from ..io_utils import atomic_torch_save
from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import WavLMConfig
from .encoder_state import add_identity_final_norm, config_or_error, encoder_from_state_dict


def is_wavlm_checkpoint(state) -> bool:
    cfg = state.get("cfg") if isinstance(state, dict) else None
    return (
        isinstance(cfg, dict) and "encoder_layers" in cfg and isinstance(state.get("model"), dict)
    )


def encoder_from_wavlm_state(state: dict, source) -> WavLMEncoder:
    cfg = config_or_error(source, lambda: WavLMConfig.from_dict(state["cfg"]))
    return encoder_from_state_dict(cfg, state["model"], source=source)


def save_wavlm_checkpoint(
    encoder: WavLMEncoder, path: str | os.PathLike, original_layout: bool = False
) -> None:
    """Write {"cfg": plain dict, "model": state_dict} (original WavLM layout), atomically.

    ``original_layout`` gives a pre-LN encoder without ``encoder.layer_norm`` (a Vesper
    student) the identity one of :func:`add_identity_final_norm`, so that the original WavLM
    code, which always builds it, loads the file strictly.
    """
    cfg = encoder.cfg.to_dict()
    model = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if original_layout:
        add_identity_final_norm(model, cfg, encoder.embed_dim)
    atomic_torch_save({"cfg": cfg, "model": model}, path)
