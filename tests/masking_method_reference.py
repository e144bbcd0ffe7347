"""A slow reference of the masking, written from the method's text (tests/test_masking_exact.py
compares it EXACTLY with the implementation): the masking algorithm of the method's
specification, restated in docs/method.md section 3, with the project's documented choices of
docs/method.md sections 3 and 8 (per-utterance thresholds and each band sorted before spacing in
the default `fixed` variant; `released` = the authors' compounding thresholds and unsorted
spacing, where an utterance with no valid start, L_f <= 8, adds no peak to the product; for
n_s = 0 the start is drawn from [0, L_f - 8), or from [0, L_f) when L_f <= 8).

Everything in `reference_plans` comes from that text: frame count and RMS energy, span counts
(computed in integers: floor(0.64 L_f / s) = 64 L_f // (100 s)), the peak over t < valid, the
bands, k_h and k_l, sorting, push-forward spacing and its truncation, the fill, the stage-2
derivation, its fill, subset and fallback, the short-utterance rule and the masks. Reading the
stage-2 text in its sentence order, "no candidate is left" is checked after the fill, so with
n_l > 0 the fill supplies the starts (docs/method.md 3, stage 2, item 4; the authors' code).

Only the ORDER and KIND of random draws is taken from masking.py, so that both sides can consume
the same numpy Generator. That contract, per utterance:

- one `np.random.Generator` per utterance (`np.random.default_rng(seed)` for a list of seeds);
  a single seed or Generator for the batch is one generator consumed by the utterances in batch
  order; nothing is drawn for an utterance without real frames;
- n_s = 0: one `integers(bound)`, nothing else (stage 2 masks the same frames);
- stage 1, emotion: `permutation(|high|)`, then `permutation(|low|)` (candidates listed in
  increasing frame order; the first k_h, resp. k_l, entries of the permutation pick them);
  random strategy: `permutation(valid)`, its first n_s entries;
- stage 1 fill: `permutation(valid)`, drawn always, even when nothing is missing;
- stage 2 (only when n_l > 0): fewer spaced candidates than n_l: `permutation(valid2)`;
  otherwise `permutation(|candidates|)` (candidates in spaced order), whose first n_l entries
  pick the starts, kept in that permuted order.
(`Generator.permutation(array)` equals `array[Generator.permutation(len(array))]`.)
"""

import math
from dataclasses import dataclass, field

import numpy as np

from vesper_fairseq.modules.masking import SOURCE_FILL, SOURCE_HIGH, SOURCE_LOW

WIN, HOP = 400, 320  # RMS window and hop = the CNN's receptive field and stride
SPAN1, SPAN2 = 8, 40
CAP1, CAP2 = 20, 4
HIGH_BAND, LOW_BAND = (0.5, 1.0), (0.2, 0.49)


class Ambiguous(Exception):
    """An energy lies within float32 rounding of a threshold: the test data must avoid it."""


def ref_num_frames(num_samples):
    return 0 if num_samples < WIN else 1 + (num_samples - WIN) // HOP


def ref_energy(samples):
    """RMS over samples [320 t, 320 t + 400) of the real samples, one value per frame."""
    out = []
    for t in range(ref_num_frames(len(samples))):
        window = samples[HOP * t : HOP * t + WIN].astype(np.float64)
        out.append(math.sqrt(float(np.dot(window, window)) / WIN))
    return out


def ref_num_spans(num_frames, span, cap):
    return min(64 * num_frames // (100 * span), cap)  # floor(0.64 * L_f / span), capped


def ref_push_forward(starts, gap, limit):
    """Walking the starts: one less than `gap` after the previous start moves to previous + gap;
    the first one moved beyond `limit` ends the set (it and the rest are dropped)."""
    out = []
    for s in starts:
        if out and s - out[-1] < gap:
            s = out[-1] + gap
            if s > limit:
                break
        out.append(s)
    return out


def in_band(r, peak, band):
    lo, hi = band[0] * peak, band[1] * peak
    for edge in (lo, hi):
        if r != edge and abs(r - edge) <= 1e-6 * edge:
            raise Ambiguous(f"energy {r!r} is within rounding of threshold {edge!r}")
    return lo <= r <= hi


@dataclass
class Plan:
    frames: int
    small: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    large: list = field(default_factory=list)
    small_to_end: bool = False
    large_to_end: bool = False
    events: set = field(default_factory=set)  # which paths of the method this utterance took


def reference_plans(energies, strategy, variant, rngs):
    """Stage-1 and stage-2 starts of each utterance of a batch (energies: its real frames)."""
    plans, product = [], 1.0
    for r, rng in zip(energies, rngs):
        frames = len(r)
        plan = Plan(frames)
        plans.append(plan)
        if frames == 0:
            continue
        valid, n = frames - SPAN1, ref_num_spans(frames, SPAN1, CAP1)
        if strategy == "emotion" and valid > 0:
            peak = max(r[t] for t in range(valid))
            # released: thresholds rescaled in place = fractions x product of peaks so far
            product = product * peak if variant == "released" else peak
        if n == 0:  # very short: one random start, masked to the end, in both stages
            start = int(rng.integers(valid if frames > SPAN1 else frames))
            plan.small, plan.sources, plan.small_to_end = [start], [SOURCE_FILL], True
            plan.large, plan.large_to_end = [start], True
            plan.events.add("short" if frames > SPAN1 else "very short")
            continue
        if strategy == "emotion":
            high = [t for t in range(valid) if in_band(r[t], product, HIGH_BAND)]
            low = [t for t in range(valid) if in_band(r[t], product, LOW_BAND)]
            k_h = min(len(high), n // 2)
            picked_high = [high[i] for i in rng.permutation(len(high))[:k_h]]
            k_l = min(len(low), n - k_h)
            picked_low = [low[i] for i in rng.permutation(len(low))[:k_l]]
            if variant == "fixed":
                picked_high, picked_low = sorted(picked_high), sorted(picked_low)
            high_set = ref_push_forward(picked_high, SPAN1 + 1, valid)
            low_set = ref_push_forward(picked_low, SPAN1 + 1, valid)
            plan.small = high_set + low_set
            plan.sources = [SOURCE_HIGH] * len(high_set) + [SOURCE_LOW] * len(low_set)
            plan.events.add("guided" if high_set else "no high start")
            if k_h < n // 2:
                plan.events.add("short high band")
            if len(high) > n // 2:
                plan.events.add("large high band")
            if len(high_set) + len(low_set) < k_h + k_l:
                plan.events.add("truncated")
            if valid in plan.small:
                plan.events.add("pushed onto valid")
        else:
            drawn = sorted(int(t) for t in rng.permutation(valid)[:n])
            plan.small = ref_push_forward(drawn, SPAN1 + 1, valid)
            plan.sources = [SOURCE_FILL] * len(plan.small)
        fill = rng.permutation(valid)
        missing = n - len(plan.small)
        plan.small += [int(t) for t in fill[:missing]]
        plan.sources += [SOURCE_FILL] * missing
        if missing:
            plan.events.add("stage-1 fill")

        n_l, valid2 = ref_num_spans(frames, SPAN2, CAP2), frames - SPAN2
        large = []
        if valid2 in plan.small:
            plan.events.add("start at valid2")
        if n_l > 0:
            cands = ref_push_forward(sorted(s for s in plan.small if s < valid2), SPAN2 + 1, valid2)
            if len(cands) < n_l:
                large = cands + [int(t) for t in rng.permutation(valid2)[: n_l - len(cands)]]
                plan.events.add("stage-2 fill" if cands else "stage-2 no candidate")
            else:
                large = [cands[i] for i in rng.permutation(len(cands))[:n_l]]
                plan.events.add("stage-2 subset" if len(cands) > n_l else "stage-2 exact")
        if large:
            plan.large = large
        else:  # n_l = 0 (or nothing left): first stage-1 start to the end
            plan.large, plan.large_to_end = plan.small[:1], True
            plan.events.add("stage-2 to end")
    return plans


def reference_masks(plan, total):
    """Each start masks [start, start + span); a to-end start masks [start, L_f)."""
    out = []
    for starts, span, to_end in (
        (plan.small, SPAN1, plan.small_to_end),
        (plan.large, SPAN2, plan.large_to_end),
    ):
        row = [False] * total
        for s in starts[:1] if to_end else starts:
            for t in range(s, plan.frames if to_end else s + span):
                assert t < plan.frames, "a span of the reference leaves the utterance"
                row[t] = True
        out.append(row)
    return out
