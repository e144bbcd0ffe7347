"""Checkpoint formats: original WavLM .pt and HuggingFace folders, name mapping, errors."""

import json
import os

import pytest
import torch
from hf_wavlm import hf_config, make_hf_wavlm, save_hf_folder

from vesper_fairseq.formats import load_encoder
from vesper_fairseq.formats.hf_names import (
    hf_config_to_wavlm,
    hf_to_wavlm_key,
    wavlm_to_hf_config,
    wavlm_to_hf_key,
)
from vesper_fairseq.formats.wavlm_checkpoint import save_wavlm_checkpoint
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config
from vesper_fairseq.safe_load import CheckpointError


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return WavLMEncoder(tiny_wavlm_config()).eval()


def test_original_checkpoint_round_trip(tiny, tmp_path):
    path = tmp_path / "sub" / "wavlm.pt"
    save_wavlm_checkpoint(tiny, path)
    assert os.listdir(path.parent) == ["wavlm.pt"]  # no temp file left behind
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"cfg", "model"} and raw["cfg"]["encoder_layers"] == 4
    loaded = load_encoder(path)
    assert not loaded.training and loaded.cfg == tiny.cfg
    ref = tiny.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in loaded.state_dict().items())
    source = torch.randn(1, 4000)
    with torch.no_grad():
        assert torch.equal(loaded.layer_results(source)[-1], tiny.layer_results(source)[-1])


@pytest.mark.parametrize("style", ["large", "base"])
def test_key_mapping_is_a_bijection_on_real_models(style):
    hf_keys = list(make_hf_wavlm(style).state_dict())
    mode = "layer_norm" if style == "large" else "default"
    ours = [hf_to_wavlm_key(k, extractor_mode=mode) for k in hf_keys]
    cfg = hf_config_to_wavlm(hf_config(style).to_dict())
    assert cfg.extractor_mode == mode
    assert sorted(ours) == sorted(WavLMEncoder(cfg).state_dict())
    assert [wavlm_to_hf_key(k) for k in ours] == hf_keys


def test_key_mapping_examples_and_legacy_names():
    assert wavlm_to_hf_key("encoder.layers.3.self_attn.grep_a") == (
        "encoder.layers.3.attention.gru_rel_pos_const"
    )
    assert wavlm_to_hf_key("feature_extractor.conv_layers.0.2.weight") == (
        "feature_extractor.conv_layers.0.layer_norm.weight"
    )
    assert hf_to_wavlm_key("encoder.pos_conv_embed.conv.weight_g") == "encoder.pos_conv.0.weight_g"
    assert hf_to_wavlm_key("feature_extractor.conv_layers.0.layer_norm.bias", "default") == (
        "feature_extractor.conv_layers.0.2.bias"
    )
    with pytest.raises(KeyError):
        hf_to_wavlm_key("feature_extractor.conv_layers.3.layer_norm.bias", "default")
    with pytest.raises(KeyError):
        wavlm_to_hf_key("final_proj.weight")


@pytest.mark.parametrize("style", ["large", "base"])
def test_config_mapping_round_trip(style):
    config = hf_config(style).to_dict()
    cfg = hf_config_to_wavlm(config)
    assert cfg.layer_norm_first == (style == "large") and cfg.normalize == (style == "large")
    back = wavlm_to_hf_config(cfg)
    for key, value in back.items():
        if key not in ("architectures", "mask_time_prob"):
            assert value == (list(config[key]) if isinstance(value, list) else config[key]), key
    assert hf_config_to_wavlm(back) == cfg


def test_hf_folder_with_head_prefix_and_preprocessor(tmp_path):
    model = make_hf_wavlm("large")
    folder = save_hf_folder(model, tmp_path / "hf")
    from safetensors.torch import load_file, save_file

    state = {"wavlm." + k: v for k, v in load_file(folder / "model.safetensors").items()}
    state["classifier.weight"] = torch.zeros(4, 64)
    save_file(state, str(folder / "model.safetensors"))
    (folder / "preprocessor_config.json").write_text(json.dumps({"do_normalize": False}))
    encoder = load_encoder(folder)
    assert not encoder.cfg.normalize
    assert torch.equal(encoder.mask_emb, model.masked_spec_embed)


def test_hf_folder_without_mask_embedding_loads(tmp_path):
    model = make_hf_wavlm("base", mask_time_prob=0.0)
    assert not hasattr(model, "masked_spec_embed")
    encoder = load_encoder(save_hf_folder(model, tmp_path / "hf"))
    assert encoder.mask_emb.shape == (64,) and torch.isfinite(encoder.mask_emb).all()


def _expect_error(path, match, named=None):
    with pytest.raises(CheckpointError, match=match) as info:
        load_encoder(path)
    assert str(named or path) in str(info.value)


def test_bad_files_get_clear_errors(tiny, tmp_path):
    _expect_error(tmp_path / "missing.pt", "no such file")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    _expect_error(garbage, r"not a PyTorch checkpoint \(a text file, beginning 'not a checkpoint")
    good = tmp_path / "good.pt"
    save_wavlm_checkpoint(tiny, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _expect_error(truncated, "cannot be read as a PyTorch checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    _expect_error(other, "unknown checkpoint format")
    _expect_error(tmp_path, "unknown checkpoint folder")


def test_config_that_does_not_match_the_tensors(tiny, tmp_path):
    state = {"cfg": tiny.cfg.to_dict(), "model": tiny.state_dict()}
    path = tmp_path / "more_layers.pt"
    torch.save({**state, "cfg": {**state["cfg"], "encoder_layers": 5}}, path)
    _expect_error(path, "missing .*encoder.layers.4")
    path = tmp_path / "wider.pt"
    torch.save({**state, "cfg": {**state["cfg"], "encoder_ffn_embed_dim": 256}}, path)
    _expect_error(path, "fc1.weight has shape")
    path = tmp_path / "mode.pt"
    torch.save({**state, "cfg": {**state["cfg"], "extractor_mode": "default"}}, path)
    _expect_error(path, "do not match the config")
    path = tmp_path / "badcfg.pt"
    torch.save({**state, "cfg": {**state["cfg"], "activation_fn": "swish"}}, path)
    _expect_error(path, "invalid config.*activation_fn")


def test_bad_hf_folders(tmp_path):
    folder = save_hf_folder(make_hf_wavlm("large"), tmp_path / "hf")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    config = json.loads((folder / "config.json").read_text())
    for tampered, problem in [
        ({"conv_dim": [512] * 100000}, "conv_dim, conv_kernel and conv_"),
        ({"layer_norm_eps": float("nan")}, "layer_norm_eps nan != 1e-5"),
    ]:
        (folder / "config.json").write_text(json.dumps({**config, **tampered}))
        _expect_error(folder, problem)
    (folder / "config.json").write_text(json.dumps(config))
    weights.write_bytes(data[: len(data) // 2])
    _expect_error(folder, "cannot be read as safetensors", named=weights)
    _expect_error(weights, "loaded from its folder")
    weights.unlink()
    _expect_error(folder, "no model.safetensors or pytorch_model.bin")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "hubert"}))
    _expect_error(folder, "model_type is 'hubert'", named=folder / "config.json")
    (folder / "config.json").write_text("{broken")
    _expect_error(folder, "not a readable JSON", named=folder / "config.json")


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("encoder_layers", 200000, r"encoder_layers must be in \[1, 1000\], got 200000"),
        ("conv_feature_layers", "[(512,10,5)] * 1000000000", "repeat count 1000000000"),
        ("conv_feature_layers", "[(100000,10,5)]", "must be at most"),
        ("encoder_embed_dim", 2**31, r"encoder_embed_dim must be in \[1, 65536\]"),
        ("encoder_embed_dim", 64.0, "encoder_embed_dim must be an integer"),
        ("encoder_ffn_embed_dim", -128, "encoder_ffn_embed_dim must be in"),
        ("dropout", float("nan"), r"dropout must be a probability in \[0, 1\]"),
        ("encoder_embed_dim", 65536, "parameters"),  # each bound holds, the whole is absurd
    ],
)
def test_tampered_configs_are_refused_before_building(tiny, tmp_path, key, value, match):
    state = {"cfg": {**tiny.cfg.to_dict(), key: value}, "model": tiny.state_dict()}
    if key == "encoder_embed_dim" and value == 65536:
        state["cfg"].update(encoder_ffn_embed_dim=262144, encoder_layers=1000)
    path = tmp_path / "tampered.pt"
    torch.save(state, path)
    _expect_error(path, f"invalid config: .*{match}")


@pytest.mark.parametrize(
    "tamper, match",
    [
        (lambda t: torch.full_like(t, float("nan")), "holds NaN or infinite values"),
        (lambda t: t.to(torch.int32), "has dtype torch.int32; the encoder needs floating-point"),
    ],
)
def test_non_finite_or_integer_weights_are_refused(tiny, tmp_path, tamper, match):
    model = {k: tamper(v) if v.is_floating_point() else v for k, v in tiny.state_dict().items()}
    path = tmp_path / "tampered.pt"
    torch.save({"cfg": tiny.cfg.to_dict(), "model": model}, path)
    _expect_error(path, match)
