"""Building blocks of the WavLM encoder; module names follow the original checkpoint's keys."""

import torch
import torch.nn.functional as F
from torch import nn

from .wavlm_config import WavLMConfig


def get_activation(name: str):
    if name == "gelu":
        return nn.GELU()
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


class TransposeLast(nn.Module):
    def forward(self, x):
        return x.transpose(-2, -1)


class Fp32LayerNorm(nn.LayerNorm):
    def forward(self, x):
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float())
        return out.type_as(x)


class ConvFeatureExtractor(nn.Module):
    """Waveform -> (B, C, T) features; conv_layers.{i} = (conv, dropout, norm, GELU)."""

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
        x = source.unsqueeze(1)
        for i, block in enumerate(self.conv_layers):
            x = block[0](x)
            if self.mode == "default" and i == 0:
                x = self._group_norm(x, block[2], lengths)
                x = block[3](x)
            else:
                x = block[2:](x)
        return x

    def _group_norm(self, x, norm: nn.GroupNorm, lengths):
        """Per-channel normalisation over time, over each utterance's real frames only."""
        if lengths is None:
            out = F.group_norm(x.float(), norm.num_groups, norm.weight.float(), norm.bias.float())
            return out.type_as(x)
        frames = conv_output_lengths(lengths, self.layer_specs, upto=1)
        valid = torch.arange(x.size(-1), device=x.device)[None, :] < frames[:, None]
        valid = valid.unsqueeze(1).float()
        count = valid.sum(-1, keepdim=True).clamp(min=1)
        xf = x.float()
        mean = (xf * valid).sum(-1, keepdim=True) / count
        var = (((xf - mean) * valid) ** 2).sum(-1, keepdim=True) / count
        out = (xf - mean) * torch.rsqrt(var + norm.eps)
        out = out * norm.weight.float()[:, None] + norm.bias.float()[:, None]
        return out.type_as(x)


class WeightNormConv1d(nn.Module):
    """Conv1d with weight = g * v / ||v|| (norm over dims 0, 1), stored as weight_g, weight_v."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        std = (4.0 / (kernel * dim)) ** 0.5
        weight_v = torch.empty(dim, dim // groups, kernel).normal_(0, std)
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(weight_v, dim=(0, 1), keepdim=True))
        self.weight_v = nn.Parameter(weight_v)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        norm = torch.linalg.vector_norm(self.weight_v, dim=(0, 1), keepdim=True)
        weight = self.weight_v * (self.weight_g / norm)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class SamePad(nn.Module):
    def __init__(self, kernel: int):
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x):
        return x[:, :, : -self.remove] if self.remove else x


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

    def _split(self, x):
        """(B, T, k * D) -> (B, k * H, T, D / H)."""
        batch, length, _ = x.shape
        return x.view(batch, length, -1, self.head_dim).transpose(1, 2)

    def attention_mask(self, x, position_bias, key_padding_bias):
        """(B, H, T, T) additive mask: gated position bias plus -inf on padded keys."""
        if position_bias is None:
            return key_padding_bias
        if self.gru_rel_pos:
            batch, length, _ = x.shape
            gates = self.grep_linear(self._split(x)).view(batch, self.num_heads, length, 2, 4)
            gate_a, gate_b = torch.sigmoid(gates.sum(-1)).chunk(2, dim=-1)
            gate = gate_a * (gate_b * self.grep_a - 1.0) + 2.0
            if key_padding_bias is not None:
                return torch.addcmul(key_padding_bias, gate, position_bias)
            return gate * position_bias
        if key_padding_bias is not None:
            return position_bias + key_padding_bias
        return position_bias

    def forward(self, x, position_bias=None, key_padding_bias=None):
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
        bias = torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        q, k, v = self._split(F.linear(x, weight, bias)).chunk(3, dim=1)
        mask = self.attention_mask(x, position_bias, key_padding_bias)
        if mask is not None:
            mask = mask.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(out.transpose(1, 2).flatten(2))


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

    def forward(self, x, position_bias=None, key_padding_bias=None):
        if self.layer_norm_first:
            h = self.self_attn(self.self_attn_layer_norm(x), position_bias, key_padding_bias)
            x = x + self.dropout1(h)
            return x + self._feed_forward(self.final_layer_norm(x))
        h = self.self_attn(x, position_bias, key_padding_bias)
        x = self.self_attn_layer_norm(x + self.dropout1(h))
        return self.final_layer_norm(x + self._feed_forward(x))
