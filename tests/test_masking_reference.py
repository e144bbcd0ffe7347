"""Masking against a slow, straightforward reference written from the method's description
(docs/method.md section 3), compared statistically on speech-like utterances."""

import numpy as np
import pytest
import torch

from vesper_fairseq.modules.masking import (
    SOURCE_FILL,
    MaskingConfig,
    compute_vesper_masks,
    plan_vesper_masks,
)

SR, HOP, WIN = 16000, 320, 400
SEEDS = 200


def speech_like(seconds, rng):
    """Voiced syllables (harmonic, 80-250 ms, loudness over 30 dB) separated by pauses of faint
    noise; returns the normalised waveform and, per sample, whether it is voiced."""
    n = int(seconds * SR)
    wave = rng.normal(0, 1e-3, n)
    voiced = np.zeros(n, bool)
    t = int(rng.uniform(0.05, 0.3) * SR)
    while t < n:
        length = min(int(rng.uniform(0.08, 0.25) * SR), n - t)
        f0, gain = rng.uniform(90, 250), 10 ** rng.uniform(-1.5, 0)
        k = np.arange(length)
        env = np.sin(np.pi * (k + 0.5) / length) ** 0.5
        tone = sum(np.sin(2 * np.pi * h * f0 * k / SR) / h for h in range(1, 6))
        wave[t : t + length] += gain * env * tone
        voiced[t : t + length] = True
        t += length + int(rng.uniform(0.05, 0.5) * SR)
    wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-5)
    return wave.astype(np.float32), voiced


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(2024)
    seconds = [1.5, 6.0, 2.2, 4.8, 3.1, 5.5, 2.7, 4.0]
    clips = [speech_like(s, rng) for s in seconds]
    size = max(len(w) for w, _ in clips)
    wave = torch.zeros(len(clips), size)
    pad = torch.ones(len(clips), size, dtype=torch.bool)
    rms, silent = [], []
    for b, (w, voiced) in enumerate(clips):
        wave[b, : len(w)], pad[b, : len(w)] = torch.from_numpy(w), False
        frames = 1 + (len(w) - WIN) // HOP
        windows = [slice(HOP * t, HOP * t + WIN) for t in range(frames)]
        rms.append(np.array([np.sqrt(np.mean(w[s].astype(np.float64) ** 2)) for s in windows]))
        silent.append(np.array([not voiced[s].any() for s in windows]))
    return wave, pad, rms, silent


def spaced(starts, gap, limit):
    out = []
    for s in starts:
        if out and s - out[-1] < gap:
            s = out[-1] + gap
        if out and s > limit:
            break
        out.append(s)
    return out


def reference(rms_rows, strategy, variant, rng):
    """Stage-1 and stage-2 masked frame sets of every utterance, step by step."""
    masks, product = [], 1.0
    for rms in rms_rows:
        frames = len(rms)
        n, valid = min(int(0.64 * frames / 8), 20), frames - 8
        if strategy == "emotion":
            peak = max(rms[:valid])
            product = product * peak if variant == "released" else peak
            high = [t for t in range(valid) if 0.5 * product <= rms[t] <= 1.0 * product]
            low = [t for t in range(valid) if 0.2 * product <= rms[t] <= 0.49 * product]
            high = list(rng.choice(high, min(len(high), n // 2), replace=False))
            low = list(rng.choice(low, min(len(low), n - len(high)), replace=False))
            if variant == "fixed":
                high, low = sorted(high), sorted(low)
            starts = spaced(high, 9, valid) + spaced(low, 9, valid)
        else:
            starts = spaced(sorted(rng.choice(valid, n, replace=False)), 9, valid)
        starts += list(rng.permutation(valid)[: n - len(starts)])
        small = {t for s in starts for t in range(s, s + 8)}
        n_l, valid2 = min(int(0.64 * frames / 40), 4), frames - 40
        large = set(range(starts[0], frames))
        if n_l > 0:
            cands = spaced(sorted(s for s in starts if s < valid2), 41, valid2)
            if len(cands) < n_l:
                cands += list(rng.permutation(valid2)[: n_l - len(cands)])
            else:
                cands = list(rng.choice(cands, n_l, replace=False))
            large = {t for s in cands for t in range(s, s + 40)}
        masks.append((small, large))
    return masks


def statistics(mask_sets, silent):
    """Per utterance: mean stage-1 and stage-2 masked fraction, share of stage-1 masked frames
    in silence."""
    out = []
    for b, sil in enumerate(silent):
        small = [m[b][0] for m in mask_sets]
        large = [m[b][1] for m in mask_sets]
        in_silence = sum(sum(sil[t] for t in s) for s in small)
        out.append(
            (
                np.mean([len(s) / len(sil) for s in small]),
                np.mean([len(s) / len(sil) for s in large]),
                in_silence / sum(len(s) for s in small),
            )
        )
    return np.array(out)


def implementation(wave, pad, cfg, seeds):
    sets = []
    for seed in seeds:
        stage1, stage2 = compute_vesper_masks(wave, pad, cfg, seed)
        sets.append(
            [
                (set(np.flatnonzero(a).tolist()), set(np.flatnonzero(b).tolist()))
                for a, b in zip(stage1.numpy(), stage2.numpy())
            ]
        )
    return sets


@pytest.mark.parametrize(
    "strategy, variant", [("emotion", "fixed"), ("emotion", "released"), ("random", "fixed")]
)
def test_realised_fractions_match_the_reference(batch, strategy, variant):
    wave, pad, rms, silent = batch
    cfg = MaskingConfig(strategy=strategy, variant=variant)
    ours = statistics(implementation(wave, pad, cfg, range(SEEDS)), silent)
    rng = np.random.default_rng(99)
    ref = statistics([reference(rms, strategy, variant, rng) for _ in range(SEEDS)], silent)
    np.testing.assert_allclose(ours, ref, atol=0.03)
    if strategy == "emotion" and variant == "fixed":
        # guidance masks less silence than uniform starts would
        assert (ours[:, 2] < np.array([s.mean() for s in silent])).all()


def test_released_guides_only_the_first_utterances(batch):
    """Their compounding thresholds exceed every later peak: from the third utterance on, no
    band has a frame and every start is a uniform fill; per-utterance thresholds guide all."""
    wave, pad, rms, _ = batch
    peaks = [r[: len(r) - 8].max() for r in rms]
    assert peaks[0] > 2 and np.prod(peaks[:2]) > 5  # normalised speech: peaks well above 1
    for variant in ("fixed", "released"):
        guided = np.zeros(len(rms))
        for seed in range(20):
            plans = plan_vesper_masks(wave, pad, MaskingConfig(variant=variant), seed)
            guided += [np.mean(p.small_sources != SOURCE_FILL) for p in plans]
        guided /= 20
        if variant == "fixed":
            assert (guided > 0.5).all()
        else:
            assert guided[0] > 0.5 and (guided[2:] == 0).all()
