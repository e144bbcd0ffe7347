"""Configuration of the WavLM encoder, with field names of the original WavLM cfg dict."""

import ast
import dataclasses
from dataclasses import dataclass, field

import torch

SAMPLE_RATE = 16000  # Hz: the input rate of every WavLM and Vesper encoder
EXTRACTOR_MODES = ("default", "layer_norm")
ACTIVATIONS = ("gelu", "gelu_accurate", "gelu_fast", "relu", "linear")
# Sane bounds, checked before anything is built: a tampered or corrupt config fails at once
# instead of allocating for minutes (WavLM-Large: 24 layers, 1024 wide, 4096 FFN).
INT_BOUNDS = {
    "encoder_layers": (1, 1000),
    "encoder_embed_dim": (1, 65536),
    "encoder_ffn_embed_dim": (1, 262144),
    "encoder_attention_heads": (1, 1024),
    "conv_pos": (1, 4096),
    "conv_pos_groups": (1, 65536),
    "num_buckets": (1, 1 << 20),
    "max_distance": (1, 1 << 24),
}
CONV_BOUNDS = {"layers": 64, "dim": 65536, "kernel": 4096, "stride": 4096, "spec_chars": 10000}
MAX_PARAMETERS = 10**10  # far above any WavLM (Large: 3.2e8)


@dataclass
class WavLMConfig:
    extractor_mode: str = field(
        default="default",
        metadata={"help": "'default': GroupNorm after conv 0 (Base); 'layer_norm': LN per conv"},
    )
    encoder_layers: int = field(default=12, metadata={"help": "number of Transformer layers"})
    encoder_embed_dim: int = field(default=768, metadata={"help": "Transformer width"})
    encoder_ffn_embed_dim: int = field(default=3072, metadata={"help": "FFN inner width"})
    encoder_attention_heads: int = field(default=12, metadata={"help": "attention heads"})
    activation_fn: str = field(default="gelu", metadata={"help": "FFN activation"})
    layer_norm_first: bool = field(
        default=False, metadata={"help": "pre-LN layers (Large); post-LN with encoder LN (Base)"}
    )
    conv_feature_layers: str = field(
        default="[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
        metadata={"help": "CNN layers as a list of (dim, kernel, stride)"},
    )
    conv_bias: bool = field(default=False, metadata={"help": "bias in the CNN convolutions"})
    normalize: bool = field(
        default=False, metadata={"help": "normalise the waveform to zero mean, unit variance"}
    )
    conv_pos: int = field(default=128, metadata={"help": "positional conv kernel size"})
    conv_pos_groups: int = field(default=16, metadata={"help": "positional conv groups"})
    relative_position_embedding: bool = field(
        default=True, metadata={"help": "bucketed relative position bias in attention"}
    )
    num_buckets: int = field(default=320, metadata={"help": "relative position buckets"})
    max_distance: int = field(default=800, metadata={"help": "relative position max distance"})
    gru_rel_pos: bool = field(default=True, metadata={"help": "gate the relative position bias"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in the Transformer"})
    attention_dropout: float = field(default=0.1, metadata={"help": "dropout on attention"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after FFN act"})
    encoder_layerdrop: float = field(default=0.0, metadata={"help": "LayerDrop probability"})
    dropout_input: float = field(default=0.0, metadata={"help": "dropout after the projection"})
    encoder_layer_norm: bool = field(
        default=True,
        metadata={
            "help": "keep encoder.layer_norm; a pre-LN model applies it only after its last "
            "layer, which Vesper drops (students of a pre-LN teacher have none)"
        },
    )

    @classmethod
    def from_dict(cls, d: dict) -> "WavLMConfig":
        """Build from a WavLM cfg dict, ignoring keys that do not shape the network."""
        names = {f.name for f in dataclasses.fields(cls)}
        cfg = cls(**{k: v for k, v in dict(d).items() if k in names})
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def conv_layers(self) -> list[tuple[int, int, int]]:
        return parse_conv_layers(self.conv_feature_layers)

    @property
    def frame_stride(self) -> int:
        """Samples between two CNN frames (320 for WavLM: 20 ms at 16 kHz)."""
        return cnn_geometry(self.conv_layers)[1]

    @property
    def receptive_field(self) -> int:
        """Samples one CNN frame sees (400 for WavLM)."""
        return cnn_geometry(self.conv_layers)[0]

    def num_frames(self, num_samples):
        """CNN frames of `num_samples` samples (int or tensor): 1 + (L - 400) // 320 for WavLM."""
        return frame_count(num_samples, self.receptive_field, self.frame_stride)

    def validate(self) -> None:
        self._check_types_and_bounds()
        if self.extractor_mode not in EXTRACTOR_MODES:
            raise ValueError(
                f"extractor_mode must be one of {EXTRACTOR_MODES}, got {self.extractor_mode!r}"
            )
        if self.activation_fn not in ACTIVATIONS:
            raise ValueError(
                f"activation_fn must be one of {ACTIVATIONS}, got {self.activation_fn!r}"
            )
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ValueError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_attention_heads {self.encoder_attention_heads}"
            )
        if self.encoder_embed_dim % self.conv_pos_groups:
            raise ValueError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"conv_pos_groups {self.conv_pos_groups}"
            )
        if not self.layer_norm_first and not self.encoder_layer_norm:
            raise ValueError("a post-LN model (layer_norm_first=False) needs encoder_layer_norm")
        if self.num_parameters() > MAX_PARAMETERS:
            raise ValueError(
                f"the config describes {self.num_parameters():.3g} parameters (more than "
                f"{MAX_PARAMETERS:.0e}): not a WavLM encoder this project builds"
            )

    def _check_types_and_bounds(self) -> None:
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), f.type
            if kind in (int, "int") and (type(value) is not int):
                raise ValueError(f"{f.name} must be an integer, got {value!r}")
            if kind in (bool, "bool") and type(value) is not bool:
                raise ValueError(f"{f.name} must be true or false, got {value!r}")
            if kind in (str, "str") and not isinstance(value, str):
                raise ValueError(f"{f.name} must be a string, got {value!r}")
            if kind in (float, "float"):
                if type(value) not in (int, float) or not 0.0 <= value <= 1.0:
                    raise ValueError(f"{f.name} must be a probability in [0, 1], got {value!r}")
        for name, (low, high) in INT_BOUNDS.items():
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be in [{low}, {high}], got {getattr(self, name)}")

    def num_parameters(self) -> int:
        """About how many parameters the encoder has (for the sanity bound)."""
        conv, previous = 0, 1
        for dim, kernel, _ in self.conv_layers:  # parses and validates conv_feature_layers
            conv, previous = conv + previous * dim * kernel, dim
        d, ffn = self.encoder_embed_dim, self.encoder_ffn_embed_dim
        layer = 4 * d * d + 2 * d * ffn
        return (
            conv
            + previous * d
            + d * d // self.conv_pos_groups * self.conv_pos
            + (self.encoder_layers * layer)
        )


def cnn_geometry(conv_layers) -> tuple[int, int]:
    """(receptive field, stride) in samples of a stack of (dim, kernel, stride) convolutions:
    frame t sees samples [t * stride, t * stride + receptive field)."""
    field, jump = 1, 1
    for _, kernel, stride in conv_layers:
        field, jump = field + (kernel - 1) * jump, jump * stride
    return field, jump


def frame_count(num_samples, frame_length: int, hop: int):
    """Frames of `frame_length` samples every `hop` samples, 0 if shorter (int or tensor)."""
    if isinstance(num_samples, torch.Tensor):
        return (1 + torch.div(num_samples - frame_length, hop, rounding_mode="floor")).clamp(min=0)
    return max(0, 1 + (num_samples - frame_length) // hop)


def _plain(value):
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise TypeError(f"config value {value!r} is not a plain python type")


def parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """Evaluate a conv_feature_layers string such as "[(512,10,5)] + [(512,3,2)] * 4" safely."""
    if not isinstance(spec, str) or len(spec) > CONV_BOUNDS["spec_chars"]:
        raise ValueError("invalid conv_feature_layers: not a string of at most 10000 characters")
    try:
        value = _eval_node(ast.parse(spec, mode="eval").body)
        layers = [tuple(int(x) for x in layer) for layer in value]
    except (SyntaxError, ValueError, TypeError, RecursionError) as e:
        raise ValueError(f"invalid conv_feature_layers {spec[:200]!r}: {e}") from None
    if not layers or any(len(layer) != 3 or min(layer) < 1 for layer in layers):
        raise ValueError(f"invalid conv_feature_layers {spec!r}: need (dim, kernel, stride) > 0")
    bounds = [CONV_BOUNDS[k] for k in ("dim", "kernel", "stride")]
    if any(x > b for layer in layers for x, b in zip(layer, bounds)):
        raise ValueError(
            f"invalid conv_feature_layers {spec!r}: (dim, kernel, stride) must be at most "
            f"{tuple(bounds)}"
        )
    return layers


def _eval_node(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_eval_node(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
        left, right = _eval_node(node.left), _eval_node(node.right)
        sequence = isinstance(left, list | tuple) or isinstance(right, list | tuple)
        if isinstance(node.op, ast.Mult) and sequence:
            count = right if isinstance(right, int) else left
            if not isinstance(count, int) or count > CONV_BOUNDS["layers"]:
                raise ValueError(f"repeat count {count!r} is more than {CONV_BOUNDS['layers']}")
        result = left + right if isinstance(node.op, ast.Add) else left * right
        if isinstance(result, list | tuple) and len(result) > CONV_BOUNDS["layers"]:
            raise ValueError(f"more than {CONV_BOUNDS['layers']} layers")
        return result
    raise ValueError(f"unsupported expression {ast.dump(node)}")


def format_conv_layers(layers) -> str:
    return "[" + ", ".join(f"({d}, {k}, {s})" for d, k, s in layers) + "]"


def tiny_wavlm_config(**overrides) -> WavLMConfig:
    """A tiny WavLM-Large-shaped config (pre-LN, layer_norm extractor) for tests and demos."""
    base = dict(
        extractor_mode="layer_norm",
        layer_norm_first=True,
        normalize=True,
        encoder_layers=4,
        encoder_embed_dim=64,
        encoder_ffn_embed_dim=128,
        encoder_attention_heads=4,
        conv_feature_layers="[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
        conv_pos=16,
        conv_pos_groups=4,
        num_buckets=320,
        max_distance=800,
    )
    return _validated(base, overrides)


def large_wavlm_config(**overrides) -> WavLMConfig:
    """The published WavLM-Large architecture."""
    base = dict(
        extractor_mode="layer_norm",
        layer_norm_first=True,
        normalize=True,
        encoder_layers=24,
        encoder_embed_dim=1024,
        encoder_ffn_embed_dim=4096,
        encoder_attention_heads=16,
    )
    return _validated(base, overrides)


def _validated(base: dict, overrides: dict) -> WavLMConfig:
    cfg = WavLMConfig(**{**base, **overrides})
    cfg.validate()
    return cfg


# The frame geometry of the WavLM CNN (every published WavLM and so every Vesper student), the
# default wherever frames are counted before an encoder is at hand.
FRAME_STRIDE = WavLMConfig().frame_stride  # 320 samples: 20 ms at 16 kHz
RECEPTIVE_FIELD = WavLMConfig().receptive_field  # 400 samples
