"""The downstream SER head of the Vesper paper (docs/method.md section 6), SUPERB style."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class WeightedLayerSum(nn.Module):
    """Softmax-weighted sum of the N+1 layer outputs; the weights start equal (logits 0)."""

    def __init__(self, num_inputs: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_inputs))

    def normalized_weights(self) -> Tensor:
        return F.softmax(self.weights, dim=0)

    def forward(self, layers: list[Tensor]) -> Tensor:
        if len(layers) != self.weights.numel():
            raise ValueError(f"expected {self.weights.numel()} layer outputs, got {len(layers)}")
        weights = self.normalized_weights().to(layers[0].dtype)
        out = weights[0] * layers[0]
        for w, x in zip(weights[1:], layers[1:]):
            out = out + w * x
        return out


def masked_mean(x: Tensor, padding_mask: Tensor | None) -> Tensor:
    """Mean over time of (B, T, D) using only the real frames (padding_mask True = pad)."""
    if padding_mask is None:
        return x.mean(dim=1)
    real = (~padding_mask).unsqueeze(-1).to(x.dtype)
    return (x * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)


class EmotionHead(nn.Module):
    """Weighted layer sum -> Linear(D, hidden) -> mean over real frames -> Linear(hidden, C)."""

    def __init__(
        self,
        num_layers: int,
        input_dim: int,
        num_classes: int,
        hidden_dim: int = 256,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.layer_sum = WeightedLayerSum(num_layers)
        self.projection = nn.Linear(input_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def forward(self, layer_results: list[Tensor], padding_mask: Tensor | None = None) -> Tensor:
        x = self.projection(self.layer_sum(layer_results))
        pooled = masked_mean(x, padding_mask)
        return self.classifier(self.dropout(pooled))
