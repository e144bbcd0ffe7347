"""Waveform standardisation: the one function every path calls.

Pretraining standardises each crop in the dataset (`data/audio_dataset.py`, the teacher and the
student see the same crop), fine-tuning and inference inside the encoder
(`WavLMEncoder.cnn_features` when its config or the classifier says `normalize`), and chunked
extraction once over the whole file before chunking (`features/`); all through this function."""

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-5  # fairseq's and WavLM's layer_norm eps (HF's feature extractor uses 1e-7)


def standardize_waveform(source: Tensor, padding_mask: Tensor | None = None) -> Tensor:
    """(x - mean) / sqrt(var + EPS) per utterance of a (B, L) batch, statistics over real
    samples only (`padding_mask` True = padded sample, set to 0 in the output)."""
    x = source.float()
    if padding_mask is None:
        return F.layer_norm(x, x.shape[-1:], eps=EPS).type_as(source)
    valid = (~padding_mask).float()
    count = valid.sum(-1, keepdim=True).clamp(min=1)
    mean = (x * valid).sum(-1, keepdim=True) / count
    var = (((x - mean) * valid) ** 2).sum(-1, keepdim=True) / count
    out = ((x - mean) * torch.rsqrt(var + EPS)).masked_fill(padding_mask, 0.0)
    return out.type_as(source)
