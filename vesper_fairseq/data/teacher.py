"""The frozen WavLM teacher that provides Vesper's targets online."""

import logging

import torch
from torch import Tensor

from ..formats import load_encoder
from ..modules.wavlm import WavLMEncoder

logger = logging.getLogger(__name__)


def default_target_layers(num_teacher_layers: int) -> list[int]:
    """docs/method.md section 4: the middle (M/2) and the last (M) teacher layer."""
    return [num_teacher_layers // 2, num_teacher_layers]


class FrozenTeacher:
    """A WavLM encoder in eval mode with no gradients, run only up to the deepest layer asked.

    Deliberately not an nn.Module: it is no part of the student's state dict, optimiser or DDP."""

    def __init__(self, encoder: WavLMEncoder):
        self.encoder = encoder.eval().requires_grad_(False)

    @classmethod
    def from_path(cls, path, allow_pickle=False, opt_in="allow_pickle=True") -> "FrozenTeacher":
        encoder = load_encoder(path, allow_pickle=allow_pickle, opt_in=opt_in)
        logger.info(f"teacher {path}: {encoder.num_layers} layers, dim {encoder.embed_dim}")
        return cls(encoder)

    @property
    def cfg(self):
        return self.encoder.cfg

    @property
    def num_layers(self) -> int:
        return self.encoder.num_layers

    def __call__(
        self,
        source: Tensor,
        padding_mask: Tensor | None,
        layers: list[int],
        with_features: bool = False,
    ) -> tuple[dict, Tensor | None]:
        """Raw outputs of teacher `layers` (1-based) on an already normalised batch, zero on
        padded frames, and the frame padding mask; `with_features` adds the CNN's output under
        the key "features"."""
        bad = [layer for layer in layers if not 1 <= layer <= self.num_layers]
        if bad:
            raise ValueError(f"teacher layers {bad} are not in [1, {self.num_layers}]")
        param = next(self.encoder.parameters())
        if param.device != source.device:
            self.encoder.to(source.device)
        # an fp16 / bf16 batch: the teacher computes in that dtype too (autocast: its weights,
        # normalisations and the targets stay float32)
        low = source.dtype in (torch.float16, torch.bfloat16)
        autocast = torch.autocast(source.device.type, dtype=source.dtype, enabled=low)
        with torch.inference_mode(), autocast:
            source = source.to(param.dtype)
            out = self.encoder(source, padding_mask, max_layer=max(layers), normalize=False)
        outputs = {layer: out.layer_results[layer] for layer in layers}
        if with_features:
            outputs["features"] = out.features
        targets = {key: _zero_padding(output, out.padding_mask) for key, output in outputs.items()}
        padding = None if out.padding_mask is None else out.padding_mask.clone()
        return targets, padding

    def features(self, source: Tensor, padding_mask: Tensor | None) -> Tensor:
        """The CNN's output (B, T, C) on an already normalised batch, zero on padded frames."""
        self.encoder.to(source.device)
        with torch.inference_mode():
            features = self.encoder.cnn_features(source, padding_mask, normalize=False)
            frames = self.encoder.frame_padding_mask(padding_mask, features.size(1))
        return _zero_padding(features, frames)


def _zero_padding(output: Tensor, padding_mask: Tensor | None) -> Tensor:
    # a copy made outside inference mode is an ordinary, autograd-usable tensor
    target = output.to(torch.float32, copy=True)
    if padding_mask is not None:
        target[padding_mask.clone()] = 0.0
    return target
