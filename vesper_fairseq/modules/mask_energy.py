"""Frame energy for emotion-guided masking: RMS over CNN-aligned frames of the real samples."""

import math

import numpy as np
import torch
from torch import Tensor

from .wavlm_config import FRAME_STRIDE, RECEPTIVE_FIELD, frame_count


def real_lengths(waveform: Tensor, padding_mask: Tensor | None) -> Tensor:
    """Real samples per utterance of a (B, samples) batch; `padding_mask` is True on padding."""
    if waveform.dim() != 2:
        raise ValueError(f"waveform must be (batch, samples), got shape {tuple(waveform.shape)}")
    if padding_mask is None:
        return torch.full((waveform.size(0),), waveform.size(1), dtype=torch.long)
    if padding_mask.shape != waveform.shape:
        raise ValueError(
            f"padding_mask shape {tuple(padding_mask.shape)} != waveform {tuple(waveform.shape)}"
        )
    return torch.from_numpy((~padding_mask.detach().cpu().bool().numpy()).sum(axis=1))


def frame_energy(
    waveform: Tensor,
    padding_mask: Tensor | None,
    frame_length: int = RECEPTIVE_FIELD,
    hop: int = FRAME_STRIDE,
) -> tuple[Tensor, Tensor]:
    """RMS per CNN-aligned frame, (B, T) with zeros past each utterance's real frames, and the
    number of real frames per utterance. Pass the waveform the model sees (normalised)."""
    lengths = real_lengths(waveform, padding_mask)
    num_real = frame_count(lengths, frame_length, hop)
    total = frame_count(waveform.size(1), frame_length, hop)
    batch = waveform.size(0)
    if total == 0:
        return torch.zeros(batch, 0), num_real
    # numpy, not torch: cheap on one thread in loader workers, no thread-pool start-up per call.
    # Sum squares over blocks of gcd(frame_length, hop) samples, then frames over blocks.
    block = math.gcd(frame_length, hop)
    num_blocks = waveform.size(1) // block
    samples = waveform[:, : num_blocks * block].detach().cpu().float().numpy()
    blocks = np.square(samples).reshape(batch, num_blocks, block).sum(axis=-1, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(blocks, frame_length // block, axis=1)
    energy = windows[:, :: hop // block][:, :total].sum(axis=-1)
    energy = np.sqrt(energy / frame_length)
    energy[np.arange(total)[None, :] >= num_real.numpy()[:, None]] = 0.0
    return torch.from_numpy(energy.astype(np.float32)), num_real
