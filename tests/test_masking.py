"""Emotion-guided masking: hand-worked energy curves with starts worked out by hand."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, ValidationError

from vesper_fairseq.modules.mask_energy import frame_energy
from vesper_fairseq.modules.masking import (
    SOURCE_FILL,
    SOURCE_HIGH,
    SOURCE_LOW,
    MaskingConfig,
    compute_vesper_masks,
    plan_vesper_masks,
    push_forward,
)

HOP, WIN = 320, 400


def frames_for(num_samples):
    return max(0, 1 + (num_samples - WIN) // HOP)


def samples_for(num_frames):
    return WIN + HOP * (num_frames - 1)


def waveform_from_levels(levels, num_samples=None):
    """A waveform whose frame t has RMS proportional to levels[t]: each frame's level fills only
    the samples no other frame sees ([320t + 80, 320t + 320)) with a +-level square wave."""
    num_samples = samples_for(len(levels)) if num_samples is None else num_samples
    wave = np.zeros(num_samples, np.float32)
    sign = np.where(np.arange(HOP - (WIN - HOP)) % 2 == 0, 1.0, -1.0)
    for t, level in enumerate(levels):
        lo = HOP * t + (WIN - HOP)
        wave[lo : lo + sign.size] = level * sign
    return wave


def curve(num_frames, high=(), low=(), between=(), quiet=0.1, after_valid=3.0):
    """Levels with a peak 1.0 at high[0], 0.6/0.3 on the other high/low frames, 0.495 (between
    the bands) on `between`, `quiet` elsewhere, and a louder frame after the last valid start
    that must not set the reference maximum."""
    levels = np.full(num_frames, quiet)
    levels[list(high)] = 0.6
    levels[high[0]] = 1.0
    levels[list(low)] = 0.3
    levels[list(between)] = 0.495
    levels[num_frames - 2] = after_valid
    return levels


def plan_for(levels, seed=0, **cfg):
    wave = torch.from_numpy(waveform_from_levels(levels))[None]
    cfg = MaskingConfig(**cfg)
    plan = plan_vesper_masks(wave, None, cfg, seed)[0]
    return plan, compute_vesper_masks(wave, None, cfg, seed)


def frames_of(spans):
    return sorted({t for start, length in spans for t in range(start, start + length)})


def test_frame_energy_matches_direct_rms_and_cnn_frame_count():
    torch.manual_seed(0)
    lengths = [16000, 12345, 400, 399, 0]
    wave = torch.randn(len(lengths), 16000)
    pad = torch.arange(16000)[None, :] >= torch.tensor(lengths)[:, None]
    energy, real = frame_energy(wave, pad)
    assert energy.shape == (5, frames_for(16000))
    assert real.tolist() == [frames_for(n) for n in lengths] == [49, 38, 1, 0, 0]
    for b, n in enumerate(lengths):
        for t in range(frames_for(n)):
            ref = wave[b, HOP * t : HOP * t + WIN].double().pow(2).mean().sqrt()
            assert energy[b, t].item() == pytest.approx(ref.item(), rel=1e-5)
        assert (energy[b, frames_for(n) :] == 0).all()


def test_frame_count_equals_sequential_conv_formula():
    for n in [400, 401, 719, 720, 16000, 80000, 80123]:
        length = n
        for k, s in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
            length = (length - k) // s + 1
        assert frames_for(n) == length
        assert frame_energy(torch.zeros(1, n), None)[0].shape[1] == length


def test_levels_helper_sets_per_frame_rms():
    levels = np.array([0.0, 1.0, 0.3, 0.0, 0.7])
    energy, _ = frame_energy(torch.from_numpy(waveform_from_levels(levels, 1680))[None], None)
    np.testing.assert_allclose(energy[0].numpy() / energy[0].max().item(), levels, atol=1e-6)


def test_push_forward_spacing_and_truncation():
    # a start closer than 9 to the previous (moved) one goes to previous + 9
    assert push_forward(np.array([0, 3, 20, 25, 40]), 9, 40).tolist() == [0, 9, 20, 29, 40]
    # the cascade: 5, 6, 7 -> 5, 14, 23; a start pushed past the limit ends the list
    assert push_forward(np.array([5, 6, 7, 30]), 9, 100).tolist() == [5, 14, 23, 32]
    assert push_forward(np.array([5, 6, 7, 30]), 9, 22).tolist() == [5, 14]
    assert push_forward(np.array([0, 3, 20, 25, 40]), 9, 38).tolist() == [0, 9, 20, 29]
    # unsorted (the released code's order): smaller later starts are pushed after the previous
    assert push_forward(np.array([30, 2, 10]), 9, 100).tolist() == [30, 39, 48]
    assert push_forward(np.array([], np.int64), 9, 10).tolist() == []


def test_hand_worked_stage1_with_truncation_and_fill():
    # 100 frames: n = floor(0.64 * 100 / 8) = 8, valid = 92, k_h = 4.
    # high {10, 12, 16, 88} -> sorted, spaced: 10, 19, 28, 88
    # low {80, 84, 86, 91} (k_l = 4) -> 80, 89, 98 > 92 ends the set: 80, 89
    # 6 guided starts < 8: two fills from a permutation of [0, 92)
    levels = curve(100, high=(10, 12, 16, 88), low=(80, 84, 86, 91), between=(50, 51))
    for seed in range(5):
        plan, (stage1, _) = plan_for(levels, seed)
        assert plan.small_starts[:6].tolist() == [10, 19, 28, 88, 80, 89]
        assert (
            plan.small_sources.tolist() == [SOURCE_HIGH] * 4 + [SOURCE_LOW] * 2 + [SOURCE_FILL] * 2
        )
        fills = plan.small_starts[6:]
        assert len(fills) == 2 and (fills >= 0).all() and (fills < 92).all()
        assert len(set(fills.tolist())) == 2
        expected = frames_of([(s, 8) for s in plan.small_starts])
        assert np.flatnonzero(stage1[0].numpy()).tolist() == expected


def test_short_high_band_is_made_up_from_the_low_band():
    # one high frame (40): k_h = 1, k_l = min(7, 8 - 1) = 7: low {0..6} -> 0, 9, ..., 54.
    # The sets are spaced on their own: the high span [40, 48) overlaps [36, 44) and [45, 53),
    # adding only frame 44: 7 * 8 + 1 = 57 masked frames.
    levels = curve(100, high=(40,), low=range(7))
    plan, (stage1, _) = plan_for(levels)
    assert plan.small_starts.tolist() == [40, 0, 9, 18, 27, 36, 45, 54]
    assert (plan.small_sources != SOURCE_FILL).all()
    assert stage1[0].sum() == len(frames_of([(s, 8) for s in plan.small_starts])) == 57


def test_hand_worked_stage2_falls_back_to_the_first_stage1_start():
    # 50 frames: n_s = 4, valid = 42, k_h = 2; n_l = floor(0.64 * 50 / 40) = 0.
    # high {30, 31} -> 30, 39; low {5, 6} -> 5, 14; stage 2 masks [30, 50)
    levels = curve(50, high=(30, 31), low=(5, 6))
    plan, (stage1, stage2) = plan_for(levels)
    assert plan.small_starts.tolist() == [30, 39, 5, 14]
    assert np.flatnonzero(stage1[0].numpy()).tolist() == frames_of(
        [(30, 8), (39, 8), (5, 8), (14, 8)]
    )
    assert np.flatnonzero(stage2[0].numpy()).tolist() == list(range(30, 50))


def test_hand_worked_stage2_derivation():
    # 150 frames: n_s = 12, valid = 142, k_h = 6; n_l = 2, valid2 = 110.
    # high {20..25} -> 20, 29, ..., 65; low {70..75} -> 70, 79, ..., 115: 12 starts, no fill.
    # stage-2 candidates < 110, sorted: 20, 29, ..., 106 -> spaced by 41: 20, 61, 102 (143 > 110
    # ends them) -> a random 2 of {20, 61, 102}
    levels = curve(150, high=range(20, 26), low=range(70, 76))
    seen = set()
    for seed in range(12):
        plan, (_, stage2) = plan_for(levels, seed)
        assert plan.small_starts.tolist() == list(range(20, 66, 9)) + list(range(70, 116, 9))
        large = sorted(plan.large_starts.tolist())
        assert len(large) == 2 and set(large) <= {20, 61, 102}
        seen.update(large)
        assert np.flatnonzero(stage2[0].numpy()).tolist() == frames_of([(s, 40) for s in large])
    assert seen == {20, 61, 102}


def test_stage2_fills_from_a_permutation_when_no_candidate_is_left():
    # 70 frames: n_s = 5, valid = 62, k_h = 2; n_l = floor(0.64 * 70 / 40) = 1, valid2 = 30.
    # high {30, 45}; low {32, 34, 36} -> 32, 41, 50. No stage-1 start is below 30 (the one at
    # valid2 = 30 is not), so the one large span starts at the first entry of a permutation of
    # [0, 30) (as the authors' code does: the first-start-to-the-end rule only applies when
    # n_l = 0).
    levels = curve(70, high=(30, 45), low=(32, 34, 36))
    seen = set()
    for seed in range(20):
        plan, (_, stage2) = plan_for(levels, seed)
        assert plan.small_starts.tolist() == [30, 45, 32, 41, 50]
        assert len(plan.large_starts) == 1 and not plan.large_to_end
        start = int(plan.large_starts[0])
        assert 0 <= start < 30
        seen.add(start)
        assert np.flatnonzero(stage2[0].numpy()).tolist() == list(range(start, start + 40))
    assert len(seen) > 5


def test_quiet_frames_and_frames_after_the_last_valid_start_are_never_guided():
    # 249 frames: n = 19, k_h = 9 of the 10 high frames, k_l = 10 = all low frames; all are
    # >= 10 apart, so nothing moves. The loud frame 247 (not a valid start) is not the reference
    # maximum, else no frame would reach the high band.
    high, low = range(0, 100, 10), range(105, 200, 10)
    levels = curve(249, high=high, low=low, between=range(200, 240))
    for seed in range(10):
        plan, _ = plan_for(levels, seed)
        starts, sources = plan.small_starts, plan.small_sources
        assert (sources[:9] == SOURCE_HIGH).all() and (sources[9:] == SOURCE_LOW).all()
        assert set(starts[:9].tolist()) < set(high) and len(set(starts[:9].tolist())) == 9
        assert starts[9:].tolist() == list(low)


def test_short_utterances():
    cfg = MaskingConfig()
    lengths = [8000, 4000, 1000, 300, 48000]  # 0.5 s, 0.25 s, ..., under one frame
    wave = torch.randn(len(lengths), max(lengths))
    pad = torch.arange(max(lengths))[None, :] >= torch.tensor(lengths)[:, None]
    for seed in range(10):
        stage1, stage2 = compute_vesper_masks(wave, pad, cfg, seed)
        # 0.5 s: 24 frames -> one 8-frame span; n_l = 0: stage 2 from that start to the end
        s1, n1 = np.flatnonzero(stage1[0].numpy()), stage2[0].numpy()
        assert (
            len(s1) == 8
            and s1[0] <= 24 - 8
            and np.flatnonzero(n1).tolist() == list(range(s1[0], 24))
        )
        # 0.25 s: 12 frames -> n_s = 0: one start in [0, 12 - 8) to the end, stage 2 the same
        assert torch.equal(stage1[1], stage2[1]) and stage1[1, 11] and stage1[1].sum() >= 9
        assert stage1[2].sum() >= 1 and stage2[2].sum() >= 1
        assert not stage1[3].any() and not stage2[3].any()  # no real frame
        for mask in (stage1, stage2):
            for b, n in enumerate(lengths):
                assert not mask[b, frames_for(n) :].any()


def test_caps_on_long_utterance():
    wave = torch.randn(2, 20 * 16000)
    for strategy in ("emotion", "random"):
        cfg = MaskingConfig(strategy=strategy)
        for plan in plan_vesper_masks(wave, None, cfg, 3):
            assert len(plan.small_starts) == 20 and len(plan.large_starts) == 4


def test_random_strategy_ignores_energy():
    cfg = MaskingConfig(strategy="random")
    lengths = [80000, 64000, 33000]
    pad = torch.arange(80000)[None, :] >= torch.tensor(lengths)[:, None]
    loud = torch.randn(3, 80000) * 5
    quiet_profile = torch.zeros(3, 80000)
    quiet_profile[:, 1000:2000] = 1.0
    a = compute_vesper_masks(loud, pad, cfg, np.random.default_rng(7))
    b = compute_vesper_masks(quiet_profile, pad, cfg, np.random.default_rng(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    for stage in a:
        for row, n in zip(stage, lengths):
            assert row[: frames_for(n)].any() and not row[frames_for(n) :].any()
    emo = compute_vesper_masks(quiet_profile, pad, MaskingConfig(), np.random.default_rng(7))
    assert not torch.equal(emo[0], b[0])


def test_generators_seeds_and_one_seed_per_utterance():
    cfg = MaskingConfig()
    wave = torch.randn(4, 50000)
    pad = torch.zeros(4, 50000, dtype=torch.bool)
    pad[1, 30000:] = True
    first = compute_vesper_masks(wave, pad, cfg, torch.Generator().manual_seed(11))
    again = compute_vesper_masks(wave, pad, cfg, torch.Generator().manual_seed(11))
    other = compute_vesper_masks(wave, pad, cfg, torch.Generator().manual_seed(12))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    seeds = [(5, 1, i) for i in range(4)]
    batch = compute_vesper_masks(wave, pad, cfg, seeds)
    for i in range(4):  # one seed per utterance: the same masks alone as in the batch
        n = 50000 if i != 1 else 30000
        alone = compute_vesper_masks(wave[i : i + 1, :n], None, cfg, [seeds[i]])
        frames = alone[0].size(1)
        assert torch.equal(batch[0][i, :frames], alone[0][0])
        assert torch.equal(batch[1][i, :frames], alone[1][0])
    with pytest.raises(ValueError, match="3 mask generators for 4 utterances"):
        compute_vesper_masks(wave, pad, cfg, seeds[:3])


def test_num_frames_sets_output_width():
    stage1, stage2 = compute_vesper_masks(torch.randn(2, 16000), None, MaskingConfig(), 0, 60)
    assert stage1.shape == stage2.shape == (2, 60) and stage1.dtype == torch.bool
    assert not stage1[:, 49:].any()


def test_config_is_a_nested_hydra_config_and_bad_values_fail():
    from dataclasses import dataclass, field

    @dataclass
    class Outer:
        masking: MaskingConfig = field(default_factory=MaskingConfig)

    conf = OmegaConf.merge(
        OmegaConf.structured(Outer),
        OmegaConf.from_dotlist(["masking.strategy=random", "masking.variant=released"]),
    )
    assert str(conf.masking.strategy) == "random" and conf.masking.small_span == 8
    assert str(conf.masking.variant) == "released" and str(MaskingConfig().variant) == "fixed"
    plans = plan_vesper_masks(torch.randn(1, 16000), None, conf.masking, 0)
    assert (plans[0].small_sources == SOURCE_FILL).all()
    for bad in ("masking.strategy=loud", "masking.variant=paper"):
        with pytest.raises(ValidationError):
            OmegaConf.merge(OmegaConf.structured(Outer), OmegaConf.from_dotlist([bad]))
    with pytest.raises(ValueError, match="low_energy_min"):
        compute_vesper_masks(torch.randn(1, 16000), None, MaskingConfig(low_energy_min=0.6), 0)
    with pytest.raises(ValueError, match="padding_mask shape"):
        compute_vesper_masks(
            torch.randn(1, 16000), torch.zeros(1, 10, dtype=torch.bool), MaskingConfig(), 0
        )
