"""Encoder and classifier formats on disk, one module per format with its reader and writer:

    wavlm_checkpoint     original WavLM .pt {"cfg", "model"}       read and written
    hf_folder            transformers WavLMModel folder (names: hf_names)   read and written
    vesper_folder        exported Vesper folder (safetensors + JSON)       read and written
    fairseq_checkpoint   fairseq checkpoints of `vesper` / `vesper_classifier`   read
    hf_classifier        a fine-tuned classifier as WavLMForSequenceClassification   written
    onnx_export          encoders and classifiers as ONNX graphs           written

`load_encoder` reads any encoder format, `export_encoder` writes the three encoder formats.
"""

import os
from pathlib import Path

from ..modules.wavlm import WavLMEncoder
from ..safe_load import CheckpointError, load_checkpoint
from .encoder_state import read_json
from .fairseq_checkpoint import encoder_from_fairseq_state, is_fairseq_checkpoint
from .hf_folder import load_hf_folder, save_hf_folder
from .vesper_folder import is_vesper_folder_config, load_vesper_folder, save_vesper_folder
from .wavlm_checkpoint import encoder_from_wavlm_state, is_wavlm_checkpoint, save_wavlm_checkpoint

EXPORT_FORMATS = ("vesper", "wavlm", "hf")


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
        if not (path / "config.json").is_file():
            raise CheckpointError(path, "unknown checkpoint folder (no config.json)")
        config = read_json(path / "config.json")
        if is_vesper_folder_config(config):
            return load_vesper_folder(path, config, map_location)
        return load_hf_folder(path, map_location)
    if path.suffix == ".safetensors" or path.name == "config.json":
        raise CheckpointError(
            path, "a HuggingFace or exported Vesper model is loaded from its folder"
        )
    state = load_checkpoint(path, map_location, allow_pickle, opt_in)
    if is_wavlm_checkpoint(state):
        return encoder_from_wavlm_state(state, path)
    if is_fairseq_checkpoint(state):
        return encoder_from_fairseq_state(state, path)
    keys = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
    raise CheckpointError(path, f"unknown checkpoint format (top level: {keys})")


def export_encoder(
    encoder: WavLMEncoder,
    out: str | os.PathLike,
    to: str,
    source: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `encoder` as `to` ("vesper" / "hf": folder OUT, which ends up holding that
    format's files only: other files are refused unless `overwrite`, which removes them;
    "wavlm": file OUT)."""
    if to not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {to!r}")
    out = Path(out)
    if to == "wavlm":
        save_wavlm_checkpoint(encoder, out, original_layout=True)
    elif to == "vesper":
        save_vesper_folder(encoder, out, source=source, overwrite=overwrite)
    else:
        save_hf_folder(encoder, out, overwrite=overwrite)
    return out
