"""A fine-tuned classifier as a transformers `WavLMForSequenceClassification` folder.

The project's head maps onto transformers' exactly, with `use_weighted_layer_sum=True`:

    ours (EmotionHead)                         transformers
    head.layer_sum.weights (softmax logits)    layer_weights (softmax-ed in forward too)
    head.projection  Linear(D, 256)            projector (classifier_proj_size = 256)
    mean over the real frames                  mean over attention_mask's frames
    head.classifier  Linear(256, C)            classifier

The weighted sum runs over `hidden_states`: the input of layer 1 and the N layer outputs. In
transformers >= 5 these are the raw layer outputs, as our `layer_results` (in 4.x the last one
is passed through encoder.layer_norm, which a pre-LN model such as Vesper then changes), so
the export needs transformers >= 5 to reproduce vesper-predict. The waveform is standardised
by the feature extractor (`do_normalize`, from the upstream's `normalize`), with eps 1e-7
instead of our 1e-5: a difference only for near-silent input.
"""

import logging
import os
from pathlib import Path

from ..inference.checkpoint import ClassifierInfo
from ..models.vesper_classifier import VesperClassifier
from .encoder_state import write_folder
from .hf_folder import hf_encoder_files

logger = logging.getLogger(__name__)


def hf_classifier_files(model: VesperClassifier, info: ClassifierInfo) -> dict:
    files = hf_encoder_files(model.upstream)
    state = {"wavlm." + k: v for k, v in files["model.safetensors"].items()}
    head = model.head
    tensors = {
        "layer_weights": head.layer_sum.weights,
        "projector.weight": head.projection.weight,
        "projector.bias": head.projection.bias,
        "classifier.weight": head.classifier.weight,
        "classifier.bias": head.classifier.bias,
    }
    state.update({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()})
    config = dict(files["config.json"])
    config.update(
        architectures=["WavLMForSequenceClassification"],
        use_weighted_layer_sum=True,
        classifier_proj_size=head.projection.out_features,
        id2label={str(i): label for i, label in enumerate(info.labels)},
        label2id={label: i for i, label in enumerate(info.labels)},
    )
    return {
        "model.safetensors": state,
        "config.json": config,
        "preprocessor_config.json": files["preprocessor_config.json"],
        "README.md": model_card(model, info),
    }


def save_hf_classifier(model: VesperClassifier, info: ClassifierInfo, out, overwrite=False) -> Path:
    """OUT/ with config.json, model.safetensors, preprocessor_config.json and README.md. An
    `out` holding other files is refused unless `overwrite` (encoder_state.write_folder)."""
    files = hf_classifier_files(model, info)
    kind = "hf (WavLMForSequenceClassification)"
    return write_folder(Path(out), files, {"format": "pt"}, kind, overwrite)


def model_card(model: VesperClassifier, info: ClassifierInfo) -> str:
    up = model.upstream
    params = sum(p.numel() for p in model.parameters()) / 1e6
    labels = "\n".join(f"| {i} | {label} |" for i, label in enumerate(info.labels))
    data = "/".join(Path(info.training_data).parts[-2:]) if info.training_data else None
    metric = info.metric
    result = (
        f"Best validation {metric['name']} on `{metric['subset']}`: {metric['value']:.4f}."
        if metric.get("name")
        else "No validation figure is stored in the checkpoint."
    )
    return f"""---
library_name: transformers
pipeline_tag: audio-classification
tags: [speech-emotion-recognition, wavlm, vesper]
---

# Speech emotion classifier ({len(info.labels)} classes)

A `WavLMForSequenceClassification` exported by vesper-fairseq (`vesper-export --to hf`) from
the fine-tuned checkpoint `{os.path.basename(info.checkpoint)}` ({info.num_updates} updates).
Upstream: a {up.num_layers}-layer WavLM-type encoder (width {up.embed_dim}; a Vesper student
or WavLM), frozen; head: softmax-weighted sum of its {up.num_layers + 1} layer outputs ->
Linear({up.embed_dim}, {model.head.projection.out_features}) -> mean over frames ->
Linear to the classes (the Vesper paper's SER protocol). {params:.2f}M parameters.

## Labels

| id | label |
|---:|---|
{labels}

## Training

Data: `{data or "unknown"}` (16 kHz mono), the first {info.crop_seconds:g} s of each clip.
{result}

## Use

```python
from transformers import pipeline

clf = pipeline("audio-classification", model="path/to/this/folder", top_k=None)
clf({{"raw": samples, "sampling_rate": 16000}})   # 1-D float array at 16 kHz
```

Needs transformers >= 5 (its `hidden_states` are the raw layer outputs the head was trained
on). The model was trained on {info.crop_seconds:g}-s crops: for longer recordings, cut them
into windows of that length (`vesper-predict` does it and averages the non-silent windows).
"""
