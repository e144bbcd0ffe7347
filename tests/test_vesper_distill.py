"""Criterion `vesper_distill`: the three MSE terms on the right frames, and log aggregation."""

from types import SimpleNamespace

import pytest
import torch
from fairseq import metrics

from vesper_fairseq.criterions.vesper_distill import VesperDistillConfig, VesperDistillCriterion

B, T, D = 3, 20, 6


def make_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    padding = torch.zeros(B, T, dtype=torch.bool)
    padding[1, 15:] = True
    padding[2, 8:] = True
    stage1 = torch.rand(B, T, generator=g) < 0.5
    stage2 = torch.rand(B, T, generator=g) < 0.3
    preds = {k: torch.randn(B, T, D, generator=g) for k in ("low", "high", "cross")}
    targets = {k: torch.randn(B, T, D, generator=g) for k in ("low", "high", "cross")}
    net_output = dict(
        predictions=preds,
        stage1_mask=stage1 & ~padding,
        stage2_mask=stage2 & ~padding,
        padding_mask=padding,
    )
    sample = {"id": torch.arange(B), "net_input": {}, "targets": targets}
    return net_output, sample


def criterion(**cfg):
    task = SimpleNamespace()  # the criterion asks the task nothing
    return VesperDistillCriterion(VesperDistillConfig(**cfg), task)


def reference_mse(pred, target, select):
    diffs = [(pred[b, t] - target[b, t]) ** 2 for b in range(B) for t in range(T) if select[b, t]]
    return torch.stack(diffs).mean()


def test_loss_is_the_weighted_sum_of_mse_on_the_right_frames():
    net_output, sample = make_batch()
    crit = criterion(low_weight=1.0, high_weight=0.1, cross_weight=0.5)
    loss, sample_size, log = crit(lambda **_: net_output, sample)
    real = ~net_output["padding_mask"]
    low = reference_mse(
        net_output["predictions"]["low"], sample["targets"]["low"], net_output["stage1_mask"]
    )
    high = reference_mse(
        net_output["predictions"]["high"], sample["targets"]["high"], net_output["stage2_mask"]
    )
    cross = reference_mse(net_output["predictions"]["cross"], sample["targets"]["cross"], real)
    torch.testing.assert_close(loss, low + 0.1 * high + 0.5 * cross)
    assert sample_size == 1 and log["ntokens"] == int(real.sum())


def test_padded_frames_never_count():
    net_output, sample = make_batch()
    loss, _, _ = criterion()(lambda **_: net_output, sample)
    padding = net_output["padding_mask"]
    for pred in net_output["predictions"].values():
        pred[padding] = 1e6
    for target in sample["targets"].values():
        target[padding] = -1e6
    again, _, _ = criterion()(lambda **_: net_output, sample)
    torch.testing.assert_close(again, loss)


def test_logged_losses_aggregate_over_frames_not_batches():
    logs = []
    for seed in (0, 1):
        net_output, sample = make_batch(seed)
        if seed:  # a batch with far fewer stage-1 frames must weigh less
            net_output["stage1_mask"][:, 2:] = False
        logs.append(criterion()(lambda _n=net_output, **_: _n, sample)[2])
    with metrics.aggregate() as agg:
        VesperDistillCriterion.reduce_metrics(logs)
        values = agg.get_smoothed_values()
    expected = (logs[0]["sse_low"] + logs[1]["sse_low"]) / (
        logs[0]["count_low"] + logs[1]["count_low"]
    )
    assert values["loss_low"] == pytest.approx(expected, abs=1e-4)
    masked = sum(log["masked_stage1"] for log in logs) / sum(log["ntokens"] for log in logs)
    assert values["mask_stage1"] == pytest.approx(masked, abs=1e-3)
