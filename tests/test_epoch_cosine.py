"""LR scheduler `epoch_cosine`: the authors' per-epoch schedule, checked against torch's LambdaLR
with the lambda of their pretrain.py / finetune.py, stepped once per epoch."""

import math
import re

import pytest
import torch
from fairseq.optim import build_optimizer
from fairseq.optim.lr_scheduler import build_lr_scheduler
from fairseq_runs import finetune, make_synthetic_manifests, make_tiny_teacher
from omegaconf import OmegaConf


def authors_rates(peak: float, warmup: int, epochs: int) -> list[float]:
    lr_min = 0.01 * peak

    def factor(epoch):
        if epoch < warmup:
            return (epoch + 1) / warmup
        cosine = 1.0 + math.cos((epoch - warmup) / (epochs - warmup) * math.pi)
        return (lr_min + 0.5 * (peak - lr_min) * cosine) / peak

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def schedule(peak, warmup, epochs):
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = {"_name": "sgd", "lr": [peak], "momentum": 0.0, "weight_decay": 0.0}
    optimizer = build_optimizer(OmegaConf.create(sgd), params)
    cfg = {"_name": "epoch_cosine", "warmup_epochs": warmup, "max_epoch": epochs, "lr": [peak]}
    return build_lr_scheduler(OmegaConf.create({**cfg, "min_lr": 0.01 * peak}), optimizer)


@pytest.mark.parametrize("peak, warmup, epochs", [(5e-4, 5, 100), (1e-4, 0, 50)])
def test_rates_are_the_authors_lambda_lr_stepped_per_epoch(peak, warmup, epochs):
    ours = schedule(peak, warmup, epochs)
    updates = 0
    for epoch, expected in enumerate(authors_rates(peak, warmup, epochs), start=1):
        ours.step_begin_epoch(epoch)
        for _ in range(3):  # constant within the epoch
            updates += 1
            assert ours.step_update(updates) == pytest.approx(expected, rel=1e-12)


def test_an_unbounded_run_is_refused():
    with pytest.raises(ValueError, match="needs optimization.max_epoch"):
        schedule(1e-4, 5, 0)


@pytest.mark.slow
def test_fairseq_training_changes_the_rate_only_between_epochs(tmp_path):
    data = make_synthetic_manifests(tmp_path)
    upstream = make_tiny_teacher(tmp_path / "up.pt")
    log = finetune(
        data, upstream, tmp_path / "ckpt",
        "lr_scheduler._name=epoch_cosine", "~lr_scheduler.warmup_updates",
        "~lr_scheduler.warmup_init_lr", "+lr_scheduler.warmup_epochs=2",
        "optimization.max_epoch=4", "optimization.max_update=0", "common.log_interval=1",
        "checkpoint.no_save=true", "dataset.validate_interval=100",
    )  # fmt: skip
    rates = {}
    for epoch, lr in re.findall(r"epoch (\d+): +\d+ / \d+ .*? lr=([0-9.e-]+)", log):
        rates.setdefault(int(epoch), set()).add(float(lr))
    assert sorted(rates) == [1, 2, 3, 4] and all(len(r) == 1 for r in rates.values()), rates
    expected = authors_rates(0.01, 2, 4)
    assert [rates[e].pop() for e in (1, 2, 3, 4)] == pytest.approx(expected, rel=1e-3)
