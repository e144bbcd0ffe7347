"""Building blocks of the WavLM encoder; module names follow the original checkpoint's keys."""

import torch
import torch.nn.functional as F
from torch import nn

from .wavlm_config import WavLMConfig


def exporting() -> bool:
    """Whether the model is being traced or scripted (ONNX export): plain ops only."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU; in place (no new buffer for a large activation) where autograd needs none."""
    if (torch.is_grad_enabled() and x.requires_grad) or exporting():
        return F.gelu(x)
    return torch.ops.aten.gelu_(x)


class GELU(nn.GELU):
    def forward(self, x):
        return gelu(x)


def get_activation(name: str):
    if name == "gelu":
        return GELU()
    if name in ("gelu_accurate", "gelu_fast"):
        return nn.GELU(approximate="tanh")
    if name == "relu":
        return nn.ReLU()
    if name == "linear":
        return nn.Identity()
    raise ValueError(f"unsupported activation {name!r}")


def conv_output_lengths(lengths: torch.Tensor, conv_layers, upto: int | None = None):
    """Frames each conv layer produces from ``lengths`` input samples (padding-free convs)."""
    for _, kernel, stride in conv_layers[:upto]:
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths.clamp(min=0)


class FramePacking:
    """The real frames of a padded (B, T) batch as rows (N, ...): the row-wise parts of a
    Transformer layer (projections, FFN, LayerNorms, residuals) then skip the padding, and
    attention alone sees the padded layout, whose padded rows are zero."""

    def __init__(self, padding_mask: torch.Tensor):
        self.batch, self.length = padding_mask.shape
        self.index = (~padding_mask).flatten().nonzero().squeeze(1)
        self.spans = self._utterance_spans(padding_mask)

    @staticmethod
    def _utterance_spans(padding_mask: torch.Tensor) -> list[tuple[int, int]] | None:
        """(first row, frames) of each utterance, on CPU where every utterance's padding is at
        its end: attention then runs utterance by utterance on the rows, with no padded keys or
        queries. None on GPUs, which want one batched kernel."""
        if padding_mask.device.type != "cpu":
            return None
        lengths = (~padding_mask).sum(1)
        positions = torch.arange(padding_mask.size(1))
        if not torch.equal(padding_mask, positions[None, :] >= lengths[:, None]):
            return None
        sizes = lengths.tolist()
        return [(sum(sizes[:b]), n) for b, n in enumerate(sizes)]

    @staticmethod
    def worthwhile(padding_mask: torch.Tensor | None) -> bool:
        """At least 10% padding, and not while exporting (no data-dependent shapes)."""
        if padding_mask is None or exporting():
            return False
        return bool(padding_mask.float().mean() >= 0.1)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(0, 1).index_select(0, self.index)

    def unpack(self, rows: torch.Tensor) -> torch.Tensor:
        out = rows.new_zeros(self.batch * self.length, *rows.shape[1:])
        return out.index_copy_(0, self.index, rows).view(self.batch, self.length, *rows.shape[1:])


class WeightNormConv1d(nn.Module):
    """Grouped "same" conv over channels-last (B, T, C), weight = g * v / ||v|| (norm over dims
    0, 1), stored as weight_g, weight_v (dim, dim / groups, kernel) as in the original WavLM.

    It runs as a 2-D convolution in channels-last memory (a height-1 image), which oneDNN and
    cuDNN take without transposing the activations.
    """

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        std = (4.0 / (kernel * dim)) ** 0.5
        weight_v = torch.empty(dim, dim // groups, kernel).normal_(0, std)
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(weight_v, dim=(0, 1), keepdim=True))
        self.weight_v = nn.Parameter(weight_v)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        weight = torch._weight_norm(self.weight_v, self.weight_g, 2).unsqueeze(2)
        weight = weight.contiguous(memory_format=torch.channels_last)
        image = x.transpose(1, 2).unsqueeze(2)  # (B, C, 1, T), channels-last in memory
        out = F.conv2d(image, weight, self.bias, padding=(0, self.padding), groups=self.groups)
        return out.squeeze(2).transpose(1, 2)


class SamePad(nn.Module):
    """Drops the extra last frame of an even-kernel "same" conv over (B, T, C)."""

    def __init__(self, kernel: int):
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x):
        return x[:, : -self.remove] if self.remove else x


class WavLMSelfAttention(nn.Module):
    """Multi-head self-attention with the gated relative position bias as an additive mask."""

    def __init__(self, cfg: WavLMConfig, has_relative_attention_bias: bool):
        super().__init__()
        dim, self.num_heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.head_dim = dim // self.num_heads
        self.dropout = cfg.attention_dropout
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, self.num_heads)
        self.gru_rel_pos = cfg.gru_rel_pos
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, self.num_heads, 1, 1))

    def _split(self, x, packing=None):
        """(B, T, D), or packed rows (N, D), -> (B, H, T, D / H)."""
        x = x if packing is None else packing.unpack(x)
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def position_gate(self, x, packing=None):
        """(B, H, T, 1) gate of the relative position bias, from each head's slice of x.

        The original sums grep_linear's 8 outputs in two groups of 4; summing the weight rows
        instead gives the same two numbers with a 2-wide linear map.
        """
        heads = x.unflatten(-1, (self.num_heads, self.head_dim))
        weight = self.grep_linear.weight.view(2, 4, -1).sum(1)
        bias = self.grep_linear.bias.view(2, 4).sum(1)
        gates = torch.sigmoid(F.linear(heads, weight, bias))
        gates = (gates if packing is None else packing.unpack(gates)).transpose(1, 2)
        gate_a, gate_b = gates.chunk(2, dim=-1)
        return gate_a * (gate_b * self.grep_a - 1.0) + 2.0

    def attention_mask(self, x, position_bias, key_padding_bias, packing=None):
        """(B, H, T, T) additive mask: gated position bias plus -inf on padded keys."""
        if position_bias is None:
            return key_padding_bias
        if self.gru_rel_pos:
            gate = self.position_gate(x, packing)
            if key_padding_bias is not None:
                return torch.addcmul(key_padding_bias, gate, position_bias)
            return gate * position_bias
        if key_padding_bias is not None:
            return position_bias + key_padding_bias
        return position_bias

    def forward(self, x, position_bias=None, key_padding_bias=None, packing=None):
        """x: (B, T, D), or the real frames' rows (N, D) of ``packing``'s batch."""
        if packing is not None and packing.spans is not None:
            return self.out_proj(self._utterance_attention(x, position_bias, packing.spans))
        projections = (self.q_proj, self.k_proj, self.v_proj)
        q, k, v = (self._split(proj(x), packing) for proj in projections)
        mask = self.attention_mask(x, position_bias, key_padding_bias, packing)
        if mask is not None:
            mask = mask.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        out = out.transpose(1, 2).flatten(2)
        return self.out_proj(out if packing is None else packing.pack(out))

    def _utterance_attention(self, rows, position_bias, spans) -> torch.Tensor:
        """Attention of each utterance's rows (N, D) over its own frames alone: the top-left
        (n, n) block of the bias is an n-frame sequence's, and no key is padding."""
        projections = (self.q_proj, self.k_proj, self.v_proj)
        q, k, v = (proj(rows).unflatten(-1, (self.num_heads, -1)) for proj in projections)
        dropout = self.dropout if self.training else 0.0
        outs = []
        for start, n in spans:
            qb, kb, vb = (t[start : start + n].transpose(0, 1)[None] for t in (q, k, v))
            bias = None if position_bias is None else position_bias[:, :, :n, :n]
            mask = self.attention_mask(rows[None, start : start + n], bias, None)
            mask = None if mask is None else mask.to(qb.dtype)
            out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, dropout_p=dropout)
            outs.append(out[0].transpose(0, 1).flatten(1))
        return torch.cat(outs)


class WavLMTransformerLayer(nn.Module):
    def __init__(self, cfg: WavLMConfig, has_relative_attention_bias: bool):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.layer_norm_first = cfg.layer_norm_first
        self.self_attn = WavLMSelfAttention(cfg, has_relative_attention_bias)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.activation_dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)
        self.activation = get_activation(cfg.activation_fn)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def _feed_forward(self, x):
        return self.dropout3(self.fc2(self.dropout2(self.activation(self.fc1(x)))))

    def forward(self, x, position_bias=None, key_padding_bias=None, packing=None):
        """x: (B, T, D), or the real frames' rows (N, D) of ``packing``'s batch."""
        attention_args = (position_bias, key_padding_bias, packing)
        if self.layer_norm_first:
            h = self.self_attn(self.self_attn_layer_norm(x), *attention_args)
            x = x + self.dropout1(h)
            return x + self._feed_forward(self.final_layer_norm(x))
        h = self.self_attn(x, *attention_args)
        x = self.self_attn_layer_norm(x + self.dropout1(h))
        return self.final_layer_norm(x + self._feed_forward(x))
