"""Time our WavLM encoder's forward pass against transformers.WavLMModel (same config, weights
and padded batch); prints milliseconds per batch, the speed-up (HF time / our time) and the
achieved fraction of the machine's matrix-multiply rate (the FLOPs of each utterance's real frames
by formula, over a large matmul's measured rate, interleaved with the forwards).

Use ``benchmark_encoder(...)`` for the figures as a dict."""

import argparse
import statistics
import time
import warnings

import torch
from transformers import WavLMConfig as HFWavLMConfig
from transformers import WavLMModel

from vesper_fairseq.formats.hf_names import wavlm_to_hf_config, wavlm_to_hf_key
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import large_wavlm_config, tiny_wavlm_config

SIZES = {
    # Transformer-dominated like WavLM Large (CNN ~1/4 of its FLOPs), but fast on 2 CPU cores
    "small": dict(
        encoder_layers=6,
        encoder_embed_dim=256,
        encoder_ffn_embed_dim=1024,
        encoder_attention_heads=4,
        conv_feature_layers="[(64,10,5)] + [(64,3,2)] * 4 + [(64,2,2)] * 2",
        conv_pos=128,
        conv_pos_groups=16,
    ),
    "base": dict(
        extractor_mode="default",
        layer_norm_first=False,
        normalize=False,
        encoder_layers=12,
        encoder_embed_dim=768,
        encoder_ffn_embed_dim=3072,
        encoder_attention_heads=12,
        conv_feature_layers="[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
        conv_pos=128,
        conv_pos_groups=16,
    ),
}
warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build_pair(size: str, layers: int | None = None):
    """Our encoder and an HF WavLMModel holding the same random weights, both in eval mode."""
    overrides = {} if layers is None else {"encoder_layers": layers}
    if size == "large":
        cfg = large_wavlm_config(**overrides)
    else:
        cfg = tiny_wavlm_config(**{**SIZES[size], **overrides})
    torch.manual_seed(0)
    ours = WavLMEncoder(cfg).eval()
    hf = WavLMModel(HFWavLMConfig(**wavlm_to_hf_config(cfg))).eval()
    hf.load_state_dict({wavlm_to_hf_key(k): v for k, v in ours.state_dict().items()}, strict=True)
    return ours, hf


def forward_flops(cfg, batch: int, samples: int, cnn: bool = True) -> float:
    """Multiply-add FLOPs (x2) of one forward over a (batch, samples) padded batch (without the
    CNN's with ``cnn=False``)."""
    flops, length, in_dim = 0.0, samples, 1
    for dim, kernel, stride in cfg.conv_layers:
        length = (length - kernel) // stride + 1
        flops += 2 * batch * length * kernel * in_dim * dim if cnn else 0
        in_dim = dim
    d, frames = cfg.encoder_embed_dim, batch * length
    flops += 2 * frames * in_dim * d  # post_extract_proj
    flops += 2 * frames * d * (d // cfg.conv_pos_groups) * cfg.conv_pos  # positional conv
    per_layer = 2 * frames * (4 * d * d + 2 * d * cfg.encoder_ffn_embed_dim)
    per_layer += 4 * batch * length * length * d  # scores and weighted sum
    return flops + cfg.encoder_layers * per_layer


def matmul_gflops(device, dtype=torch.float32, n: int = 2048) -> float:
    """The machine's rate on one large square matrix multiply (best of 3)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    return 2 * n**3 / min(_time(lambda: a @ b, device, 3)) * 1000 / 1e9


def _time(fn, device, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return times


def benchmark_encoder(
    size: str = "small",
    device: str = "cpu",
    batch: int = 4,
    seconds: float = 4.0,
    repeats: int = 5,
    layers: int | None = None,
    dtype: str = "float32",
    padded: bool = True,
) -> dict:
    """Median forward time (ms) of both encoders on one batch; returns the figures as a dict."""
    dev = torch.device(device)
    ours, hf = build_pair(size, layers)
    ours, hf = ours.to(dev, DTYPES[dtype]), hf.to(dev, DTYPES[dtype])
    samples = int(seconds * 16000)
    gen = torch.Generator().manual_seed(0)
    source = torch.randn(batch, samples, generator=gen).to(dev, DTYPES[dtype])
    lengths = torch.linspace(samples, samples // 2 if padded else samples, batch).long()
    padding_mask = (torch.arange(samples)[None, :] >= lengths[:, None]).to(dev)
    source = source.masked_fill(padding_mask, 0.0)

    def run_ours():
        ours(source, padding_mask if padded else None, normalize=False)

    def run_hf():
        hf(source, attention_mask=(~padding_mask).long() if padded else None)

    with torch.inference_mode():
        for fn in (run_ours, run_hf):  # warm-up
            fn()
        ours_ms, hf_ms, rates = [], [], []
        for _ in range(repeats):  # interleave so drift hits both alike
            ours_ms += _time(run_ours, dev, 1)
            hf_ms += _time(run_hf, dev, 1)
            rates.append(matmul_gflops(dev, DTYPES[dtype]))
    result = dict(
        benchmark="encoder_forward",
        size=size,
        layers=ours.num_layers,
        device=str(dev),
        dtype=dtype,
        batch=batch,
        seconds=seconds,
        padded=padded,
        threads=torch.get_num_threads(),
        ours_ms=statistics.median(ours_ms),
        hf_ms=statistics.median(hf_ms),
        ours_best_ms=min(ours_ms),
        hf_best_ms=min(hf_ms),
    )
    # best-of-N is the steadier figure on a shared machine
    result["speedup"] = result["hf_best_ms"] / result["ours_best_ms"]
    result["ratio"] = result["ours_best_ms"] / result["hf_best_ms"]
    # the useful work: each utterance's own frames (padding is work only where it is computed)
    result["gflop"] = sum(forward_flops(ours.cfg, 1, int(n)) for n in lengths) / 1e9
    result["matmul_gflops"] = max(rates)
    result["ours_gflops"] = result["gflop"] / result["ours_best_ms"] * 1000
    result["matmul_fraction"] = result["ours_gflops"] / result["matmul_gflops"]
    result["speedup_median"] = result["hf_ms"] / result["ours_ms"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=["small", "base", "large"], default="small")
    parser.add_argument("--layers", type=int, default=None, help="override the layer count")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-padding", action="store_true", help="equal lengths, no masks")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    r = benchmark_encoder(
        args.size,
        args.device,
        args.batch,
        args.seconds,
        args.repeats,
        args.layers,
        args.dtype,
        not args.no_padding,
    )
    print(
        f"encoder forward, {r['size']} ({r['layers']} layers), {r['device']} {r['dtype']}, "
        f"batch {r['batch']} x {r['seconds']} s, padded={r['padded']}, threads={r['threads']}"
    )
    print(f"                    best     median   (of {args.repeats})")
    print(f"  ours         {r['ours_best_ms']:9.2f} {r['ours_ms']:9.2f} ms")
    print(f"  transformers {r['hf_best_ms']:9.2f} {r['hf_ms']:9.2f} ms")
    print(f"  speed-up     {r['speedup']:9.2f} {r['speedup_median']:9.2f} x (transformers / ours)")
    print(
        f"  {r['gflop']:.0f} GFLOP per forward: ours at {r['ours_gflops']:.0f} GFLOP/s, "
        f"{r['matmul_fraction']:.0%} of a large matmul's {r['matmul_gflops']:.0f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
