import torch

from vesper_fairseq.modules.prediction_head import PredictionHead


def test_shapes_and_parameter_count():
    head = PredictionHead()
    assert head(torch.randn(2, 7, 1024)).shape == (2, 7, 1024)
    # 1024*512 + 512 + 512*1024 + 1024 = 1.05M, as docs/method.md section 2 says per head
    assert sum(p.numel() for p in head.parameters()) == 1_050_112
    small = PredictionHead(16, 8, 12)
    assert small(torch.randn(3, 16)).shape == (3, 12)


def test_layer_norm_has_no_affine_parameters():
    head = PredictionHead(16, 8, 12)
    names = {name for name, _ in head.named_parameters()}
    assert names == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_matches_hand_computed_reference():
    torch.manual_seed(0)
    head = PredictionHead(16, 8, 12).double()
    z = torch.randn(4, 5, 16, dtype=torch.double) * 3 + 1
    normed = (z - z.mean(-1, keepdim=True)) / torch.sqrt(
        z.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    hidden = normed @ head.fc1.weight.T + head.fc1.bias
    hidden = 0.5 * hidden * (1 + torch.erf(hidden / 2**0.5))
    expected = hidden @ head.fc2.weight.T + head.fc2.bias
    torch.testing.assert_close(head(z), expected)
