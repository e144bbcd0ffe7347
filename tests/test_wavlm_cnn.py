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


def _textbook_cnn(cnn, wave):
    """conv1d, norm and GELU layer by layer over one unpadded utterance -> (T, C)."""
    x = wave[None, None]
    for i, block in enumerate(cnn.conv_layers):
        x = block[0](x)
        if cnn.mode == "layer_norm":
            x = F.layer_norm(x.transpose(1, 2), x.shape[1:2], *_affine(block[2][1])).transpose(1, 2)
        elif i == 0:
            x = block[2](x)
        x = F.gelu(x)
    return x[0].t()


def _affine(norm):
    return norm.weight, norm.bias, norm.eps


@pytest.mark.parametrize("mode", ["layer_norm", "default"])
@pytest.mark.parametrize("lengths", [None, [6000, 5800], [6000, 2300, 3100]])
def test_cpu_chunks_give_the_whole_input_result(mode, lengths):
    """Chunks of 3 frames (``cpu_chunk_rows``) over 18-frame utterances: equal to the textbook
    CNN on each whole utterance, values and gradients, unpadded, little padding and packed."""
    torch.manual_seed(0)
    cfg = tiny_wavlm_config(extractor_mode=mode, layer_norm_first=mode == "layer_norm")
    cnn = WavLMEncoder(cfg).feature_extractor
    hop = cfg.frame_stride // cfg.conv_layers[0][2]
    sizes = lengths or [6000, 6000]
    cnn.cpu_chunk_rows = 3 * hop * (1 if lengths is not None and len(sizes) == 3 else len(sizes))
    gen = torch.Generator().manual_seed(4)
    waves = [torch.randn(n, generator=gen) for n in sizes]
    batch = torch.zeros(len(sizes), max(sizes))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    batch.requires_grad_(True)
    ours = cnn(batch, None if lengths is None else torch.tensor(lengths))
    refs = [_textbook_cnn(cnn, batch[i, : len(w)]) for i, w in enumerate(waves)]
    grad = torch.randn(ours.shape, generator=gen)
    for i, ref in enumerate(refs):
        grad[i, len(ref) :] = 0.0  # frames on the padding are not compared
    params = [cnn.conv_layers[0][0].weight, cnn.conv_layers[1][0].weight]
    ours_grads = torch.autograd.grad(ours, [batch, *params], grad)
    for i, ref in enumerate(refs):
        torch.testing.assert_close(ours[i, : len(ref)], ref, atol=1e-5, rtol=1e-4)
    ref_loss = sum((ref * grad[i, : len(ref)]).sum() for i, ref in enumerate(refs))
    for a, b in zip(ours_grads, torch.autograd.grad(ref_loss, [batch, *params])):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
