"""Pretraining prediction heads of Vesper (docs/method.md section 4), dropped at export."""

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class PredictionHead(nn.Module):
    """g(z) = W2 GELU(W1 LN(z)), with a LayerNorm that has no affine parameters."""

    def __init__(self, dim_in: int = 1024, dim_hidden: int = 512, dim_out: int = 1024):
        super().__init__()
        self.norm = nn.LayerNorm(dim_in, elementwise_affine=False)
        self.fc1 = nn.Linear(dim_in, dim_hidden)
        self.fc2 = nn.Linear(dim_hidden, dim_out)

    def forward(self, z: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(z))))
