"""The encoder inside a fairseq checkpoint of model `vesper` or `vesper_classifier`."""

import logging
from pathlib import Path

from .checkpoints import CheckpointError, encoder_from_state_dict, read_encoder_config
from .modules.wavlm import WavLMEncoder
from .modules.wavlm_config import WavLMConfig

logger = logging.getLogger(__name__)

# model name -> (state-dict prefix of the encoder, cfg field holding its WavLM cfg,
#                cfg field naming the file it was built from)
FAIRSEQ_ENCODERS = {
    "vesper": ("encoder.", "student", "teacher_path"),
    "vesper_classifier": ("upstream.", "upstream", "upstream_path"),
}
DROPOUTS = ("dropout", "attention_dropout", "activation_dropout", "encoder_layerdrop")


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
    """The encoder's WavLMConfig as the model built it.

    The model stores it in its cfg at build time, but fairseq builds models from a merged
    copy of cfg.model, so checkpoints may hold None there: it is then derived again from the
    file the model was built from (teacher_path / upstream_path), as the model did.
    """
    model_cfg = state["cfg"]["model"]
    name = fairseq_model_name(state, source)
    _, cfg_field, path_field = FAIRSEQ_ENCODERS[name]
    stored = model_cfg.get(cfg_field)
    if stored is not None:
        cfg = _config(source, stored)
    else:
        origin = model_cfg.get(path_field)
        if not origin or not Path(origin).exists():
            raise CheckpointError(
                source,
                f"model.{cfg_field} (the encoder's config) is not in the checkpoint and "
                f"model.{path_field} {origin!r}, from which it is derived, is not there",
            )
        logger.info("%s: encoder config derived from model.%s %s", source, path_field, origin)
        cfg = read_encoder_config(origin)
        if name == "vesper":  # as build_student and VesperModel.build_model do
            cfg.encoder_layers = int(model_cfg["num_layers"])
            cfg.encoder_layer_norm = not cfg.layer_norm_first
            for key in DROPOUTS:
                if key in model_cfg:
                    setattr(cfg, key, model_cfg[key])
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
