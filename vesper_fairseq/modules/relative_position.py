"""Bucketed relative position bias of WavLM (T5-style log buckets, split by direction)."""

import math

import torch


def relative_position_bucket(
    relative_position: torch.Tensor, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """Bucket index of each (key - query) offset; half the buckets for each direction."""
    half = num_buckets // 2
    buckets = (relative_position > 0).long() * half
    distance = relative_position.abs()
    max_exact = half // 2
    # log-spaced buckets between max_exact and max_distance, clamped to the last bucket
    log_ratio = torch.log(distance.float().clamp(min=1) / max_exact) / math.log(
        max_distance / max_exact
    )
    large = max_exact + (log_ratio * (half - max_exact)).long()
    large = large.clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, large)


def relative_position_bias(
    embedding: torch.nn.Embedding, length: int, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """The (1, H, T, T) bias table for a sequence of ``length`` frames, contiguous: every
    layer's gated bias and attention then read it in that layout without a copy."""
    positions = torch.arange(length, device=embedding.weight.device)
    relative = positions[None, :] - positions[:, None]
    bucket = relative_position_bucket(relative, num_buckets, max_distance)
    return embedding(bucket).permute(2, 0, 1).unsqueeze(0).contiguous()
