"""Time Vesper's mask computation on a batch of 32 five-second clips (prints ms per batch)."""

import argparse
import time

import numpy as np
import torch

from vesper_fairseq.modules.masking import MaskingConfig, compute_vesper_masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1 as in data workers)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    num_samples = int(args.seconds * 16000)
    wave = torch.randn(args.batch, num_samples) * torch.rand(args.batch, 1, 1).squeeze(-1)
    wave = (
        wave
        * torch.rand(args.batch, num_samples // 320 + 1).repeat_interleave(320, 1)[:, :num_samples]
    )
    lengths = torch.randint(num_samples // 2, num_samples + 1, (args.batch,))
    lengths[0] = num_samples
    padding_mask = torch.arange(num_samples)[None, :] >= lengths[:, None]
    for strategy in ("emotion", "random"):
        cfg = MaskingConfig(strategy=strategy)
        rng = np.random.default_rng(0)
        compute_vesper_masks(wave, padding_mask, cfg, rng)
        start = time.perf_counter()
        for _ in range(args.repeats):
            compute_vesper_masks(wave, padding_mask, cfg, rng)
        ms = (time.perf_counter() - start) / args.repeats * 1000
        print(
            f"{strategy:8s} batch={args.batch} seconds={args.seconds} "
            f"threads={args.threads}: {ms:.2f} ms per batch"
        )


if __name__ == "__main__":
    main()
