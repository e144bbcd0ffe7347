import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, ValidationError

from vesper_fairseq.modules.masking import (
    SOURCE_FILL,
    SOURCE_HIGH,
    SOURCE_LOW,
    MaskingConfig,
    compute_vesper_masks,
    frame_energy,
    plan_vesper_masks,
)

HOP, WIN = 320, 400


def frames_for(num_samples):
    return max(0, 1 + (num_samples - WIN) // HOP)


def waveform_from_levels(levels, num_samples):
    """A waveform whose frame t has RMS proportional to levels[t]: each frame's level fills only
    the samples no other frame sees ([320t + 80, 320t + 320)) with a +-level square wave."""
    wave = np.zeros(num_samples, np.float32)
    sign = np.where(np.arange(HOP - (WIN - HOP)) % 2 == 0, 1.0, -1.0)
    for t, level in enumerate(levels):
        lo = HOP * t + (WIN - HOP)
        wave[lo : lo + sign.size] = level * sign
    return wave


def band_levels(num_frames, cfg, seed):
    """Levels with isolated non-silent frames every 10 frames (so any drawn set is already spaced
    by >= 9), alternating high band / low band, quiet noise in between (below the low band), and
    a louder frame after the last valid start that must not set the reference maximum."""
    rng = np.random.default_rng(seed)
    levels = np.zeros(num_frames)
    valid = num_frames - cfg.small_span
    spots = np.arange(0, valid, 10)
    high, low = spots[0::2], spots[1::2]
    levels[high] = rng.uniform(0.55, 0.95, high.size)
    levels[high[0]] = 1.0  # the maximum over valid starts
    levels[low] = rng.uniform(0.25, 0.45, low.size)
    levels[spots + 5] = 0.1  # quiet noise: never guided
    levels[num_frames - 2] = 3.0  # not a valid start: must not be the reference
    return levels, set(high.tolist()), set(low.tolist())


def make_batch(lengths_s, level_fn):
    lengths = [int(s * 16000) for s in lengths_s]
    wave = torch.zeros(len(lengths), max(lengths))
    pad = torch.ones(len(lengths), max(lengths), dtype=torch.bool)
    meta = []
    for b, n in enumerate(lengths):
        levels, *rest = level_fn(frames_for(n), b)
        wave[b, :n] = torch.from_numpy(waveform_from_levels(levels, n))
        pad[b, :n] = False
        meta.append((frames_for(n), levels, *rest))
    return wave, pad, meta


def run_starts(row):
    row = np.asarray(row, dtype=np.int8)
    edges = np.diff(np.concatenate([[0], row, [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


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
    np.testing.assert_allclose(energy[0].numpy() / energy[0].max().item(), levels / 1.0, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_utterance_gets_guided_starts_in_its_bands(seed):
    cfg = MaskingConfig()
    wave, pad, meta = make_batch(
        [5.0, 4.0, 3.3, 5.0, 2.1, 4.6], lambda n, b: band_levels(n, cfg, b)
    )
    plans = plan_vesper_masks(wave, pad, cfg, np.random.default_rng(seed))
    stage1, stage2 = compute_vesper_masks(wave, pad, cfg, np.random.default_rng(seed))
    for b, (plan, (num_frames, levels, high, low)) in enumerate(zip(plans, meta)):
        n_small = min(int(0.64 * num_frames / 8), 20)
        n_large = min(int(0.64 * num_frames / 40), 4)
        if num_frames == 249:
            assert (n_small, n_large) == (19, 3)
        assert plan.num_frames == num_frames
        assert len(plan.small_starts) == n_small
        assert (plan.small_sources != SOURCE_FILL).all(), f"utterance {b} needed a fill"
        starts = plan.small_starts
        chosen_high = set(starts[plan.small_sources == SOURCE_HIGH].tolist())
        chosen_low = set(starts[plan.small_sources == SOURCE_LOW].tolist())
        assert len(chosen_high) == n_small // 2 and chosen_high <= high
        assert len(chosen_low) == n_small - n_small // 2 and chosen_low <= low
        peak = levels[: num_frames - 8].max()
        assert all(0.5 * peak <= levels[s] <= peak for s in chosen_high)
        assert all(0.2 * peak <= levels[s] <= 0.49 * peak for s in chosen_low)
        assert (levels[starts] >= 0.2 * peak).all()  # silence and quiet noise never chosen
        # the boolean mask: runs of 8 at exactly these starts, >= 1 free frame between them
        run_s, run_len = run_starts(stage1[b])
        np.testing.assert_array_equal(run_s, starts)
        assert (run_len == 8).all() and (np.diff(starts) >= 9).all()
        # stage 2 inherits the guidance: its starts are small-span starts below L_f - 40
        run_s, run_len = run_starts(stage2[b])
        assert len(run_s) == n_large and (run_len == 40).all()
        assert set(run_s.tolist()) <= set(starts.tolist())
        assert (run_s < num_frames - 40).all() and (np.diff(run_s) >= 41).all()
        assert not stage1[b, num_frames:].any() and not stage2[b, num_frames:].any()


def test_fill_when_bands_are_too_small():
    """Only two loud frames and silence elsewhere: the guidance can give 2 starts, the rest are
    uniformly random fills that keep the spacing."""
    cfg = MaskingConfig()

    def levels_fn(num_frames, b):
        levels = np.zeros(num_frames)
        levels[[30 + b, 100 - b]] = 1.0
        return (levels,)

    wave, pad, meta = make_batch([5.0, 4.0, 3.0], levels_fn)
    for seed in range(5):
        plans = plan_vesper_masks(wave, pad, cfg, seed)
        stage1, _ = compute_vesper_masks(wave, pad, cfg, seed)
        for b, (plan, (num_frames, _)) in enumerate(zip(plans, meta)):
            n_small = min(int(0.64 * num_frames / 8), 20)
            guided = plan.small_starts[plan.small_sources != SOURCE_FILL]
            assert sorted(guided.tolist()) == [30 + b, 100 - b]
            assert len(plan.small_starts) == n_small
            assert (plan.small_starts < num_frames - 8).all()
            assert (np.diff(plan.small_starts) >= 9).all()
            assert stage1[b].sum() == 8 * n_small


def test_caps_on_long_utterance():
    cfg = MaskingConfig()
    wave = torch.randn(2, 20 * 16000)
    for strategy in ("emotion", "random"):
        cfg.strategy = strategy
        stage1, stage2 = compute_vesper_masks(wave, None, cfg, 3)
        for b in range(2):
            s1, l1 = run_starts(stage1[b])
            s2, l2 = run_starts(stage2[b])
            assert len(s1) == 20 and (l1 == 8).all()
            assert len(s2) == 4 and (l2 == 40).all()


def test_short_utterances():
    cfg = MaskingConfig()
    lengths = [8000, 4000, 1000, 300, 48000]  # 0.5 s, 0.25 s, ..., under one frame
    wave = torch.randn(len(lengths), max(lengths))
    pad = torch.arange(max(lengths))[None, :] >= torch.tensor(lengths)[:, None]
    for seed in range(10):
        stage1, stage2 = compute_vesper_masks(wave, pad, cfg, seed)
        # 0.5 s: 24 frames -> one 8-frame span, stage 2 masks from a random start to the end
        s, n = run_starts(stage1[0])
        assert len(s) == 1 and n[0] == 8 and s[0] < 24 - 8
        s, n = run_starts(stage2[0])
        assert len(s) == 1 and s[0] + n[0] == 24
        # 0.25 s: 12 frames -> n_s = 0: both stages mask one random start to the end
        for mask in (stage1[1], stage2[1]):
            s, n = run_starts(mask)
            assert len(s) == 1 and s[0] + n[0] == 12
        assert stage1[2].sum() >= 1 and stage2[2].sum() >= 1
        assert not stage1[3].any() and not stage2[3].any()  # no real frame
        for mask in (stage1, stage2):
            for b, n in enumerate(lengths):
                assert not mask[b, frames_for(n) :].any()


def test_silent_utterance_falls_back_to_random_starts():
    cfg = MaskingConfig()
    plans = plan_vesper_masks(torch.zeros(1, 80000), None, cfg, 0)
    assert len(plans[0].small_starts) == 19 and (plans[0].small_sources == SOURCE_FILL).all()


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
    for stage, span in zip(a, (8, 40)):
        for row, n in zip(stage, lengths):
            s, lens = run_starts(row)
            assert (lens == span).all() and (np.diff(s) >= span + 1).all()
            assert not row[frames_for(n) :].any()
    emo = compute_vesper_masks(quiet_profile, pad, MaskingConfig(), np.random.default_rng(7))
    assert not torch.equal(emo[0], b[0])


def test_same_seed_same_masks_and_generator_types():
    cfg = MaskingConfig()
    wave = torch.randn(4, 50000)
    pad = torch.zeros(4, 50000, dtype=torch.bool)
    pad[1, 30000:] = True
    first = compute_vesper_masks(wave, pad, cfg, torch.Generator().manual_seed(11))
    again = compute_vesper_masks(wave, pad, cfg, torch.Generator().manual_seed(11))
    other = compute_vesper_masks(wave, pad, cfg, torch.Generator().manual_seed(12))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert torch.equal(
        compute_vesper_masks(wave, pad, cfg, np.random.default_rng(5))[0],
        compute_vesper_masks(wave, pad, cfg, np.random.default_rng(5))[0],
    )


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
        OmegaConf.structured(Outer), OmegaConf.from_dotlist(["masking.strategy=random"])
    )
    assert str(conf.masking.strategy) == "random" and conf.masking.small_span == 8
    plans = plan_vesper_masks(torch.randn(1, 16000), None, conf.masking, 0)
    assert (plans[0].small_sources == SOURCE_FILL).all()
    with pytest.raises(ValidationError):
        OmegaConf.merge(
            OmegaConf.structured(Outer), OmegaConf.from_dotlist(["masking.strategy=loud"])
        )
    with pytest.raises(ValueError, match="low_energy_min"):
        compute_vesper_masks(torch.randn(1, 16000), None, MaskingConfig(low_energy_min=0.6), 0)
    with pytest.raises(ValueError, match="padding_mask shape"):
        compute_vesper_masks(
            torch.randn(1, 16000), torch.zeros(1, 10, dtype=torch.bool), MaskingConfig(), 0
        )
