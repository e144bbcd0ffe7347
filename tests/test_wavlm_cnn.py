"""The channels-last CNN: strided convolutions as matrix multiplies, padded batches packed."""

import pytest
import torch
import torch.nn.functional as F

from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_cnn import strided_conv
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config


@pytest.mark.parametrize(
    "c_in,c_out,kernel,stride",
    [(1, 16, 10, 5), (8, 16, 3, 2), (8, 8, 2, 2), (8, 4, 5, 2), (6, 6, 2, 3)],
)
def test_strided_conv_matches_conv1d_values_and_gradients(c_in, c_out, kernel, stride):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 41, c_in, generator=gen, requires_grad=True)
    weight = torch.randn(c_out, c_in, kernel, generator=gen, requires_grad=True)
    bias = torch.randn(c_out, generator=gen, requires_grad=True)
    ours = strided_conv(x, weight, bias, stride)
    ref = F.conv1d(x.transpose(1, 2), weight, bias, stride=stride).transpose(1, 2)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    grad = torch.randn(ref.shape, generator=gen)
    ours_grads = torch.autograd.grad(ours, (x, weight, bias), grad)
    ref_grads = torch.autograd.grad(ref, (x, weight, bias), grad)
    for a, b in zip(ours_grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_padded_batch_is_packed_real_frames_exact_padding_zero():
    torch.manual_seed(0)
    encoder = WavLMEncoder(tiny_wavlm_config(encoder_layers=1)).eval()
    lengths = [9000, 3300, 5000]
    gen = torch.Generator().manual_seed(1)
    waves = [torch.randn(n, generator=gen) for n in lengths]
    batch = torch.full((3, 9000), 5.0)  # the padding's values must not matter
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    padding = torch.arange(9000)[None, :] >= torch.tensor(lengths)[:, None]
    with torch.no_grad():
        features = encoder.cnn_features(batch, padding, normalize=False)
        frames = encoder.frame_padding_mask(padding, features.size(1))
        assert not features[frames].any()  # packed: nothing computed on the padding
        for i, w in enumerate(waves):
            alone = encoder.cnn_features(w[None], normalize=False)[0]
            torch.testing.assert_close(features[i, : len(alone)], alone, atol=1e-5, rtol=1e-5)
            assert int((~frames[i]).sum()) == len(alone)


def _base_cnn():
    torch.manual_seed(0)
    cfg = tiny_wavlm_config(extractor_mode="default", layer_norm_first=False, conv_bias=True)
    return WavLMEncoder(cfg).feature_extractor


def _reference_first_layer(cnn, wave):
    """conv then nn.GroupNorm, the textbook way, on one unpadded utterance."""
    conv, norm = cnn.conv_layers[0][0], cnn.conv_layers[0][2]
    return F.gelu(norm(conv(wave[None, None])))[0].t()


@pytest.mark.parametrize("lengths", [None, [4000, 3800], [4000, 1500, 900]])
def test_base_first_layer_folds_group_norm_into_the_conv(lengths):
    """None: no padding; [4000, 3800]: little padding (not packed); else packed."""
    cnn = _base_cnn()
    cnn.conv_layers = cnn.conv_layers[:1]
    cnn.layer_specs = cnn.layer_specs[:1]
    gen = torch.Generator().manual_seed(2)
    sizes = lengths or [4000, 4000]
    waves = [3.0 * torch.randn(n, generator=gen) + 0.5 for n in sizes]
    batch = torch.full((len(sizes), max(sizes)), -2.0)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    ours = cnn(batch, None if lengths is None else torch.tensor(lengths))
    for i, w in enumerate(waves):
        ref = _reference_first_layer(cnn, w)
        torch.testing.assert_close(ours[i, : len(ref)], ref, atol=1e-5, rtol=1e-4)
    (ours * torch.randn(ours.shape, generator=gen)).sum().backward()
    assert cnn.conv_layers[0][0].weight.grad.abs().sum() > 0
    assert cnn.conv_layers[0][2].weight.grad.abs().sum() > 0


def test_base_first_layer_gradients_match_the_reference():
    cnn = _base_cnn()
    cnn.conv_layers = cnn.conv_layers[:1]
    cnn.layer_specs = cnn.layer_specs[:1]
    wave = torch.randn(3000, generator=torch.Generator().manual_seed(3))
    params = [cnn.conv_layers[0][0].weight, cnn.conv_layers[0][2].weight]
    ours = torch.autograd.grad(cnn(wave[None]).pow(2).mean(), params)
    ref = torch.autograd.grad(_reference_first_layer(cnn, wave).pow(2).mean(), params)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-3)
