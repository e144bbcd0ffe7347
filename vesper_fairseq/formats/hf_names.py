"""Name mapping between original WavLM checkpoints and transformers' WavLMModel (both ways)."""

import re

from ..modules.wavlm_config import WavLMConfig, format_conv_layers, parse_conv_layers

# (original key template, HF key template, extractor modes the pair applies to)
_ANY = ("default", "layer_norm")
_KEY_PAIRS = [
    ("mask_emb", "masked_spec_embed", _ANY),
    ("feature_extractor.conv_layers.{i}.0.{p}", "feature_extractor.conv_layers.{i}.conv.{p}", _ANY),
    (
        "feature_extractor.conv_layers.{i}.2.1.{p}",
        "feature_extractor.conv_layers.{i}.layer_norm.{p}",
        ("layer_norm",),
    ),
    (
        "feature_extractor.conv_layers.0.2.{p}",
        "feature_extractor.conv_layers.0.layer_norm.{p}",
        ("default",),
    ),
    ("layer_norm.{p}", "feature_projection.layer_norm.{p}", _ANY),
    ("post_extract_proj.{p}", "feature_projection.projection.{p}", _ANY),
    (
        "encoder.pos_conv.0.weight_g",
        "encoder.pos_conv_embed.conv.parametrizations.weight.original0",
        _ANY,
    ),
    (
        "encoder.pos_conv.0.weight_v",
        "encoder.pos_conv_embed.conv.parametrizations.weight.original1",
        _ANY,
    ),
    ("encoder.pos_conv.0.bias", "encoder.pos_conv_embed.conv.bias", _ANY),
    ("encoder.layer_norm.{p}", "encoder.layer_norm.{p}", _ANY),
    (
        "encoder.layers.{i}.self_attn.{proj}_proj.{p}",
        "encoder.layers.{i}.attention.{proj}_proj.{p}",
        _ANY,
    ),
    (
        "encoder.layers.{i}.self_attn.grep_linear.{p}",
        "encoder.layers.{i}.attention.gru_rel_pos_linear.{p}",
        _ANY,
    ),
    ("encoder.layers.{i}.self_attn.grep_a", "encoder.layers.{i}.attention.gru_rel_pos_const", _ANY),
    (
        "encoder.layers.{i}.self_attn.relative_attention_bias.weight",
        "encoder.layers.{i}.attention.rel_attn_embed.weight",
        _ANY,
    ),
    ("encoder.layers.{i}.self_attn_layer_norm.{p}", "encoder.layers.{i}.layer_norm.{p}", _ANY),
    ("encoder.layers.{i}.fc1.{p}", "encoder.layers.{i}.feed_forward.intermediate_dense.{p}", _ANY),
    ("encoder.layers.{i}.fc2.{p}", "encoder.layers.{i}.feed_forward.output_dense.{p}", _ANY),
    ("encoder.layers.{i}.final_layer_norm.{p}", "encoder.layers.{i}.final_layer_norm.{p}", _ANY),
]
# older transformers releases store the positional conv's weight norm as weight_g / weight_v
_HF_POS_CONV = "encoder.pos_conv_embed.conv."
_HF_ALIASES = {
    _HF_POS_CONV + "weight_g": _HF_POS_CONV + "parametrizations.weight.original0",
    _HF_POS_CONV + "weight_v": _HF_POS_CONV + "parametrizations.weight.original1",
}
_FIELDS = {"i": r"(?P<i>\d+)", "p": r"(?P<p>weight|bias)", "proj": r"(?P<proj>[qkv]|out)"}
HF_MODEL_PREFIXES = ("masked_spec_embed", "feature_extractor.", "feature_projection.", "encoder.")


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, group in _FIELDS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), group)
    return re.compile(pattern + "$")


_RULES = [(_compile(o), o, _compile(h), h, modes) for o, h, modes in _KEY_PAIRS]


def _convert(key: str, src: int, extractor_mode: str | None) -> str:
    for rule in _RULES:
        if extractor_mode is not None and extractor_mode not in rule[4]:
            continue
        match = rule[src].match(key)
        if match:
            return rule[3 - src].format(**match.groupdict())
    raise KeyError(key)


def wavlm_to_hf_key(key: str) -> str:
    """Original WavLM state_dict key -> transformers WavLMModel key (KeyError if unknown)."""
    return _convert(key, 0, None)


def hf_to_wavlm_key(key: str, extractor_mode: str = "layer_norm") -> str:
    """transformers WavLMModel key -> original WavLM key (KeyError if unknown).

    HF names conv 0's norm ``layer_norm`` in both extractor modes, hence ``extractor_mode``.
    """
    return _convert(_HF_ALIASES.get(key, key), 2, extractor_mode)


_HF_ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_accurate", "linear": "linear"}
_HF_FIELDS = {  # WavLMConfig field -> HF config field (same value)
    "encoder_layers": "num_hidden_layers",
    "encoder_embed_dim": "hidden_size",
    "encoder_ffn_embed_dim": "intermediate_size",
    "encoder_attention_heads": "num_attention_heads",
    "layer_norm_first": "do_stable_layer_norm",
    "conv_bias": "conv_bias",
    "conv_pos": "num_conv_pos_embeddings",
    "conv_pos_groups": "num_conv_pos_embedding_groups",
    "num_buckets": "num_buckets",
    "max_distance": "max_bucket_distance",
    "dropout": "hidden_dropout",
    "attention_dropout": "attention_dropout",
    "activation_dropout": "activation_dropout",
    "encoder_layerdrop": "layerdrop",
    "dropout_input": "feat_proj_dropout",
}
_HF_DEFAULTS = {  # transformers' WavLMConfig defaults for fields a config.json may omit
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "do_stable_layer_norm": False,
    "conv_bias": False,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "num_buckets": 320,
    "max_bucket_distance": 800,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.1,
    "layerdrop": 0.1,
    "feat_proj_dropout": 0.0,
    "hidden_act": "gelu",
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "layer_norm_eps": 1e-5,
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
}


def hf_config_to_wavlm(config: dict, normalize: bool | None = None) -> WavLMConfig:
    """transformers WavLM config dict -> WavLMConfig (ValueError for what WavLM cannot express).

    ``normalize`` comes from the preprocessor's ``do_normalize``; by default pre-LN models
    (WavLM Large) normalise and post-LN ones (Base, Base+) do not, as the originals do.
    """
    c = {**_HF_DEFAULTS, **config}
    if c.get("model_type", "wavlm") != "wavlm":
        raise ValueError(f"model_type is {c['model_type']!r}, not 'wavlm'")
    if c["feat_extract_activation"] != "gelu" or c.get("add_adapter"):
        raise ValueError("only GELU feature extractors without adapter are supported")
    if not abs(float(c["layer_norm_eps"]) - 1e-5) <= 1e-12:  # NaN included
        raise ValueError(f"layer_norm_eps {c['layer_norm_eps']} != 1e-5 is not supported")
    if c["hidden_act"] not in _HF_ACTIVATIONS:
        raise ValueError(f"hidden_act {c['hidden_act']!r} is not supported")
    modes = {"layer": "layer_norm", "group": "default"}
    if c["feat_extract_norm"] not in modes:
        raise ValueError(f"feat_extract_norm {c['feat_extract_norm']!r} is not supported")
    lengths = {name: len(c[name]) for name in ("conv_dim", "conv_kernel", "conv_stride")}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"conv_dim, conv_kernel and conv_stride differ in length: {lengths}")
    conv = list(zip(c["conv_dim"], c["conv_kernel"], c["conv_stride"], strict=True))
    _check_projection(conv[-1][0], c["hidden_size"])
    fields = {ours: c[theirs] for ours, theirs in _HF_FIELDS.items()}
    return WavLMConfig.from_dict(
        dict(
            fields,
            extractor_mode=modes[c["feat_extract_norm"]],
            activation_fn=_HF_ACTIVATIONS[c["hidden_act"]],
            conv_feature_layers=format_conv_layers(conv),
            normalize=bool(c["do_stable_layer_norm"] if normalize is None else normalize),
            relative_position_embedding=True,
            gru_rel_pos=True,
        )
    )


def _check_projection(conv_dim: int, embed_dim: int) -> None:
    # original WavLM has no post_extract_proj when the widths agree; transformers always has one
    if conv_dim == embed_dim:
        raise ValueError(f"CNN width {conv_dim} == model width: the two formats differ there")


def wavlm_to_hf_config(cfg: WavLMConfig) -> dict:
    """WavLMConfig -> transformers WavLM config dict (ValueError if HF cannot express it)."""
    if not (cfg.relative_position_embedding and cfg.gru_rel_pos):
        raise ValueError("transformers' WavLM always has a gated relative position bias")
    activations = {v: k for k, v in _HF_ACTIVATIONS.items()}
    if cfg.activation_fn not in activations:
        raise ValueError(f"activation_fn {cfg.activation_fn!r} has no transformers equivalent")
    conv = parse_conv_layers(cfg.conv_feature_layers)
    _check_projection(conv[-1][0], cfg.encoder_embed_dim)
    config = {theirs: getattr(cfg, ours) for ours, theirs in _HF_FIELDS.items()}
    config.update(
        model_type="wavlm",
        architectures=["WavLMModel"],
        feat_extract_norm="layer" if cfg.extractor_mode == "layer_norm" else "group",
        feat_extract_activation="gelu",
        hidden_act=activations[cfg.activation_fn],
        conv_dim=[d for d, _, _ in conv],
        conv_kernel=[k for _, k, _ in conv],
        conv_stride=[s for _, _, s in conv],
        layer_norm_eps=1e-5,
        mask_time_prob=0.05,
    )
    return config
