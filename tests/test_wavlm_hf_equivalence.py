"""Layer-by-layer equivalence of WavLMEncoder with transformers' WavLMModel (random weights)."""

import pytest
import torch
import torch.nn.functional as F
from hf_wavlm import (
    hf_layer_outputs,
    hf_state_dict_as_original,
    make_hf_wavlm,
    save_hf_folder,
)

from vesper_fairseq.formats import load_encoder

TOL = 1e-4
LENGTHS = [8000, 5123, 3333]


@pytest.fixture(scope="module", params=["large", "base"])
def hf_model(request):
    return make_hf_wavlm(request.param, seed=1)


def _save(model, tmp_path, fmt):
    if fmt == "original":
        path = tmp_path / "wavlm.pt"
        torch.save(hf_state_dict_as_original(model), path)
        return path
    return save_hf_folder(
        model,
        tmp_path / fmt,
        weights="bin" if fmt == "bin" else "safetensors",
        legacy=fmt == "legacy",
    )


def _assert_close(ours, ref, frames=None):
    assert len(ours) == len(ref)
    for layer, (a, b) in enumerate(zip(ours, ref)):
        a = a if frames is None else a[:frames]
        assert a.shape == b.shape, (layer, a.shape, b.shape)
        err = (a - b).abs().max().item()
        assert err < TOL, f"layer {layer}: max abs diff {err:.2e}"


@pytest.mark.parametrize("fmt", ["original", "safetensors", "bin", "legacy"])
def test_single_utterance_matches_hf(hf_model, tmp_path, fmt):
    encoder = load_encoder(_save(hf_model, tmp_path, fmt))
    assert not encoder.training
    assert encoder.cfg.layer_norm_first == hf_model.config.do_stable_layer_norm
    source = torch.randn(1, 7200, generator=torch.Generator().manual_seed(3))
    ref = [h[0] for h in hf_layer_outputs(hf_model, source)]
    with torch.no_grad():
        ours = encoder(source, normalize=False).layer_results
    assert len(ours) == hf_model.config.num_hidden_layers + 1
    _assert_close([h[0] for h in ours], ref)


def test_padded_batch_matches_single_utterance_hf_runs(hf_model, tmp_path):
    encoder = load_encoder(_save(hf_model, tmp_path, "original"))
    gen = torch.Generator().manual_seed(4)
    waves = [torch.randn(n, generator=gen) for n in LENGTHS]
    batch = torch.zeros(len(waves), max(LENGTHS))
    padding_mask = torch.ones(batch.shape, dtype=torch.bool)
    for i, w in enumerate(waves):
        batch[i, : len(w)], padding_mask[i, : len(w)] = w, False
    batch[padding_mask] = 7.0  # padding content must not matter
    with torch.no_grad():
        out = encoder(batch, padding_mask, normalize=False)
    for i, w in enumerate(waves):
        ref = [h[0] for h in hf_layer_outputs(hf_model, w[None])]
        frames = ref[0].shape[0]
        assert int((~out.padding_mask[i]).sum()) == frames
        _assert_close([h[i] for h in out.layer_results], ref, frames)


def test_waveform_normalisation_matches_layer_norm_input_to_hf(hf_model, tmp_path):
    encoder = load_encoder(_save(hf_model, tmp_path, "original"))
    source = 3.0 + 5.0 * torch.randn(1, 6400, generator=torch.Generator().manual_seed(5))
    ref = [h[0] for h in hf_layer_outputs(hf_model, F.layer_norm(source, source.shape))]
    with torch.no_grad():
        ours = encoder(source, normalize=True).layer_results
    _assert_close([h[0] for h in ours], ref)


def test_frame_padding_mask_matches_hf(hf_model, tmp_path):
    encoder = load_encoder(_save(hf_model, tmp_path, "original"))
    lengths = torch.tensor([8000, 7999, 5123, 720, 400])
    padding_mask = torch.arange(8000)[None, :] >= lengths[:, None]
    num_frames = int(hf_model._get_feat_extract_output_lengths(torch.tensor(8000)))
    ref = hf_model._get_feature_vector_attention_mask(num_frames, (~padding_mask).long())
    ours = encoder.frame_padding_mask(padding_mask, num_frames)
    assert torch.equal(ours, ~ref)
