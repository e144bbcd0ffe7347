"""The Vesper student: an N-layer WavLM initialised from a (frozen) WavLM teacher."""

import copy
import logging

import torch

from .wavlm import WavLMEncoder

logger = logging.getLogger(__name__)

STUDENT_INITS = ("uniform_extract", "uniform_average", "custom_extract", "random")


def teacher_layer_map(
    num_teacher_layers: int, num_layers: int, init: str, layers: list[int] | None = None
) -> list[list[int]]:
    """1-based teacher layers that initialise each student layer ([] = random init)."""
    m, n = num_teacher_layers, num_layers
    if init not in STUDENT_INITS:
        raise ValueError(f"student init must be one of {STUDENT_INITS}, got {init!r}")
    if n < 1:
        raise ValueError(f"a student needs at least 1 layer, got {n}")
    if init == "random":
        return [[] for _ in range(n)]
    if init == "custom_extract":
        if layers is None or len(layers) != n:
            raise ValueError(f"custom_extract needs {n} teacher layers, got {layers}")
        if any(not 1 <= layer <= m for layer in layers):
            raise ValueError(f"custom_extract teacher layers must be in 1..{m}, got {layers}")
        return [[int(layer)] for layer in layers]
    if layers is not None:
        raise ValueError(f"teacher layers are only given with custom_extract, not {init}")
    if n > m:
        raise ValueError(f"{init} needs student layers <= teacher layers, got {n} > {m}")
    starts = [i * m // n for i in range(n + 1)]
    if init == "uniform_extract":
        return [[starts[i] + 1] for i in range(n)]
    return [list(range(starts[i] + 1, starts[i + 1] + 1)) for i in range(n)]


def build_student(
    teacher: WavLMEncoder,
    num_layers: int,
    init: str = "uniform_extract",
    layers: list[int] | None = None,
) -> WavLMEncoder:
    """A student on the teacher's device and dtype; everything outside the layers is copied.

    A pre-LN teacher's encoder.layer_norm acts only after its last layer, which Vesper drops, so
    the student has none; a post-LN teacher's (applied before the layers) is copied.
    """
    mapping = teacher_layer_map(teacher.num_layers, num_layers, init, layers)
    cfg = copy.deepcopy(teacher.cfg)
    cfg.encoder_layers = num_layers
    cfg.encoder_layer_norm = not cfg.layer_norm_first
    param = next(teacher.parameters())
    with torch.device(param.device):
        student = WavLMEncoder(cfg).to(param.dtype)

    state = student.state_dict()
    teacher_state = teacher.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            if not key.startswith("encoder.layers."):
                value.copy_(teacher_state[key])
        for index, sources in enumerate(mapping):
            _init_layer(
                student.encoder.layers[index], [teacher.encoder.layers[s - 1] for s in sources]
            )
            logger.info(
                "student layer %d <- %s",
                index + 1,
                f"teacher layers {sources} ({init})" if sources else "random init",
            )
        rel_bias = "self_attn.relative_attention_bias.weight"
        if cfg.relative_position_embedding:
            student.encoder.layers[0].get_parameter(rel_bias).copy_(
                teacher.encoder.layers[0].get_parameter(rel_bias)
            )
            logger.info("student layer 1 relative position bias <- teacher layer 1")
    student.teacher_layer_map = mapping
    return student.train(teacher.training)


def _init_layer(layer, sources) -> None:
    """Copy one teacher layer, or the element-wise mean of several, into a student layer."""
    if not sources:
        return
    target = layer.state_dict()
    states = [s.state_dict() for s in sources]
    for key, value in target.items():
        if key.endswith("relative_attention_bias.weight"):
            continue  # only teacher layer 1 has one; copied separately
        tensors = [s[key] for s in states]
        value.copy_(tensors[0] if len(tensors) == 1 else torch.stack(tensors).mean(0))
