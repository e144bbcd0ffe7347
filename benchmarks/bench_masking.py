"""Emotion-guided masking on speech-like audio: realised masked fractions and the share of
masked frames in silence for `fixed`, `released` and `random`, and the time per batch.

python benchmarks/bench_masking.py [--seeds 200] [--repeats 20]
"""

import argparse
import time

import numpy as np
import torch

from vesper_fairseq.modules.masking import MaskingConfig, compute_vesper_masks

SR, HOP, WIN = 16000, 320, 400
# The benchmark batch of docs/method.md: 8 padded utterances of 1.5 to 6 s.
BATCH_SECONDS = (1.5, 6.0, 2.2, 4.8, 3.1, 5.5, 2.7, 4.0)
SETTINGS = {
    "fixed": MaskingConfig(),
    "released": MaskingConfig(variant="released"),
    "random": MaskingConfig(strategy="random"),
}


def speech_like(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Voiced syllables (a harmonic tone, 80-250 ms, loudness spread over 30 dB) separated by
    pauses of faint noise, normalised over the clip; also the per-sample voiced flags."""
    n = int(seconds * SR)
    wave, voiced = rng.normal(0.0, 1e-3, n), np.zeros(n, bool)
    t = int(rng.uniform(0.05, 0.3) * SR)
    while t < n:
        length = min(int(rng.uniform(0.08, 0.25) * SR), n - t)
        f0, gain, k = rng.uniform(90, 250), 10 ** rng.uniform(-1.5, 0), np.arange(length)
        tone = sum(np.sin(2 * np.pi * h * f0 * k / SR) / h for h in range(1, 6))
        wave[t : t + length] += gain * np.sin(np.pi * (k + 0.5) / length) ** 0.5 * tone
        voiced[t : t + length] = True
        t += length + int(rng.uniform(0.05, 0.5) * SR)
    wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-5)
    return wave.astype(np.float32), voiced


def speech_like_batch(seconds, seed: int = 0):
    """Padded (B, samples) batch, its padding mask and the (B, T) frames holding no voice."""
    rng = np.random.default_rng(seed)
    clips = [speech_like(s, rng) for s in seconds]
    size = max(len(w) for w, _ in clips)
    frames = 1 + (size - WIN) // HOP
    wave, pad = torch.zeros(len(clips), size), torch.ones(len(clips), size, dtype=torch.bool)
    silent = torch.zeros(len(clips), frames, dtype=torch.bool)
    for b, (w, voiced) in enumerate(clips):
        wave[b, : len(w)], pad[b, : len(w)] = torch.from_numpy(w), False
        for t in range(1 + (len(w) - WIN) // HOP):
            silent[b, t] = not voiced[HOP * t : HOP * t + WIN].any()
    return wave, pad, silent


def realised_fractions(cfg: MaskingConfig, seeds: int) -> dict[str, float]:
    wave, pad, silent = speech_like_batch(BATCH_SECONDS)
    real = torch.zeros_like(silent)
    for b, n in enumerate((~pad).sum(1).tolist()):
        real[b, : 1 + (n - WIN) // HOP] = True
    stage1 = stage2 = in_silence = 0
    for seed in range(seeds):
        s1, s2 = compute_vesper_masks(wave, pad, cfg, seed)
        stage1, stage2 = stage1 + int(s1.sum()), stage2 + int(s2.sum())
        in_silence += int((s1 & silent).sum())
    total = int(real.sum()) * seeds
    return {
        "stage1": stage1 / total,
        "stage2": stage2 / total,
        "silence_share": in_silence / stage1,
        "silent_frames": int((silent & real).sum()) / int(real.sum()),
    }


def time_per_batch(cfg: MaskingConfig, repeats: int, batch: int = 32) -> float:
    """Milliseconds for the masks of `batch` five-second clips, one per-utterance seed each
    (as the collater computes them)."""
    wave, pad, _ = speech_like_batch([5.0] * batch, seed=1)
    seeds = [(1, 1, i) for i in range(batch)]
    compute_vesper_masks(wave, pad, cfg, seeds)
    start = time.perf_counter()
    for _ in range(repeats):
        compute_vesper_masks(wave, pad, cfg, seeds)
    return (time.perf_counter() - start) / repeats * 1000


def benchmark_masking(seeds: int = 200, repeats: int = 20) -> dict[str, dict[str, float]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a data loader worker
    try:
        out = {}
        for name, cfg in SETTINGS.items():
            out[name] = realised_fractions(cfg, seeds)
            out[name]["ms_per_batch32"] = time_per_batch(cfg, repeats)
        return out
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    results = benchmark_masking(args.seeds, args.repeats)
    print(
        f"batch: {len(BATCH_SECONDS)} speech-like utterances {BATCH_SECONDS} s, {args.seeds} seeds"
    )
    for name, r in results.items():
        print(
            f"{name:9s} stage-1 {r['stage1']:.1%}  stage-2 {r['stage2']:.1%}  "
            f"stage-1 frames in silence {r['silence_share']:.1%} "
            f"(silence is {r['silent_frames']:.1%} of frames)  "
            f"{r['ms_per_batch32']:.1f} ms per batch of 32 x 5 s"
        )


if __name__ == "__main__":
    main()
