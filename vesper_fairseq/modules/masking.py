"""Emotion-guided span masking of Vesper (METHOD.md section 3) and its random ablation.

Two fixes relative to the authors' code:
  * the energy thresholds are computed per utterance from that utterance's maximum (their code
    rescales the thresholds in place inside the batch loop, so they compound and only the first
    few utterances of a batch get energy guidance);
  * the drawn starts are sorted before the minimum-gap filter (their code filters unsorted starts,
    which drops the wrong ones and pushes kept starts out of their energy band).
"""

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from torch import Tensor

logger = logging.getLogger(__name__)

MASKING_STRATEGY_CHOICES = ChoiceEnum(["emotion", "random"])

SOURCE_HIGH, SOURCE_LOW, SOURCE_FILL = 0, 1, 2


@dataclass
class MaskingConfig(FairseqDataclass):
    strategy: MASKING_STRATEGY_CHOICES = field(
        default="emotion",
        metadata={"help": "'emotion': energy-guided span starts; 'random': uniform starts"},
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
        metadata={"help": "unmasked frames kept between spans: starts differ by span + this"},
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
        default=0.5, metadata={"help": "floor(n_spans * this) starts come from the high band"}
    )
    frame_length: int = field(
        default=400, metadata={"help": "RMS window in samples (CNN receptive field)"}
    )
    frame_hop: int = field(default=320, metadata={"help": "RMS hop in samples (CNN stride)"})


@dataclass
class UtteranceMaskPlan:
    """Span starts chosen for one utterance; `*_to_end` marks the very-short-utterance rule."""

    num_frames: int
    small_starts: np.ndarray
    small_sources: np.ndarray  # SOURCE_HIGH / SOURCE_LOW / SOURCE_FILL per small start
    large_starts: np.ndarray
    small_to_end: bool = False
    large_to_end: bool = False


def validate_masking_config(cfg: MaskingConfig) -> None:
    if str(cfg.strategy) not in ("emotion", "random"):
        raise ValueError(f"masking strategy must be 'emotion' or 'random', got {cfg.strategy!r}")
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


def _real_lengths(waveform: Tensor, padding_mask: Tensor | None) -> Tensor:
    if waveform.dim() != 2:
        raise ValueError(f"waveform must be (batch, samples), got shape {tuple(waveform.shape)}")
    if padding_mask is None:
        return torch.full((waveform.size(0),), waveform.size(1), dtype=torch.long)
    if padding_mask.shape != waveform.shape:
        raise ValueError(
            f"padding_mask shape {tuple(padding_mask.shape)} != waveform {tuple(waveform.shape)}"
        )
    return (~padding_mask.bool()).sum(dim=1).long().cpu()


def _frame_count(num_samples: Tensor | int, frame_length: int, hop: int):
    if isinstance(num_samples, Tensor):
        return (1 + torch.div(num_samples - frame_length, hop, rounding_mode="floor")).clamp(min=0)
    return max(0, 1 + (num_samples - frame_length) // hop)


def frame_energy(
    waveform: Tensor, padding_mask: Tensor | None, frame_length: int = 400, hop: int = 320
) -> tuple[Tensor, Tensor]:
    """RMS per CNN-aligned frame, (B, T) with zeros past each utterance's real frames, and the
    number of real frames per utterance. Pass the waveform the model sees (normalised)."""
    lengths = _real_lengths(waveform, padding_mask)
    num_real = _frame_count(lengths, frame_length, hop)
    total = _frame_count(waveform.size(1), frame_length, hop)
    if total == 0:
        return waveform.new_zeros(waveform.size(0), 0, dtype=torch.float32), num_real
    # Sum squares over blocks of gcd(frame_length, hop) samples, then frames over blocks.
    block = math.gcd(frame_length, hop)
    num_blocks = waveform.size(1) // block
    squares = waveform[:, : num_blocks * block].float().pow(2)
    blocks = squares.view(waveform.size(0), num_blocks, block).sum(dim=-1)
    energy = blocks.unfold(1, frame_length // block, hop // block).sum(dim=-1)
    energy = energy.div_(frame_length).sqrt_()
    valid = torch.arange(total, device=energy.device)[None, :] < num_real.to(energy.device)[:, None]
    return energy.masked_fill(~valid, 0.0), num_real


def _keep_spaced(sorted_starts: np.ndarray, min_gap: int) -> np.ndarray:
    """Greedy left-to-right filter keeping starts at least `min_gap` after the last kept one."""
    keep = np.zeros(len(sorted_starts), dtype=bool)
    last = None
    for i, s in enumerate(sorted_starts.tolist()):
        if last is None or s - last >= min_gap:
            keep[i] = True
            last = s
    return keep


def _fill_random(
    starts: np.ndarray, need: int, num_valid: int, min_gap: int, rng: np.random.Generator
) -> np.ndarray:
    """`need` uniformly random new starts in [0, num_valid), at least `min_gap` from every other
    start while that is possible, then distinct but overlapping if the line is full.

    Walking a random permutation and keeping the positions still allowed is the same as drawing
    each new start uniformly among the positions still allowed."""
    if need <= 0:
        return np.zeros(0, np.int64)
    reach = min_gap - 1
    allowed = bytearray(b"\x01") * num_valid
    for s in starts.tolist():
        lo, hi = max(0, s - reach), min(num_valid, s + reach + 1)
        allowed[lo:hi] = bytes(hi - lo)
    new = []
    for s in rng.permutation(num_valid).tolist():
        if allowed[s]:
            new.append(s)
            if len(new) == need:
                break
            lo, hi = max(0, s - reach), min(num_valid, s + reach + 1)
            allowed[lo:hi] = bytes(hi - lo)
    if len(new) < need:
        taken = np.zeros(num_valid, dtype=bool)
        taken[starts] = True
        taken[np.asarray(new, dtype=np.int64)] = True
        rest = np.flatnonzero(~taken)
        extra = rng.choice(rest, size=min(need - len(new), rest.size), replace=False)
        new.extend(extra.tolist())
    return np.asarray(new, dtype=np.int64)


def _guided_draws(
    energy: np.ndarray, n: int, cfg: MaskingConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw floor(n * high_fraction) starts from the high band and the rest from the low band,
    with thresholds relative to this utterance's max RMS over its valid start positions."""
    peak = float(energy.max()) if energy.size else 0.0
    if peak <= 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.int8)
    high = np.flatnonzero(
        (energy >= cfg.high_energy_min * peak) & (energy <= cfg.high_energy_max * peak)
    )
    low = np.flatnonzero(
        (energy >= cfg.low_energy_min * peak) & (energy <= cfg.low_energy_max * peak)
    )
    n_high = int(np.floor(n * cfg.high_fraction))
    pick_high = rng.choice(high, size=min(n_high, high.size), replace=False)
    pick_low = rng.choice(low, size=min(n - n_high, low.size), replace=False)
    starts = np.concatenate([pick_high, pick_low]).astype(np.int64)
    sources = np.concatenate(
        [np.full(pick_high.size, SOURCE_HIGH, np.int8), np.full(pick_low.size, SOURCE_LOW, np.int8)]
    )
    starts, first = np.unique(starts, return_index=True)  # sorted; drops overlap-band duplicates
    return starts, sources[first]


def _num_spans(num_frames: int, ratio: float, span: int, cap: int) -> int:
    return min(int(np.floor(ratio * num_frames / span)), cap)


def plan_utterance_masks(
    energy: np.ndarray | None, num_frames: int, cfg: MaskingConfig, rng: np.random.Generator
) -> UtteranceMaskPlan:
    """Choose the stage-1 and stage-2 span starts of one utterance with `num_frames` real frames.
    `energy` (RMS of its real frames) is only read by the "emotion" strategy."""
    empty = np.zeros(0, np.int64)
    if num_frames <= 0:
        return UtteranceMaskPlan(0, empty, np.zeros(0, np.int8), empty)
    n_small = _num_spans(num_frames, cfg.small_ratio, cfg.small_span, cfg.small_max_spans)
    n_large = _num_spans(num_frames, cfg.large_ratio, cfg.large_span, cfg.large_max_spans)
    if num_frames <= cfg.small_span:  # no valid start (only reachable with unusual ratios)
        n_small = 0
    if num_frames <= cfg.large_span:
        n_large = 0

    if n_small <= 0:
        small = np.array([rng.integers(num_frames)], np.int64)
        sources = np.array([SOURCE_FILL], np.int8)
    else:
        valid = num_frames - cfg.small_span  # valid starts: t < L_f - span
        gap = cfg.small_span + cfg.span_spacing
        small, sources = empty, np.zeros(0, np.int8)
        if str(cfg.strategy) == "emotion" and energy is not None:
            small, sources = _guided_draws(np.asarray(energy[:valid]), n_small, cfg, rng)
            keep = _keep_spaced(small, gap)
            small, sources = small[keep], sources[keep]
        fill = _fill_random(small, n_small - small.size, valid, gap, rng)
        small = np.concatenate([small, fill])
        sources = np.concatenate([sources, np.full(fill.size, SOURCE_FILL, np.int8)])
        order = np.argsort(small, kind="stable")
        small, sources = small[order], sources[order]

    if n_large <= 0:
        large = np.array([rng.integers(num_frames)], np.int64)
    else:
        valid = num_frames - cfg.large_span
        gap = cfg.large_span + cfg.span_spacing
        cands = small[small < valid] if n_small > 0 else empty
        large = cands[_keep_spaced(cands, gap)]
        if large.size > n_large:
            large = np.sort(rng.choice(large, size=n_large, replace=False))
        else:
            large = np.sort(
                np.concatenate([large, _fill_random(large, n_large - large.size, valid, gap, rng)])
            )

    return UtteranceMaskPlan(num_frames, small, sources, large, n_small <= 0, n_large <= 0)


def _as_numpy_rng(generator) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, torch.Generator):
        seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
        return np.random.default_rng(int(seed.item()))
    if isinstance(generator, int | np.integer):
        return np.random.default_rng(int(generator))
    raise TypeError(f"masking needs a numpy/torch Generator or an int seed, got {type(generator)}")


def plan_vesper_masks(
    waveform: Tensor,
    padding_mask: Tensor | None,
    cfg: MaskingConfig,
    generator,
    num_frames: int | None = None,
) -> list[UtteranceMaskPlan]:
    validate_masking_config(cfg)
    rng = _as_numpy_rng(generator)
    if str(cfg.strategy) == "emotion":
        energy, real = frame_energy(waveform, padding_mask, cfg.frame_length, cfg.frame_hop)
        energy = energy.cpu().numpy()
    else:
        energy = None
        lengths = _real_lengths(waveform, padding_mask)
        real = _frame_count(lengths, cfg.frame_length, cfg.frame_hop)
    if num_frames is not None:
        real = real.clamp(max=num_frames)
    return [
        plan_utterance_masks(None if energy is None else energy[b], int(n), cfg, rng)
        for b, n in enumerate(real.tolist())
    ]


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
    `generator` (numpy/torch Generator or int seed) drives every random choice.
    """
    total = (
        _frame_count(waveform.size(1), cfg.frame_length, cfg.frame_hop)
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
