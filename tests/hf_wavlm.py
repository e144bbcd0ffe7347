"""Test helpers: small randomly initialised transformers.WavLMModel references."""

import math

import torch
from transformers import WavLMConfig as HFWavLMConfig
from transformers import WavLMModel

SMALL = dict(
    hidden_size=64,
    num_attention_heads=4,
    intermediate_size=128,
    num_hidden_layers=4,
    conv_dim=(32,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    num_buckets=32,
    max_bucket_distance=100,
    mask_time_prob=0.05,
)
STYLES = {
    "large": dict(feat_extract_norm="layer", do_stable_layer_norm=True),
    "base": dict(feat_extract_norm="group", do_stable_layer_norm=False),
}


def hf_config(style: str = "large", **overrides) -> HFWavLMConfig:
    kwargs = {**SMALL, **STYLES[style], **overrides}
    return HFWavLMConfig(**kwargs)


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter non-degenerate random values (HF's init zeroes some of them)."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen)
        if name.endswith("original0") or name.endswith("weight_g"):
            # weight-norm magnitude (1, 1, K): entries of g * v/||v|| ~ 1/sqrt(fan_in)
            dim, kernel = model.config.hidden_size, p.shape[-1]
            scale = math.sqrt(dim / kernel)
            p.copy_(scale * (0.5 + torch.rand(p.shape, generator=gen)))
        elif p.dim() >= 2:
            p.copy_(noise / math.sqrt(p[0].numel()))
        elif "norm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.2 * noise)
        else:
            p.copy_(0.2 * noise)
        if "rel_attn_embed" in name or "gru_rel_pos_const" in name:
            p.copy_(noise)
    return model


def make_hf_wavlm(style: str = "large", seed: int = 0, **overrides) -> WavLMModel:
    torch.manual_seed(seed)
    model = WavLMModel(hf_config(style, **overrides))
    return randomize_(model, seed).eval()


@torch.no_grad()
def hf_layer_outputs(model: WavLMModel, source: torch.Tensor, attention_mask=None):
    """Raw per-layer outputs of an HF model via hooks: [input of layer 1, output of 1, ...]."""
    captured = []

    def pre_hook(module, args, kwargs):
        captured.append((args[0] if args else kwargs["hidden_states"]).clone())

    def hook(module, args, output):
        captured.append((output[0] if isinstance(output, tuple) else output).clone())

    layers = model.encoder.layers
    handles = [layers[0].register_forward_pre_hook(pre_hook, with_kwargs=True)]
    handles += [layer.register_forward_hook(hook) for layer in layers]
    try:
        model(source, attention_mask=attention_mask)
    finally:
        for h in handles:
            h.remove()
    return captured


def hf_state_dict_as_original(model: WavLMModel) -> dict:
    """The model's tensors under original WavLM names, via the project's name mapping."""
    from vesper_fairseq.formats.hf_names import hf_config_to_wavlm, hf_to_wavlm_key

    cfg = hf_config_to_wavlm(model.config.to_dict())
    state = {
        hf_to_wavlm_key(k, extractor_mode=cfg.extractor_mode): v.detach().clone()
        for k, v in model.state_dict().items()
    }
    return {"cfg": cfg.to_dict(), "model": state}


def save_hf_folder(model: WavLMModel, folder, weights: str = "safetensors", legacy=False):
    """Write config.json plus weights as model.safetensors or pytorch_model.bin.

    ``legacy`` renames the positional conv's weight norm to the older weight_g / weight_v keys.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(folder / "config.json"))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if legacy:
        for old, new in (("original0", "weight_g"), ("original1", "weight_v")):
            key = f"encoder.pos_conv_embed.conv.parametrizations.weight.{old}"
            state[f"encoder.pos_conv_embed.conv.{new}"] = state.pop(key)
    if weights == "safetensors":
        save_file(state, str(folder / "model.safetensors"))
    else:
        torch.save(state, folder / "pytorch_model.bin")
    return folder
