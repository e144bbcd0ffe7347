"""Behaviour of WavLMEncoder: keys, padding independence, masking, max_layer, dropout."""

import pytest
import torch
import torch.nn.functional as F

from vesper_fairseq import features
from vesper_fairseq.data import audio_dataset
from vesper_fairseq.modules import waveform
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import WavLMConfig, tiny_wavlm_config
from vesper_fairseq.modules.wavlm_layers import conv_output_lengths


def _encoder(style="large", **overrides):
    torch.manual_seed(0)
    if style == "base":
        overrides = dict(
            extractor_mode="default", layer_norm_first=False, normalize=False, **overrides
        )
    return WavLMEncoder(tiny_wavlm_config(**overrides)).eval()


def _batch(lengths, seed=0, pad_value=0.0):
    gen = torch.Generator().manual_seed(seed)
    waves = [torch.randn(n, generator=gen) for n in lengths]
    batch = torch.full((len(waves), max(lengths)), pad_value)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return waves, batch, torch.arange(max(lengths))[None, :] >= torch.tensor(lengths)[:, None]


def test_state_dict_keys_follow_original_checkpoints():
    large = _encoder("large").state_dict()
    base = _encoder("base").state_dict()
    for keys in (large, base):
        assert {"mask_emb", "layer_norm.weight", "post_extract_proj.weight"} <= set(keys)
        assert {"encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v"} <= set(keys)
        assert "encoder.layers.0.self_attn.relative_attention_bias.weight" in keys
        assert "encoder.layers.1.self_attn.relative_attention_bias.weight" not in keys
        assert "encoder.layers.3.self_attn.grep_a" in keys
        assert "encoder.layer_norm.weight" in keys
    assert "feature_extractor.conv_layers.6.2.1.weight" in large
    assert "feature_extractor.conv_layers.0.2.weight" in base
    assert not any(k.startswith("feature_extractor.conv_layers.1.2") for k in base)
    assert large["encoder.pos_conv.0.weight_g"].shape == (1, 1, 16)


@pytest.mark.parametrize("style", ["large", "base"])
def test_outputs_do_not_depend_on_the_rest_of_the_batch(style):
    encoder = _encoder(style)
    lengths = [6400, 4000, 2345]
    waves, batch, padding_mask = _batch(lengths, pad_value=-3.0)
    with torch.no_grad():
        out = encoder(batch, padding_mask, normalize=True)
        for i, w in enumerate(waves):
            single = encoder(w[None], normalize=True)
            frames = single.layer_results[0].shape[1]
            assert single.padding_mask is None
            assert int((~out.padding_mask[i]).sum()) == frames
            for a, b in zip(out.layer_results, single.layer_results):
                torch.testing.assert_close(a[i, :frames], b[0], atol=1e-5, rtol=1e-5)


def test_normalize_waveform_uses_real_samples_only():
    encoder = _encoder()
    waves, batch, padding_mask = _batch([3000, 1700], pad_value=100.0)
    out = encoder.normalize_waveform(2.0 + 4.0 * batch, padding_mask)
    for i, w in enumerate(waves):
        ref = F.layer_norm(2.0 + 4.0 * w, w.shape)
        torch.testing.assert_close(out[i, : len(w)], ref, atol=1e-5, rtol=1e-5)
        assert torch.all(out[i, len(w) :] == 0)


def test_every_path_standardises_with_the_one_function():
    """Pretraining crops (dataset), the encoder (fine-tuning, inference) and whole-file
    extraction all call modules.waveform.standardize_waveform: eps 1e-5, real samples only."""
    assert audio_dataset.standardize_waveform is waveform.standardize_waveform
    assert features.standardize_waveform is waveform.standardize_waveform
    quiet = 1e-3 * torch.randn(2, 3000, generator=torch.Generator().manual_seed(0))
    padding = torch.zeros(2, 3000, dtype=torch.bool)
    padding[1, 2000:] = True
    out = _encoder().normalize_waveform(quiet, padding)
    for i, n in enumerate((3000, 2000)):
        x = quiet[i, :n].double().numpy()  # near silence: eps 1e-5 dominates the variance
        ref = (x - x.mean()) / (x.var() + 1e-5) ** 0.5
        torch.testing.assert_close(out[i, :n].double(), torch.from_numpy(ref), rtol=1e-5, atol=1e-6)


def test_normalize_follows_cfg_unless_overridden():
    encoder = _encoder(normalize=True)
    source = 5.0 + 3.0 * torch.randn(1, 4000)
    with torch.no_grad():
        default = encoder.layer_results(source)
        explicit = encoder(encoder.normalize_waveform(source), normalize=False).layer_results
        raw = encoder(source, normalize=False).layer_results
    torch.testing.assert_close(default[-1], explicit[-1])
    assert not torch.allclose(default[-1], raw[-1], atol=1e-3)


def test_max_layer_stops_early_with_the_same_outputs():
    encoder = _encoder()
    source = torch.randn(2, 4000)
    with torch.no_grad():
        full = encoder.layer_results(source)
        part = encoder.layer_results(source, max_layer=2)
        none = encoder.layer_results(source, max_layer=0)
    assert len(full) == 5 and len(part) == 3 and len(none) == 1
    for a, b in zip(part, full):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="max_layer"):
        encoder.layer_results(source, max_layer=5)


@pytest.mark.parametrize("layer", [0, 2])
def test_frame_masks_replace_the_state_entering_the_next_layer(layer):
    encoder = _encoder()
    source = torch.randn(2, 4000)
    with torch.no_grad():
        clean = encoder.layer_results(source)
        mask = torch.zeros(clean[0].shape[:2], dtype=torch.bool)
        mask[0, 3:7] = mask[1, 0:2] = True
        seen = []
        hook = encoder.encoder.layers[layer].register_forward_pre_hook(
            lambda m, args: seen.append(args[0].clone())
        )
        masked = encoder(source, frame_masks={layer: mask}).layer_results
        hook.remove()
        unmasked = encoder(source, frame_masks={layer: torch.zeros_like(mask)}).layer_results
    for i in range(layer + 1):  # up to the recorded state before replacement
        assert torch.equal(masked[i], clean[i])
    assert torch.equal(seen[0][mask], encoder.mask_emb.expand(int(mask.sum()), -1))
    assert torch.equal(seen[0][~mask], clean[layer][~mask])
    assert not torch.allclose(masked[layer + 1], clean[layer + 1])
    for a, b in zip(unmasked, clean):
        assert torch.equal(a, b)


def test_frame_masks_are_validated():
    encoder = _encoder()
    source = torch.randn(1, 4000)
    frames = encoder.layer_results(source)[0].shape[1]
    with pytest.raises(ValueError, match="frame_masks layer 4"):
        encoder(source, frame_masks={4: torch.zeros(1, frames, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        encoder(source, frame_masks={0: torch.zeros(1, frames + 1, dtype=torch.bool)})


def test_dropout_only_in_train_mode_and_gradients_flow():
    encoder = _encoder(dropout=0.3)
    source = torch.randn(1, 4000)
    with torch.no_grad():
        assert torch.equal(encoder.layer_results(source)[-1], encoder.layer_results(source)[-1])
    encoder.train()
    a, b = encoder.layer_results(source)[-1], encoder.layer_results(source)[-1]
    assert not torch.allclose(a, b)
    a.pow(2).mean().backward()
    grads = [p.grad for p in encoder.encoder.layers[0].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_config_dict_round_trip_ignores_unrelated_keys():
    cfg = tiny_wavlm_config()
    d = cfg.to_dict()
    assert all(isinstance(v, bool | int | float | str) for v in d.values())
    assert WavLMConfig.from_dict({**d, "mask_prob": 0.65, "feature_grad_mult": 1.0}) == cfg
    assert [c[0] for c in cfg.conv_layers] == [32] * 7
    with pytest.raises(ValueError, match="conv_feature_layers"):
        WavLMConfig.from_dict({**d, "conv_feature_layers": "__import__('os')"})
    with pytest.raises(ValueError, match="extractor_mode"):
        WavLMConfig.from_dict({**d, "extractor_mode": "batch_norm"})


def test_relative_position_buckets_match_hf_reference():
    from transformers.models.wavlm.modeling_wavlm import WavLMAttention

    from vesper_fairseq.modules.relative_position import relative_position_bucket

    ref = WavLMAttention(64, 4, num_buckets=320, max_distance=800)
    rel = torch.arange(-1500, 1500)[None, :]
    assert torch.equal(relative_position_bucket(rel, 320, 800), ref._relative_positions_bucket(rel))


@pytest.mark.parametrize("style", ["large", "base"])
def test_packed_layers_skip_padding_with_the_same_real_frames_and_gradients(style, monkeypatch):
    """Transformer layers run on the real frames' rows (FramePacking) where a batch has at
    least 10% padding: real frames, frame masks and gradients as in the padded computation."""
    from vesper_fairseq.modules import wavlm_layers

    encoder = _encoder(style)
    _, batch, padding_mask = _batch([6400, 4000, 2345], pad_value=-3.0)
    num_frames = int(conv_output_lengths(torch.tensor(6400), encoder.cfg.conv_layers))
    frames = encoder.frame_padding_mask(padding_mask, num_frames)
    masks = {1: torch.rand(frames.shape, generator=torch.Generator().manual_seed(5)) < 0.4}

    def run(packed: bool):
        monkeypatch.setattr(wavlm_layers.FramePacking, "worthwhile", staticmethod(lambda m: packed))
        encoder.zero_grad()
        out = encoder(batch, padding_mask, frame_masks=masks, normalize=True)
        real = ~out.padding_mask
        loss = sum((h[real] ** 2).mean() for h in out.layer_results)
        loss.backward()
        grads = [p.grad.clone() for p in encoder.parameters() if p.grad is not None]
        return out, grads

    packed, packed_grads = run(True)
    padded, padded_grads = run(False)
    real = ~padded.padding_mask
    for a, b in zip(packed.layer_results[1:], padded.layer_results[1:]):
        torch.testing.assert_close(a[real], b[real], atol=1e-5, rtol=1e-5)
        assert not a[~real].any()  # nothing computed on the padding
    for a, b in zip(packed_grads, padded_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_packed_attention_runs_utterance_by_utterance_only_for_end_padding():
    """Each utterance's rows attend over its own frames alone where padding is at the end
    (spans); any other padding mask keeps the padded attention (no spans)."""
    from vesper_fairseq.modules.wavlm_layers import FramePacking

    end_padded = torch.arange(6)[None, :] >= torch.tensor([6, 2, 4])[:, None]
    assert FramePacking(end_padded).spans == [(0, 6), (6, 2), (8, 4)]
    holes = end_padded.clone()
    holes[0, 1] = True
    assert FramePacking(holes).spans is None
