"""Per-layer features of long waveforms, in chunks of bounded size.

    enc = load_encoder("vesper4/")               # any format load_encoder reads
    feats = extract_layers(enc, wav)             # [(T, D)] * (N + 1), layer_results order

Chunking. A waveform is normalised once, over the whole file (as the unchunked encoder does),
then cut into chunks of at most `max_frames` output frames, cut at frame boundaries (multiples
of the CNN stride, 320 samples). Each chunk's input also covers `context` frames on each side,
whose outputs are dropped, plus the CNN's receptive-field overhang (80 samples). Hence:

- CNN-level features are exactly the unchunked ones (layer_norm extractor: every CNN frame
  sees only its own 400 samples; the `default` extractor's GroupNorm normalises over the
  chunk's time axis, so there they differ);
- layer 0 (input of layer 1, after the positional conv) is exact too when
  context >= conv_pos // 2 (the default): the positional conv sees +-conv_pos/2 frames;
- Transformer layers attend over the whole input, so for a file longer than one chunk they
  see only max_frames + 2 * context frames and differ from the unchunked outputs; a file
  that fits in one chunk is processed whole and is exact at every layer.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..modules.waveform import standardize_waveform
from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import SAMPLE_RATE

logger = logging.getLogger(__name__)

__all__ = ["Chunk", "chunk_plan", "extract_layers", "iter_chunk_features"]


@dataclass(frozen=True)
class Chunk:
    start: int  # first output frame this chunk provides (file frames)
    end: int  # one past its last output frame
    sample_start: int  # input samples [sample_start, sample_end)
    sample_end: int
    left: int  # context frames before `start` in the chunk's own output

    @property
    def frames(self) -> int:
        return self.end - self.start


def default_context(encoder: WavLMEncoder) -> int:
    return encoder.cfg.conv_pos // 2


def chunk_plan(
    encoder: WavLMEncoder, num_samples: int, max_frames: int | None, context: int | None = None
) -> list[Chunk]:
    """Chunks covering all frames of a waveform of `num_samples` samples (see module doc)."""
    total = encoder.cfg.num_frames(num_samples)
    if max_frames is None or total <= max_frames:
        return [Chunk(0, total, 0, num_samples, 0)] if total > 0 else []
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    context = default_context(encoder) if context is None else context
    stride, field = encoder.cfg.frame_stride, encoder.cfg.receptive_field
    chunks = []
    for start in range(0, total, max_frames):
        end = min(start + max_frames, total)
        first, last = max(0, start - context), min(total, end + context)
        chunks.append(Chunk(start, end, first * stride, (last - 1) * stride + field, start - first))
    return chunks


def _run_batch(encoder, pieces, layers, device) -> list[list[Tensor]]:
    """Encoder outputs (the chunk's own frames, each layer) for a list of (wave, chunk)."""
    lengths = [c.sample_end - c.sample_start for _, c in pieces]
    source = torch.zeros(len(pieces), max(lengths), device=device)
    padding = torch.zeros(source.shape, dtype=torch.bool, device=device)
    for j, (wave, c) in enumerate(pieces):
        source[j, : lengths[j]] = wave[c.sample_start : c.sample_end].to(device)
        padding[j, lengths[j] :] = True
    mask = padding if padding.any() else None
    with torch.no_grad():
        results = encoder(source, mask, max_layer=max(layers), normalize=False).layer_results
    return [
        [results[layer][j, c.left : c.left + c.frames] for layer in layers]
        for j, (_, c) in enumerate(pieces)
    ]


def iter_chunk_features(
    encoder: WavLMEncoder,
    waveforms: Iterable[tuple[object, Tensor]],
    layers: list[int],
    max_frames: int | None = None,
    context: int | None = None,
    batch_size: int = 8,
    device=None,
) -> Iterator[tuple[object, Chunk, list[Tensor], bool]]:
    """For (key, 1-D waveform) pairs, yield (key, chunk, [(frames, D) per layer], is_last)
    in input order, batching chunks across files; memory holds one batch of chunks."""
    bad = [layer for layer in layers if not 0 <= layer <= encoder.num_layers]
    if bad or not layers:
        raise ValueError(f"layers {layers} must be in [0, {encoder.num_layers}] (N+1 outputs)")
    device = device or next(encoder.parameters()).device
    queue = []  # (key, wave, chunk, is_last)
    for key, wave in waveforms:
        wave = torch.as_tensor(wave, dtype=torch.float32)
        if wave.dim() != 1:
            raise ValueError(f"{key}: expected a 1-D waveform, got shape {tuple(wave.shape)}")
        if encoder.cfg.normalize:  # whole-file statistics, the same function as every path
            wave = standardize_waveform(wave[None])[0]
        plan = chunk_plan(encoder, len(wave), max_frames, context)
        queue += [(key, wave, c, i == len(plan) - 1) for i, c in enumerate(plan)]
        if not plan:
            yield key, Chunk(0, 0, 0, len(wave), 0), [], True
        while len(queue) >= batch_size:
            yield from _flush(encoder, queue[:batch_size], layers, device)
            del queue[:batch_size]
    while queue:
        yield from _flush(encoder, queue[:batch_size], layers, device)
        del queue[:batch_size]


def _flush(encoder, items, layers, device):
    outputs = _run_batch(encoder, [(wave, c) for _, wave, c, _ in items], layers, device)
    for (key, _, chunk, last), out in zip(items, outputs):
        yield key, chunk, out, last


def extract_layers(
    encoder: WavLMEncoder,
    wav,
    layers: list[int] | None = None,
    max_chunk: float | None = None,
    context: int | None = None,
    batch_size: int = 8,
    sample_rate: int = SAMPLE_RATE,
) -> list[Tensor]:
    """Per-layer features [(T, D)] of one 16 kHz waveform (1-D array or tensor), float32 on
    the CPU; `layers` index layer_results (0 = input of layer 1, l = output of layer l; default
    all N+1); `max_chunk` seconds bounds the memory of long files (see the module doc)."""
    layers = list(range(encoder.num_layers + 1)) if layers is None else list(layers)
    stride = encoder.cfg.frame_stride
    max_frames = None if max_chunk is None else max(1, int(max_chunk * sample_rate) // stride)
    wave = wav.float() if isinstance(wav, Tensor) else torch.from_numpy(np.asarray(wav, np.float32))
    total = encoder.cfg.num_frames(len(wave))
    feats = [torch.zeros(total, encoder.embed_dim) for _ in layers]
    for _, chunk, out, _ in iter_chunk_features(
        encoder, [(0, wave)], layers, max_frames, context, batch_size
    ):
        for dest, piece in zip(feats, out):
            dest[chunk.start : chunk.end] = piece.float().cpu()
    return feats
