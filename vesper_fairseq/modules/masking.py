"""Emotion-guided two-stage span masking of Vesper (docs/method.md section 3), its random
ablation, and the authors' released variant with its two bugs (`variant=released`).

`compute_vesper_masks` is the public entry; the data pipeline calls it in the collater with one
seed per utterance so that an utterance's masks do not depend on its batch.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from torch import Tensor

from .mask_energy import frame_energy, real_lengths
from .wavlm_config import FRAME_STRIDE, RECEPTIVE_FIELD, WavLMConfig, frame_count

logger = logging.getLogger(__name__)

__all__ = ["MaskingConfig", "compute_vesper_masks", "plan_vesper_masks"]

MASKING_STRATEGY_CHOICES = ChoiceEnum(["emotion", "random"])
MASKING_VARIANT_CHOICES = ChoiceEnum(["fixed", "released"])

SOURCE_HIGH, SOURCE_LOW, SOURCE_FILL = 0, 1, 2


@dataclass
class MaskingConfig(FairseqDataclass):
    strategy: MASKING_STRATEGY_CHOICES = field(
        default="emotion",
        metadata={"help": "'emotion': energy-guided span starts; 'random': uniform (ablation)"},
    )
    variant: MASKING_VARIANT_CHOICES = field(
        default="fixed",
        metadata={
            "help": "'fixed': the authors' algorithm with per-utterance thresholds and each band "
            "sorted before spacing; 'released': their code as published, both bugs included "
            "(thresholds compound across the batch, draws spaced unsorted)"
        },
    )
    small_span: int = field(default=8, metadata={"help": "stage-1 span length in frames"})
    small_ratio: float = field(
        default=0.64, metadata={"help": "stage-1 spans = floor(ratio * frames / small_span)"}
    )
    small_max_spans: int = field(default=20, metadata={"help": "cap on stage-1 spans"})
    large_span: int = field(default=40, metadata={"help": "stage-2 span length in frames"})
    large_ratio: float = field(
        default=0.64, metadata={"help": "stage-2 spans = floor(ratio * frames / large_span)"}
    )
    large_max_spans: int = field(default=4, metadata={"help": "cap on stage-2 spans"})
    span_spacing: int = field(
        default=1,
        metadata={"help": "spacing pushes a start to at least previous start + span + this"},
    )
    high_energy_min: float = field(
        default=0.5, metadata={"help": "high-energy band lower edge, fraction of max RMS"}
    )
    high_energy_max: float = field(
        default=1.0, metadata={"help": "high-energy band upper edge, fraction of max RMS"}
    )
    low_energy_min: float = field(
        default=0.2, metadata={"help": "low-energy band lower edge (quieter frames never chosen)"}
    )
    low_energy_max: float = field(
        default=0.49, metadata={"help": "low-energy band upper edge, fraction of max RMS"}
    )
    high_fraction: float = field(
        default=0.5, metadata={"help": "at most floor(n_spans * this) starts from the high band"}
    )
    frame_length: int = field(
        default=RECEPTIVE_FIELD,
        metadata={"help": "RMS window in samples: the encoder's CNN receptive field"},
    )
    frame_hop: int = field(
        default=FRAME_STRIDE,
        metadata={"help": "RMS hop in samples: the encoder's CNN stride"},
    )


@dataclass
class UtteranceMaskPlan:
    """Span starts chosen for one utterance; `*_to_end` marks a span that runs to the end."""

    num_frames: int
    small_starts: np.ndarray
    small_sources: np.ndarray  # SOURCE_HIGH / SOURCE_LOW / SOURCE_FILL per small start
    large_starts: np.ndarray
    small_to_end: bool = False
    large_to_end: bool = False


def check_frame_geometry(cfg: MaskingConfig, encoder_cfg: WavLMConfig) -> None:
    """The masks' frames must be the encoder's CNN frames."""
    masks = (cfg.frame_length, cfg.frame_hop)
    encoder = (encoder_cfg.receptive_field, encoder_cfg.frame_stride)
    if masks != encoder:
        raise ValueError(
            f"masking.frame_length/frame_hop {masks} differ from the encoder's CNN frames "
            f"(receptive field, stride) {encoder}: set them to the encoder's"
        )


def validate_masking_config(cfg: MaskingConfig) -> None:
    if str(cfg.strategy) not in ("emotion", "random"):
        raise ValueError(f"masking strategy must be 'emotion' or 'random', got {cfg.strategy!r}")
    if str(cfg.variant) not in ("fixed", "released"):
        raise ValueError(f"masking variant must be 'fixed' or 'released', got {cfg.variant!r}")
    for name in ("small_span", "large_span", "frame_length", "frame_hop"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"masking {name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("small_max_spans", "large_max_spans", "span_spacing"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"masking {name} must be >= 0, got {getattr(cfg, name)}")
    if not 0.0 <= cfg.high_fraction <= 1.0:
        raise ValueError(f"masking high_fraction must be in [0, 1], got {cfg.high_fraction}")
    for lo, hi in (("high_energy_min", "high_energy_max"), ("low_energy_min", "low_energy_max")):
        if not 0.0 <= getattr(cfg, lo) <= getattr(cfg, hi):
            raise ValueError(f"masking needs 0 <= {lo} <= {hi}")


def push_forward(starts: np.ndarray, gap: int, limit: int) -> np.ndarray:
    """Walk the starts in the given order; a start less than `gap` after the previous one moves
    to previous + gap, and the first one moved past `limit` ends the list (the authors' spacing).
    """
    out = [int(s) for s in starts]
    for i in range(1, len(out)):
        if out[i] - out[i - 1] < gap:
            out[i] = out[i - 1] + gap
        if out[i] > limit:
            return np.asarray(out[:i], np.int64)
    return np.asarray(out, np.int64)


def _num_spans(num_frames: int, ratio: float, span: int, cap: int) -> int:
    return min(int(np.floor(ratio * num_frames / span)), cap)


def _band_draws(energy, bands, n, cfg, rng) -> tuple[np.ndarray, np.ndarray]:
    """k_h = min(|high|, floor(n * high_fraction)) high starts, then k_l = min(|low|, n - k_h)
    low starts, without replacement, each set spaced on its own ('fixed': sorted first)."""
    (h_lo, h_hi), (l_lo, l_hi) = bands
    high = np.flatnonzero((energy >= h_lo) & (energy <= h_hi))
    low = np.flatnonzero((energy >= l_lo) & (energy <= l_hi))
    pick_high = rng.permutation(high)[: int(np.floor(n * cfg.high_fraction))]
    pick_low = rng.permutation(low)[: n - pick_high.size]
    if str(cfg.variant) == "fixed":
        pick_high, pick_low = np.sort(pick_high), np.sort(pick_low)
    gap, valid = cfg.small_span + cfg.span_spacing, energy.size
    pick_high, pick_low = push_forward(pick_high, gap, valid), push_forward(pick_low, gap, valid)
    sources = np.repeat(
        np.array([SOURCE_HIGH, SOURCE_LOW], np.int8), [pick_high.size, pick_low.size]
    )
    return np.concatenate([pick_high, pick_low]), sources


def _stage1(energy, bands, num_frames, cfg, rng) -> tuple[np.ndarray, np.ndarray, bool]:
    n = _num_spans(num_frames, cfg.small_ratio, cfg.small_span, cfg.small_max_spans)
    valid = num_frames - cfg.small_span
    if n <= 0 or valid <= 0:  # too short for a span: one random start, masked to the end
        start = rng.integers(valid if valid > 0 else num_frames)  # the authors': [0, valid)
        return (
            np.array([start], np.int64),
            np.array([SOURCE_FILL], np.int8),
            True,
        )
    if bands is not None:
        starts, sources = _band_draws(energy[:valid], bands, n, cfg, rng)
    else:  # random ablation: uniform draws, sorted and spaced like the guided ones
        gap = cfg.small_span + cfg.span_spacing
        starts = push_forward(np.sort(rng.permutation(valid)[:n]), gap, valid)
        sources = np.full(starts.size, SOURCE_FILL, np.int8)
    fill = rng.permutation(valid)[: n - starts.size]  # may overlap a guided span
    starts = np.concatenate([starts, fill]).astype(np.int64)
    sources = np.concatenate([sources, np.full(fill.size, SOURCE_FILL, np.int8)])
    return starts, sources, False


def _stage2(small: np.ndarray, num_frames: int, cfg, rng) -> tuple[np.ndarray, bool]:
    """Large spans from the stage-1 starts below L_f - span, sorted and spaced; a random
    permutation fills up, a random subset thins out; none at all: first stage-1 start to end."""
    n = _num_spans(num_frames, cfg.large_ratio, cfg.large_span, cfg.large_max_spans)
    valid = num_frames - cfg.large_span
    starts = np.zeros(0, np.int64)
    if n > 0 and valid > 0:
        cands = np.sort(small[small < valid])
        cands = push_forward(cands, cfg.large_span + cfg.span_spacing, valid)
        if cands.size < n:
            starts = np.concatenate([cands, rng.permutation(valid)[: n - cands.size]])
        else:
            starts = rng.permutation(cands)[:n]
    if starts.size == 0:
        return small[:1].astype(np.int64), True
    return starts.astype(np.int64), False


def _as_rngs(generator, batch: int) -> list[np.random.Generator]:
    """One generator for the batch (numpy/torch Generator, int seed) or one per utterance."""
    if isinstance(generator, Sequence) and not isinstance(generator, str | bytes):
        if len(generator) != batch:
            raise ValueError(f"got {len(generator)} mask generators for {batch} utterances")
        return [_as_rng(g) for g in generator]
    return [_as_rng(generator)] * batch


def _as_rng(generator) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, torch.Generator):
        seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
        return np.random.default_rng(int(seed.item()))
    if isinstance(generator, int | np.integer | tuple):
        return np.random.default_rng(generator)
    raise TypeError(
        f"masking needs a numpy/torch Generator, an int seed or one per utterance, "
        f"got {type(generator)}"
    )


def _thresholds(cfg: MaskingConfig, scale: float):
    return (
        (cfg.high_energy_min * scale, cfg.high_energy_max * scale),
        (cfg.low_energy_min * scale, cfg.low_energy_max * scale),
    )


def plan_vesper_masks(
    waveform: Tensor, padding_mask: Tensor | None, cfg: MaskingConfig, generator, num_frames=None
) -> list[UtteranceMaskPlan]:
    """Stage-1 and stage-2 starts of every utterance of the batch (see compute_vesper_masks)."""
    validate_masking_config(cfg)
    rngs = _as_rngs(generator, waveform.size(0))
    guided = str(cfg.strategy) == "emotion"
    if guided:
        energy, real = frame_energy(waveform, padding_mask, cfg.frame_length, cfg.frame_hop)
        energy = energy.cpu().numpy().astype(np.float64)
    else:
        real = frame_count(real_lengths(waveform, padding_mask), cfg.frame_length, cfg.frame_hop)
    if num_frames is not None:
        real = real.clamp(max=num_frames)
    plans, scale = [], 1.0
    for b, n in enumerate(real.tolist()):
        if n <= 0:
            empty = np.zeros(0, np.int64)
            plans.append(UtteranceMaskPlan(0, empty, np.zeros(0, np.int8), empty))
            continue
        bands, valid = None, n - cfg.small_span
        if guided and valid > 0:
            peak = float(energy[b, :valid].max())
            # released: their thresholds are rescaled in place, so they compound over the batch
            scale = scale * peak if str(cfg.variant) == "released" else peak
            bands = _thresholds(cfg, scale)
        small, sources, small_to_end = _stage1(
            energy[b] if guided else None, bands, n, cfg, rngs[b]
        )
        large, large_to_end = _stage2(small, n, cfg, rngs[b])
        plans.append(UtteranceMaskPlan(n, small, sources, large, small_to_end, large_to_end))
    return plans


def _paint(row: np.ndarray, starts: np.ndarray, span: int, end: int, to_end: bool) -> None:
    if to_end:
        row[int(starts[0]) : end] = True
        return
    idx = (starts[:, None] + np.arange(span)[None, :]).ravel()
    row[idx[idx < end]] = True


def compute_vesper_masks(
    waveform: Tensor,
    padding_mask: Tensor | None,
    cfg: MaskingConfig,
    generator,
    num_frames: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Stage-1 and stage-2 boolean frame masks (B, T), False on padded frames.

    `waveform` (B, samples) is what the model sees (normalised); `padding_mask` is True on padded
    samples; T is `num_frames` if given, else the CNN frame count of the padded batch.
    `generator` drives every random choice: a numpy/torch Generator or int seed for the whole
    batch, or a sequence with one per utterance (seeds may be int tuples), which makes each
    utterance's masks independent of the rest of its batch (except with `variant=released`).
    """
    total = (
        frame_count(waveform.size(1), cfg.frame_length, cfg.frame_hop)
        if num_frames is None
        else num_frames
    )
    plans = plan_vesper_masks(waveform, padding_mask, cfg, generator, total)
    stage1 = np.zeros((len(plans), total), dtype=bool)
    stage2 = np.zeros((len(plans), total), dtype=bool)
    for b, plan in enumerate(plans):
        if plan.num_frames == 0:
            continue
        _paint(stage1[b], plan.small_starts, cfg.small_span, plan.num_frames, plan.small_to_end)
        _paint(stage2[b], plan.large_starts, cfg.large_span, plan.num_frames, plan.large_to_end)
    device = waveform.device
    return torch.from_numpy(stage1).to(device), torch.from_numpy(stage2).to(device)
