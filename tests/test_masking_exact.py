"""Masking compared EXACTLY (span starts, their sources and the boolean masks) with the slow
reference of tests/masking_method_reference.py, written from METHOD.md section 3 (its docstring
states the method's reading and the contract of random draws both sides follow)."""

import numpy as np
import pytest
import torch
from masking_method_reference import (
    HOP,
    SPAN1,
    WIN,
    ref_energy,
    ref_num_frames,
    reference_masks,
    reference_plans,
)

from vesper_fairseq.modules.masking import (
    SOURCE_FILL,
    MaskingConfig,
    compute_vesper_masks,
    plan_vesper_masks,
)

CONFIGS = [("emotion", "fixed"), ("emotion", "released"), ("random", "fixed")]


# ----------------------------------------------------------------------------- test signals


def decoupled(levels, tail=0, rng=None):
    """Frame t's energy comes only from samples [320 t + 80, 320 t + 320), which no other frame
    sees, at amplitude levels[t] (a +- square wave): RMS = sqrt(0.6) * levels[t]. `tail` extra
    real samples (< 320) add no frame; they get loud noise that must not matter."""
    frames = len(levels)
    wave = np.zeros(WIN + HOP * (frames - 1) + tail if frames else tail, np.float32)
    sign = np.where(np.arange(HOP - (WIN - HOP)) % 2 == 0, 1.0, -1.0)
    for t, level in enumerate(levels):
        wave[HOP * t + WIN - HOP : HOP * t + HOP] = level * sign
    if tail and rng is not None:
        wave[len(wave) - tail :] = rng.normal(0, 5, tail)
    return wave


def coupled(levels, tail=0, rng=None):
    """Amplitude levels[t] over the whole hop [320 t, 320 t + 320): frames overlap their next
    hop by 80 samples, so energies mix neighbours (as in speech)."""
    frames = len(levels)
    wave = np.zeros(WIN + HOP * (frames - 1) + tail if frames else tail, np.float32)
    for t, level in enumerate(levels):
        noise = rng.normal(0, 1, HOP) if rng is not None else np.ones(HOP)
        wave[HOP * t : HOP * t + HOP] = level * noise[: len(wave) - HOP * t]
    if frames:
        wave[HOP * frames : HOP * frames + WIN - HOP] = levels[-1]
    return wave


def random_levels(frames, rng):
    """Runs of silence, low band, the gap between the bands and high band; sometimes a mostly
    loud or a nearly silent utterance, a loudest frame after the last valid start, ties at 0.5."""
    if frames == 0:
        return np.zeros(0)
    kind = rng.choice(["speech", "speech", "loud", "sparse", "exact"])
    if kind == "exact":  # powers of two: exact ties at 0.5 m in any float precision
        return rng.choice([0.0, 0.125, 0.25, 0.5, 1.0], frames) * 2.0 ** rng.integers(-2, 3)
    if kind == "loud":
        levels = rng.uniform(0.55, 1.0, frames)
    elif kind == "sparse":
        levels = rng.uniform(0.0, 0.15, frames)
        levels[rng.integers(frames, size=rng.integers(1, 4))] = 1.0
    else:
        levels, t = np.zeros(frames), 0
        while t < frames:
            length = int(rng.integers(1, 13))
            band = rng.choice(4, p=[0.3, 0.3, 0.05, 0.35])
            lo, hi = [(0.0, 0.18), (0.21, 0.48), (0.4905, 0.4995), (0.51, 1.0)][band]
            levels[t : t + length] = rng.uniform(lo, hi, min(length, frames - t))
            t += length
    if frames > SPAN1 and rng.random() < 0.3:  # loudest frames where no start may be drawn
        levels[frames - SPAN1 + rng.integers(SPAN1)] = levels.max() * rng.uniform(1.2, 3.0) + 0.1
    return levels * np.exp(rng.uniform(np.log(0.2), np.log(4.0)))


def random_utterance(frames, rng):
    make = decoupled if rng.random() < 0.6 else coupled
    return make(random_levels(frames, rng), int(rng.integers(0, HOP)), rng)


# ----------------------------------------------------------------------------- comparison


def padded(waves, rng):
    """(B, samples) batch; padded samples hold loud noise that must not matter."""
    size = max(len(w) for w in waves) + int(rng.integers(0, 2 * HOP))
    wave = rng.standard_normal((len(waves), size), dtype=np.float32) * 10
    pad = np.ones((len(waves), size), dtype=bool)
    for b, w in enumerate(waves):
        wave[b, : len(w)], pad[b, : len(w)] = w, False
    return torch.from_numpy(wave), torch.from_numpy(pad)


def check_batch(waves, strategy, variant, seeds, rng, energies=None, batch=None):
    """Implementation and reference on one padded batch; `seeds` is a list (one generator per
    utterance) or one int (one generator for the batch). Returns the reference plans."""
    wave, pad = padded(waves, rng) if batch is None else batch
    energies = [ref_energy(w) for w in waves] if energies is None else energies
    cfg = MaskingConfig(strategy=strategy, variant=variant)
    if isinstance(seeds, list):
        ref_rngs = [np.random.default_rng(s) for s in seeds]
    else:
        ref_rngs = [np.random.default_rng(seeds)] * len(waves)
    ref = reference_plans(energies, strategy, variant, ref_rngs)
    ours = plan_vesper_masks(wave, pad, cfg, seeds)
    stage1, stage2 = compute_vesper_masks(wave, pad, cfg, seeds)
    total = ref_num_frames(wave.size(1))
    assert tuple(stage1.shape) == tuple(stage2.shape) == (len(waves), total)
    for b, (r, p) in enumerate(zip(ref, ours)):
        where = f"utterance {b} (L_f={r.frames}, {strategy}/{variant}, seeds {seeds})"
        got = (
            p.num_frames,
            p.small_starts.tolist(),
            p.small_sources.tolist(),
            p.large_starts.tolist(),
            bool(p.small_to_end),
            bool(p.large_to_end),
        )
        want = (r.frames, r.small, r.sources, r.large, r.small_to_end, r.large_to_end)
        assert got == want, f"{where}: plan {got} != reference {want}"
        want1, want2 = reference_masks(r, total)
        assert stage1[b].tolist() == want1, f"{where}: stage-1 mask differs"
        assert stage2[b].tolist() == want2, f"{where}: stage-2 mask differs"
    return ref


def events_of(plans):
    return set().union(*(p.events for p in plans))


def run_lengths(lengths, per_batch, strategy, variant, seed):
    """Random utterances of the given frame counts, shuffled into padded batches."""
    rng = np.random.default_rng(seed)
    lengths = list(rng.permutation(lengths))
    events = set()
    for i in range(0, len(lengths), per_batch):
        frames = [int(f) for f in lengths[i : i + per_batch]]
        waves = [random_utterance(f, rng) for f in frames]
        seeds = [int(s) for s in rng.integers(2**32, size=len(frames))]
        events |= events_of(check_batch(waves, strategy, variant, seeds, rng))
    return events


# ----------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("strategy, variant", CONFIGS)
def test_every_length_up_to_70_frames(strategy, variant):
    """Every L_f in 0..70, 8 utterances each: n_s = 0 (L_f <= 12, incl. L_f <= 8) and n_l = 0
    (L_f < 63) paths, padded batches, one generator per utterance."""
    events = run_lengths(list(range(0, 71)) * 8, 12, strategy, variant, seed=1)
    # L_f 63..70: n_l = 1 and at most one spaced candidate below valid2 <= 30
    assert {"short", "very short", "stage-2 to end", "stage-2 exact"} <= events
    if (strategy, variant) == ("emotion", "fixed"):
        assert {"stage-1 fill", "short high band", "large high band", "truncated"} <= events


@pytest.mark.parametrize("strategy, variant", CONFIGS)
def test_every_length_up_to_300_frames(strategy, variant):
    events = run_lengths(list(range(71, 301)), 10, strategy, variant, seed=2)
    assert {"stage-2 subset", "stage-2 exact", "stage-1 fill"} <= events
    if strategy == "emotion":
        assert {"short high band", "large high band", "truncated", "pushed onto valid"} <= events


@pytest.mark.parametrize("strategy, variant", CONFIGS)
def test_five_second_clips_many_seeds(strategy, variant):
    """8 five-second clips (249 frames, n_s = 19, n_l = 3) in one padded batch, 40 seeds."""
    rng = np.random.default_rng(3)
    waves = [random_utterance(249, rng) for _ in range(8)]
    energies, batch = [ref_energy(w) for w in waves], padded(waves, rng)
    events = set()
    for seed in range(40):
        seeds = [seed * 8 + b for b in range(8)]
        events |= events_of(check_batch(waves, strategy, variant, seeds, rng, energies, batch))
    if strategy == "emotion":
        assert {"pushed onto valid", "truncated", "stage-1 fill", "stage-2 subset"} <= events


@pytest.mark.parametrize("strategy, variant", CONFIGS)
def test_one_generator_for_the_batch(strategy, variant):
    """A single seed drives the whole batch: the utterances consume it in batch order."""
    rng = np.random.default_rng(4)
    for seed in range(6):
        frames = [int(f) for f in rng.integers(0, 260, size=7)]
        waves = [random_utterance(f, rng) for f in frames]
        check_batch(waves, strategy, variant, seed, rng)


def hand_built():
    """(name, levels of a decoupled utterance, event the case is there for)."""
    q = 0.05
    cases = []
    # high band exactly {83, 91}: sorted and pushed, 91 -> 92 = valid, kept (not past valid)
    levels = np.full(100, q)
    levels[[83, 91]] = 1.0
    cases.append(("push onto valid", levels, "pushed onto valid"))
    # three high frames, the third pushed past valid: the set ends there
    levels = np.full(100, q)
    levels[[85, 88, 91]] = 1.0
    cases.append(("push past valid", levels, "truncated"))
    # loudest frames after the last valid start must not set the peak
    levels = np.full(120, 0.3)
    levels[[10, 40, 70]] = 0.7
    levels[115] = 10.0
    cases.append(("peak after valid", levels, "guided"))
    # exact ties at 0.5 m (high band) and 0.25 m (low band); 0.125 m is quiet
    cases.append(("ties", np.resize([1.0, 0.5, 0.25, 0.125, 0.5, 0.0], 150), "guided"))
    # every frame high: the high band is far larger than floor(n / 2)
    cases.append(("all high", np.linspace(0.6, 1.0, 200), "large high band"))
    # one loud frame in silence: high band 1, low band empty, fills make up the rest
    levels = np.full(200, 0.01)
    levels[50] = 1.0
    cases.append(("bands empty", levels, "stage-1 fill"))
    # constant level: every frame is the peak
    cases.append(("constant", np.full(90, 0.7), "large high band"))
    # silence: m = 0, both bands are every frame (0 <= 0 <= 0)
    cases.append(("silent", np.zeros(130), "guided"))
    # L_f = 63 (n_s = 5, n_l = 1, valid2 = 23): guided starts all >= 23 -> no stage-2 candidate
    levels = np.zeros(63)
    levels[[30, 45]] = 1.0
    levels[[24, 33, 42]] = 0.3
    cases.append(("no stage-2 candidate", levels, "stage-2 no candidate"))
    # L_f = 100 (n_s = 8, valid2 = 60): the bands give all 8 starts, all >= 60; the start at
    # 60 is not a stage-2 candidate (below valid2 only), so the fill supplies the stage-2 start
    levels = np.zeros(100)
    levels[[60, 70, 80, 90]] = 1.0
    levels[[61, 71, 81, 91]] = 0.3
    cases.append(("start at valid2", levels, "start at valid2"))
    # the gap between the bands (0.49 m, 0.5 m) is in neither band
    levels = np.resize([1.0, 0.495, 0.4999, 0.0], 100)
    cases.append(("between the bands", levels, "stage-1 fill"))
    return cases


@pytest.mark.parametrize("variant", ["fixed", "released"])
@pytest.mark.parametrize("name, levels, event", hand_built(), ids=[c[0] for c in hand_built()])
def test_hand_built_energy_rows(name, levels, event, variant):
    rng = np.random.default_rng(5)
    wave = decoupled(levels)
    energies, batch = [ref_energy(wave)], padded([wave], rng)
    events = set()
    for seed in range(30):
        plans = check_batch([wave], "emotion", variant, [seed], rng, energies, batch)
        events |= events_of(plans)
    if variant == "fixed":
        assert event in events, f"{name}: the case no longer exercises {event!r}"


def test_released_thresholds_compound_over_the_batch():
    """Peaks above 1: from the third utterance on, the compounded thresholds exceed every frame
    and all starts are fills; peaks below 1: thresholds shrink, frames above 1.0 x product fall
    out of the high band. Both sides must agree on every start."""
    rng = np.random.default_rng(6)
    for gain in (4.0, 0.3):
        frames = (150, 0, 8, 11, 200, 249, 120)
        waves = [decoupled(gain * rng.uniform(0.1, 1.0, f)) for f in frames]
        for seed in range(10):
            seeds = list(range(seed * 7, seed * 7 + 7))
            plans = check_batch(waves, "emotion", "released", seeds, rng)
            assert any(s != SOURCE_FILL for s in plans[0].sources)
            if gain > 1:
                assert all(s == SOURCE_FILL for p in plans[5:] for s in p.sources)
