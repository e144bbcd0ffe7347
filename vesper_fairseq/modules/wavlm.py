"""WavLM encoder (Large: pre-LN; Base/Base+: post-LN) returning raw per-layer outputs."""

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .relative_position import relative_position_bias
from .waveform import standardize_waveform
from .wavlm_cnn import ConvFeatureExtractor
from .wavlm_config import WavLMConfig
from .wavlm_layers import (
    GELU,
    FramePacking,
    SamePad,
    WavLMTransformerLayer,
    WeightNormConv1d,
    conv_output_lengths,
)

logger = logging.getLogger(__name__)


@dataclass
class EncoderOutput:
    layer_results: list[Tensor]  # N+1 (or max_layer+1) tensors (B, T, D)
    padding_mask: Tensor | None  # (B, T) bool, True = padded frame
    features: Tensor | None = None  # (B, T, C) the CNN's output, before layer_norm


class WavLMTransformer(nn.Module):
    """Positional conv, optional encoder LayerNorm and the Transformer layers (key: encoder.*)."""

    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.cfg = cfg
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, cfg.conv_pos, cfg.conv_pos_groups),
            SamePad(cfg.conv_pos),
            GELU(),
        )
        self.layers = nn.ModuleList(
            WavLMTransformerLayer(cfg, cfg.relative_position_embedding and i == 0)
            for i in range(cfg.encoder_layers)
        )
        self.layer_norm = nn.LayerNorm(dim) if cfg.encoder_layer_norm else None
        self.dropout = nn.Dropout(cfg.dropout)

    def position_bias(self, length: int) -> Tensor | None:
        if not self.cfg.relative_position_embedding:
            return None
        table = self.layers[0].self_attn.relative_attention_bias
        return relative_position_bias(table, length, self.cfg.num_buckets, self.cfg.max_distance)

    def forward(self, x, padding_mask, max_layer, frame_masks, mask_emb) -> list[Tensor]:
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x)
        if not self.cfg.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)

        position_bias = self.position_bias(x.size(1))
        key_padding_bias = None
        if padding_mask is not None:
            key_padding_bias = torch.zeros(padding_mask.shape, dtype=x.dtype, device=x.device)
            key_padding_bias = key_padding_bias.masked_fill(padding_mask, float("-inf"))
            key_padding_bias = key_padding_bias[:, None, None, :]

        packing = FramePacking(padding_mask) if FramePacking.worthwhile(padding_mask) else None
        results = [x]
        x = x if packing is None else packing.pack(x)
        for i, layer in enumerate(self.layers[:max_layer]):
            if frame_masks and i in frame_masks:
                masked = frame_masks[i] if packing is None else packing.pack(frame_masks[i])
                x = torch.where(masked.unsqueeze(-1), mask_emb.to(x.dtype), x)
            if not (self.training and self.cfg.encoder_layerdrop > 0) or (
                np.random.random() >= self.cfg.encoder_layerdrop
            ):
                x = layer(x, position_bias, key_padding_bias, packing)
            results.append(x if packing is None else packing.unpack(x))
        return results


class WavLMEncoder(nn.Module):
    """WavLM as a feature encoder; state_dict keys are the original WavLM checkpoint's keys."""

    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        conv_dim = cfg.conv_layers[-1][0]
        self.mask_emb = nn.Parameter(torch.empty(cfg.encoder_embed_dim).uniform_())
        self.feature_extractor = ConvFeatureExtractor(cfg)
        self.layer_norm = nn.LayerNorm(conv_dim)
        self.post_extract_proj = (
            nn.Linear(conv_dim, cfg.encoder_embed_dim)
            if conv_dim != cfg.encoder_embed_dim
            else None
        )
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = WavLMTransformer(cfg)

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layers)

    @property
    def embed_dim(self) -> int:
        return self.cfg.encoder_embed_dim

    def normalize_waveform(self, source: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """`modules.waveform.standardize_waveform`: statistics over real samples only."""
        return standardize_waveform(source, padding_mask)

    def frame_padding_mask(self, padding_mask: Tensor | None, num_frames: int) -> Tensor | None:
        """Sample padding mask (B, L) -> frame padding mask (B, T), True = padded frame."""
        if padding_mask is None:
            return None
        frames = conv_output_lengths((~padding_mask).sum(-1), self.cfg.conv_layers)
        positions = torch.arange(num_frames, device=padding_mask.device)
        return positions[None, :] >= frames[:, None]

    def _check_frame_masks(self, frame_masks, shape):
        for layer, mask in frame_masks.items():
            if not 0 <= layer < self.num_layers:
                raise ValueError(f"frame_masks layer {layer} is not in [0, {self.num_layers})")
            if mask.dtype != torch.bool or tuple(mask.shape) != tuple(shape):
                raise ValueError(
                    f"frame_masks[{layer}] must be a bool tensor of shape {tuple(shape)}, "
                    f"got {mask.dtype} {tuple(mask.shape)}"
                )

    def forward(
        self,
        source: Tensor,
        padding_mask: Tensor | None = None,
        max_layer: int | None = None,
        frame_masks: dict[int, Tensor] | None = None,
        normalize: bool | None = None,
        features: Tensor | None = None,
    ) -> EncoderOutput:
        """`features`: the CNN's output on this very batch (a stored copy), whose computation
        is then skipped; `source` and `padding_mask` still give the frames and their padding."""
        if source.dim() != 2:
            raise ValueError(f"source must be (batch, samples), got shape {tuple(source.shape)}")
        if max_layer is not None and not 0 <= max_layer <= self.num_layers:
            raise ValueError(f"max_layer {max_layer} is not in [0, {self.num_layers}]")
        if padding_mask is not None and padding_mask.shape != source.shape:
            raise ValueError(
                f"padding_mask shape {tuple(padding_mask.shape)} != source shape "
                f"{tuple(source.shape)}"
            )
        if features is None:
            features = self.cnn_features(source, padding_mask, normalize)
        else:
            self._check_features(features, source)
        cnn = features
        features = self.layer_norm(features)
        frame_padding = self.frame_padding_mask(padding_mask, features.size(1))
        x = self.post_extract_proj(features) if self.post_extract_proj is not None else features
        x = self.dropout_input(x)
        if frame_masks:
            self._check_frame_masks(frame_masks, x.shape[:2])
        results = self.encoder(x, frame_padding, max_layer, frame_masks, self.mask_emb)
        return EncoderOutput(layer_results=results, padding_mask=frame_padding, features=cnn)

    def cnn_features(self, source, padding_mask=None, normalize: bool | None = None) -> Tensor:
        """(B, T, C) output of the convolutional feature extractor."""
        normalize = self.cfg.normalize if normalize is None else normalize
        if normalize:
            source = self.normalize_waveform(source, padding_mask)
        lengths = None if padding_mask is None else (~padding_mask).sum(-1)
        return self.feature_extractor(source, lengths)

    def _check_features(self, features: Tensor, source: Tensor) -> None:
        frames = int(conv_output_lengths(torch.tensor(source.size(1)), self.cfg.conv_layers))
        shape = (source.size(0), frames, self.cfg.conv_layers[-1][0])
        if tuple(features.shape) != shape:
            raise ValueError(
                f"features must be the CNN output {shape} of a {tuple(source.shape)} source, "
                f"got {tuple(features.shape)}"
            )

    def layer_results(self, source, padding_mask=None, max_layer=None) -> list[Tensor]:
        return self.forward(source, padding_mask, max_layer=max_layer).layer_results
