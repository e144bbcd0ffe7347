"""WavLM's convolutional feature extractor, computed channels-last.

Each strided convolution is a matrix multiply over strided views of its input (frames are
contiguous rows of C channels, so ``stride`` consecutive frames are ``stride * C`` consecutive
numbers), the per-layer LayerNorm acts on the last dimension without transposes, and
the output is (B, T, C) as the encoder consumes it. Parameters keep the original Conv1d layout
(key ``conv_layers.{i}.0.weight``, shape (out, in, kernel)); ``conv_matrix`` is the one place
that maps it to the (kernel * in, out) matrix the multiply needs.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .wavlm_config import WavLMConfig, cnn_geometry, frame_count
from .wavlm_layers import conv_output_lengths, exporting, gelu


def strided_conv(x: torch.Tensor, weight: torch.Tensor, bias, stride: int) -> torch.Tensor:
    """Conv1d without padding on channels-last (B, T, C_in) -> (B, T', C_out).

    A narrow input (kernel * C_in <= C_out, the waveform) is unfolded into its windows, a copy
    no larger than the output, for one matrix multiply. Otherwise the kernel's taps go in blocks
    of ``stride`` consecutive frames: each block's inputs are contiguous runs of
    ``stride * C_in`` numbers one stride apart, so a strided view holds them all and one batched
    matrix multiply per block does the work (two for kernel 3, stride 2), with no copy.
    """
    if exporting():  # ONNX / TorchScript have no strided views of dynamic size
        return F.conv1d(x.transpose(1, 2), weight, bias, stride=stride).transpose(1, 2)
    x = x.contiguous()
    batch, length, channels = x.shape
    kernel = weight.size(-1)
    frames = (length - kernel) // stride + 1
    if frames < 1:
        raise ValueError(f"input of {length} frames is shorter than the conv kernel ({kernel})")
    matrix = conv_matrix(weight).t()
    if kernel * channels <= weight.size(0):
        windows = x.as_strided(
            (batch, frames, kernel * channels), (length * channels, stride * channels, 1)
        )
        return F.linear(windows.reshape(batch * frames, -1), matrix.t(), bias).view(
            batch, frames, -1
        )
    out = None
    for start in range(0, kernel, stride):
        width = min(stride, kernel - start) * channels
        block = x.as_strided(
            (batch, frames, width),
            (length * channels, stride * channels, 1),
            x.storage_offset() + start * channels,
        )
        taps = matrix[start * channels : start * channels + width].expand(batch, -1, -1)
        if out is None:
            out = torch.bmm(block, taps)
        else:  # in place: no copy of the partial sum (under autocast it already has its dtype)
            out.baddbmm_(block.to(out.dtype), taps.to(out.dtype))
    return out if bias is None else out + bias


def conv_matrix(weight: torch.Tensor) -> torch.Tensor:
    """Conv1d weight (out, in, kernel) -> (out, kernel * in); column t * in + i: tap t, input i."""
    return weight.permute(0, 2, 1).reshape(weight.size(0), -1)


class TransposeLast(nn.Module):
    def forward(self, x):
        return x.transpose(-2, -1)


class Fp32LayerNorm(nn.LayerNorm):
    def forward(self, x):
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float())
        return out.type_as(x)


class ConvFeatureExtractor(nn.Module):
    """Waveform (B, L) -> (B, T, C) features; conv_layers.{i} = (conv, dropout, norm, GELU).

    On CPU the frames are computed a chunk at a time through all the layers (each chunk from its
    own receptive field, so the result is the same): a chunk's activations stay in cache, where
    one pass per layer over a long input would stream hundreds of megabytes through memory.
    """

    # first-layer rows (all utterances together) of one CPU chunk: 16 MB of 512 channels, the
    # fastest of 2k-16k rows on 2 cores for the Base and Large CNNs (benchmarks/bench_encoder.py)
    cpu_chunk_rows = 8192

    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        self.mode = cfg.extractor_mode
        self.layer_specs = cfg.conv_layers
        blocks, in_dim = [], 1
        for i, (dim, kernel, stride) in enumerate(self.layer_specs):
            conv = nn.Conv1d(in_dim, dim, kernel, stride=stride, bias=cfg.conv_bias)
            nn.init.kaiming_normal_(conv.weight)
            if self.mode == "layer_norm":
                norm = nn.Sequential(TransposeLast(), Fp32LayerNorm(dim), TransposeLast())
                blocks.append(nn.Sequential(conv, nn.Dropout(0.0), norm, nn.GELU()))
            elif i == 0:
                norm = nn.GroupNorm(dim, dim, affine=True)
                blocks.append(nn.Sequential(conv, nn.Dropout(0.0), norm, nn.GELU()))
            else:
                blocks.append(nn.Sequential(conv, nn.Dropout(0.0), nn.GELU()))
            in_dim = dim
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, source: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Frames past an utterance's length (``lengths``, real samples) are zero when its
        padding is skipped (see ``_packed``), the CNN's output on the padding otherwise."""
        packed = self._packed(source, lengths)
        if packed is not None:
            return packed
        return self._layers(source, lengths)

    def _packed(self, source: torch.Tensor, lengths) -> torch.Tensor | None:
        """A padded batch's utterances one after another, each from a multiple of the total
        stride, through the CNN as one sequence: every real frame sees exactly its own samples,
        and the padding costs nothing. Not where padding is under 10% of the batch."""
        if lengths is None or exporting():
            return None
        hop = cnn_geometry(self.layer_specs)[1]
        sizes = lengths.tolist()
        slots = [-(-n // hop) * hop for n in sizes]
        if not source.size(1) <= sum(slots) <= 0.9 * source.numel():
            return None  # little padding, or too short to pack (keeps the unpacked errors)
        packed = source.new_zeros(1, sum(slots))
        starts = [sum(slots[:b]) for b in range(len(slots))]
        for b, (start, n) in enumerate(zip(starts, sizes)):
            packed[0, start : start + n] = source[b, :n]
        x = self._layers(packed, None, segments=list(zip(starts, slots, sizes)))[0]
        frames = int(conv_output_lengths(torch.tensor(source.size(1)), self.layer_specs))
        positions = torch.arange(frames, device=x.device)
        index = torch.tensor(starts, device=x.device)[:, None] // hop + positions
        padded = positions >= conv_output_lengths(lengths, self.layer_specs).to(x.device)[:, None]
        out = x[index.clamp(max=x.size(0) - 1)]
        return out.masked_fill(padded.unsqueeze(-1), 0.0)

    def _layers(self, source: torch.Tensor, lengths, segments=None) -> torch.Tensor:
        """``segments``: (start, slot, real samples) of each utterance of a packed sequence."""
        if exporting():
            return self._chunk(source, lengths, 0, source.size(1), None)
        first_rows = None
        if self.mode != "layer_norm":
            first_rows = self._group_normed_first_conv(source, lengths, segments)
        field, hop = cnn_geometry(self.layer_specs)
        frames = int(frame_count(source.size(1), field, hop))
        step = self._chunk_frames(source, hop) or frames
        if frames <= step:
            return self._chunk(source, lengths, 0, source.size(1), first_rows)
        bounds = [(f * hop, (f + step - 1) * hop + field) for f in range(0, frames, step)]
        bounds[-1] = (bounds[-1][0], source.size(1))
        return torch.cat([self._chunk(source, lengths, *b, first_rows) for b in bounds], 1)

    def _chunk_frames(self, source: torch.Tensor, hop: int) -> int | None:
        """Output frames per chunk on CPU (None: the whole input at once, as GPUs want)."""
        if source.device.type != "cpu":
            return None
        rows_per_frame = hop // self.layer_specs[0][2]
        return max(1, self.cpu_chunk_rows // (source.size(0) * rows_per_frame))

    def _chunk(self, source, lengths, start: int, end: int, first_rows) -> torch.Tensor:
        """The frames of samples [start, end) of every utterance, through every layer."""
        x = source[:, start:end].unsqueeze(-1)
        for i, block in enumerate(self.conv_layers):
            conv = block[0]
            if i == 0 and first_rows is not None:
                stride, kernel = conv.stride[0], conv.kernel_size[0]
                x = first_rows(start // stride, (end - start - kernel) // stride + 1)
            else:
                x = strided_conv(x, conv.weight, conv.bias, conv.stride[0])
            if self.mode == "layer_norm":
                x = block[2][1](x)
            elif i == 0 and exporting():
                x = self._group_norm(x, block[2], lengths)
            x = gelu(x)
        return x

    def _group_normed_first_conv(self, source: torch.Tensor, lengths, segments):
        """The Base CNN's first conv and its GroupNorm (per channel, over each utterance's real
        frames) as one matrix multiply: the conv is linear, so each channel's mean and variance
        follow from the mean and covariance of the utterance's waveform windows, and the
        normalisation folds into that utterance's weights and bias. Returns rows(first, count):
        the normalised conv output of those window rows, (B, count, C)."""
        conv = self.conv_layers[0][0]
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        batch, length = source.shape
        frames = (length - kernel) // stride + 1
        if frames < 1:
            raise ValueError(f"input of {length} frames is shorter than the conv kernel ({kernel})")
        source = source.contiguous()
        windows = source.as_strided((batch, frames, kernel), (length, stride, 1))
        if segments is None:
            reals = (
                [frames] * batch
                if lengths is None
                else conv_output_lengths(lengths, [(0, kernel, stride)]).tolist()
            )
            weight, bias = map(
                torch.stack, zip(*(self._fold_norm(windows[b, :n]) for b, n in enumerate(reals)))
            )
            return lambda first, count: torch.baddbmm(
                bias[:, None], windows[:, first : first + count], weight
            )
        pieces = []  # (first row, end row, weight, bias) of each utterance of the packed sequence
        for start, slot, n in segments:
            first, count = start // stride, min(slot // stride, frames - start // stride)
            real = (n - kernel) // stride + 1
            pieces.append(
                (first, first + count, *self._fold_norm(windows[0, first : first + real]))
            )
        return lambda first, count: self._packed_rows(windows[0], pieces, first, first + count)

    @staticmethod
    def _packed_rows(windows, pieces, first: int, end: int) -> torch.Tensor:
        parts = [
            torch.addmm(bias, windows[max(a, first) : min(b, end)], weight)
            for a, b, weight, bias in pieces
            if max(a, first) < min(b, end)
        ]
        return (parts[0] if len(parts) == 1 else torch.cat(parts))[None]

    def _fold_norm(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(kernel, C) weight and (C,) bias of conv + GroupNorm over these (n, kernel) windows."""
        conv, norm = self.conv_layers[0][0], self.conv_layers[0][2]
        w = conv_matrix(conv.weight).double()  # (C, kernel)
        x = windows.double()
        mean = x.mean(0)
        centred = x - mean
        cov = centred.t() @ centred / max(len(x), 1)
        var = ((w @ cov) * w).sum(1)
        scale = torch.rsqrt(var + norm.eps) * norm.weight.double()
        bias = norm.bias.double() - (w @ mean) * scale
        return (w * scale[:, None]).t().to(windows.dtype), bias.to(windows.dtype)

    def _group_norm(self, x, norm: nn.GroupNorm, lengths):
        """Per-channel normalisation over time, over each utterance's real frames only."""
        xf = x.float()
        if lengths is None:
            mean = xf.mean(1, keepdim=True)
            var = xf.var(1, unbiased=False, keepdim=True)
        else:
            frames = conv_output_lengths(lengths, self.layer_specs, upto=1)
            valid = torch.arange(x.size(1), device=x.device)[None, :] < frames[:, None]
            valid = valid.unsqueeze(-1).float()
            count = valid.sum(1, keepdim=True).clamp(min=1)
            mean = (xf * valid).sum(1, keepdim=True) / count
            var = (((xf - mean) * valid) ** 2).sum(1, keepdim=True) / count
        scale = torch.rsqrt(var + norm.eps) * norm.weight.float()
        return torch.addcmul(norm.bias.float() - mean * scale, xf, scale).type_as(x)
