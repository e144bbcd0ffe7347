"""Vesper under bf16 autocast (float32 targets and losses), the online teacher in the batch's
dtype, and the torch.compile switch."""

import pytest
import torch
from fairseq_runs import make_tiny_teacher, write_audio_manifest
from omegaconf import OmegaConf

from vesper_fairseq.criterions.vesper_distill import VesperDistillConfig, VesperDistillCriterion
from vesper_fairseq.models.vesper import VesperConfig, VesperModel
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

CROP = 16000


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("precision")
    data = write_audio_manifest(root / "data", {"train": 4}, seconds=(0.6, 1.0))
    teacher = make_tiny_teacher(root / "teacher.pt")
    cfg = VesperPretrainingConfig(
        data=str(data), teacher_path=str(teacher), seed=1, max_sample_size=CROP
    )
    task = VesperPretrainingTask(OmegaConf.structured(cfg))
    task.load_dataset("train")
    return task


def _model(task, **overrides):
    cfg = VesperConfig(teacher_path=task.cfg.teacher_path, num_layers=2, mask_seed=1, **overrides)
    return VesperModel.build_model(OmegaConf.structured(cfg), task)


def _batch(task):
    dataset = task.dataset("train")
    return dataset.collater([dataset[i] for i in range(4)])


def _loss_and_grads(task, model, criterion, sample, autocast: bool):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss, _, log = criterion(model, sample)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return loss, grads


def test_student_trains_under_bf16_autocast_with_float32_losses(task):
    model = _model(task).eval()  # no dropout: both runs see the same network
    criterion = VesperDistillCriterion(VesperDistillConfig(), task)
    sample = task.add_teacher_targets(_batch(task))
    net_input = sample["net_input"]
    masks = model.compute_masks(net_input["source"], net_input["padding_mask"])
    net_input["stage1_mask"], net_input["stage2_mask"] = masks
    full, full_grads = _loss_and_grads(task, model, criterion, sample, autocast=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        predictions = model(**net_input)["predictions"]
    assert all(p.dtype == torch.bfloat16 for p in predictions.values())
    half, half_grads = _loss_and_grads(task, model, criterion, sample, autocast=True)
    assert half.dtype == torch.float32 and torch.isfinite(half)
    assert half.item() == pytest.approx(full.item(), rel=0.05)
    assert half_grads.keys() == full_grads.keys()
    for name, grad in half_grads.items():
        assert grad.dtype == torch.float32 and torch.isfinite(grad).all(), name
    cosine = torch.nn.functional.cosine_similarity(
        torch.cat([g.flatten() for g in half_grads.values()]),
        torch.cat([g.flatten() for g in full_grads.values()]),
        dim=0,
    )
    assert cosine > 0.95


def test_online_teacher_computes_in_the_batch_dtype(task):
    batch = _batch(task)["net_input"]
    seen = []
    layer = task.teacher.encoder.encoder.layers[0].fc1
    hook = layer.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    try:
        targets, _ = task.teacher(batch["source"].bfloat16(), batch["padding_mask"], [4])
        task.teacher(batch["source"], batch["padding_mask"], [4])
    finally:
        hook.remove()
    assert seen == [torch.bfloat16, torch.float32]
    assert targets[4].dtype == torch.float32
    assert layer.weight.dtype == torch.float32  # autocast: the teacher's weights stay float32


def test_compiled_encoder_gives_the_same_outputs_and_state_dict(task):
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    eager = _model(task).eval()
    compiled = _model(task, compile_encoder=True, compile_backend="eager").eval()
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    compiled.load_state_dict(eager.state_dict())
    net_input = _batch(task)["net_input"]
    counters.clear()
    with torch.no_grad():
        a = eager(net_input["source"], net_input["padding_mask"], mask=False)
        b = compiled(net_input["source"], net_input["padding_mask"], mask=False)
    assert counters["stats"]["unique_graphs"] > 0  # dynamo really traced the encoder
    for head in a["predictions"]:
        torch.testing.assert_close(b["predictions"][head], a["predictions"][head])
