"""The encoder inside a fairseq checkpoint of model `vesper` or `vesper_classifier`."""

import logging

from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import WavLMConfig
from .encoder_state import CheckpointError, encoder_from_state_dict

logger = logging.getLogger(__name__)

# model name -> (state-dict prefix of the encoder, cfg field holding its WavLM cfg)
FAIRSEQ_ENCODERS = {
    "vesper": ("encoder.", "student"),
    "vesper_classifier": ("upstream.", "upstream"),
}


def is_fairseq_checkpoint(state) -> bool:
    cfg = state.get("cfg") if isinstance(state, dict) else None
    return (
        isinstance(cfg, dict)
        and isinstance(state.get("model"), dict)
        and isinstance(cfg.get("model"), dict)
        and "optimizer_history" in state
    )


def fairseq_model_name(state: dict, source) -> str:
    name = state["cfg"]["model"].get("_name")
    if name not in FAIRSEQ_ENCODERS:
        raise CheckpointError(
            source,
            f"a fairseq checkpoint of model {name!r}; encoders are read from models "
            f"{sorted(FAIRSEQ_ENCODERS)}",
        )
    return name


def fairseq_encoder_config(state: dict, source) -> WavLMConfig:
    """The encoder's WavLMConfig, which the model stores in its cfg when it is built."""
    model_cfg = state["cfg"]["model"]
    name = fairseq_model_name(state, source)
    cfg_field = FAIRSEQ_ENCODERS[name][1]
    stored = model_cfg.get(cfg_field)
    if stored is None:
        raise CheckpointError(
            source,
            f"model.{cfg_field} (the encoder's config) is not in the checkpoint; it was not "
            "written by this version of vesper-fairseq",
        )
    cfg = _config(source, stored)
    if name == "vesper_classifier" and model_cfg.get("normalize") is not None:
        cfg.normalize = bool(model_cfg["normalize"])  # the classifier's override is what ran
    cfg.validate()
    return cfg


def _config(source, d) -> WavLMConfig:
    try:
        return WavLMConfig.from_dict(dict(d))
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(source, f"invalid encoder config: {e}") from None


def fairseq_num_updates(state: dict) -> int | None:
    history = state.get("optimizer_history") or [{}]
    return history[-1].get("num_updates") if isinstance(history[-1], dict) else None


def encoder_from_fairseq_state(state: dict, source) -> WavLMEncoder:
    """The student of a `vesper` checkpoint or the upstream of a `vesper_classifier` one; the
    prediction heads / classification head are left out."""
    cfg = fairseq_encoder_config(state, source)
    name = fairseq_model_name(state, source)
    prefix = FAIRSEQ_ENCODERS[name][0]
    tensors = {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    if not tensors:
        raise CheckpointError(source, f"no {prefix}* tensors in a {name} checkpoint")
    logger.info(
        "%s: %s checkpoint at %s updates: %d-layer encoder",
        source,
        name,
        fairseq_num_updates(state),
        cfg.encoder_layers,
    )
    return encoder_from_state_dict(cfg, tensors, source=source)
