"""Span masks come with the batch from the data pipeline and depend only on (seed, epoch,
utterance): not on batch size, world size, update_freq or a resume."""

import pickle

import pytest
import torch
from fairseq_runs import make_tiny_teacher, write_audio_manifest
from omegaconf import OmegaConf

from vesper_fairseq.models.vesper import VesperConfig
from vesper_fairseq.modules.masking import compute_vesper_masks
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

NUM = 12


@pytest.fixture(scope="module")
def task_and_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("span_masks")
    data = write_audio_manifest(root / "data", {"train": NUM, "valid": 3}, seconds=(0.6, 3.0))
    teacher = make_tiny_teacher(root / "teacher.pt")
    task_cfg = VesperPretrainingConfig(data=str(data), teacher_path=str(teacher), seed=1)
    task = VesperPretrainingTask(OmegaConf.structured(task_cfg))
    task.load_dataset("valid")  # fairseq loads validation data before it builds the model
    model_cfg = VesperConfig(teacher_path=str(teacher), num_layers=2, mask_seed=5)
    model_cfg = OmegaConf.merge(OmegaConf.structured(model_cfg), {"_name": "vesper"})
    model = task.build_model(model_cfg)
    task.load_dataset("train")
    return task, model


def masks_by_id(dataset, batches):
    """{utterance index: (stage-1 mask, stage-2 mask) over its real frames}."""
    out = {}
    for ids in batches:
        batch = dataset.collater([dataset[i] for i in ids])
        net_input = batch["net_input"]
        frames = (~net_input["padding_mask"]).sum(1).sub(400).div(320, rounding_mode="floor") + 1
        for row, i in enumerate(batch["id"].tolist()):
            n = int(frames[row])
            out[i] = (net_input["stage1_mask"][row, :n], net_input["stage2_mask"][row, :n])
            assert not net_input["stage1_mask"][row, n:].any()
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for i in a:
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1]), i


def test_masks_do_not_depend_on_batching_or_world_size(task_and_model):
    task, _ = task_and_model
    dataset = task.dataset("train")
    ids = list(range(NUM))
    whole = masks_by_id(dataset, [ids])
    assert sum(m[0].sum() for m in whole.values()) > 0
    assert_same(whole, masks_by_id(dataset, [[i] for i in ids]))  # batch size 1
    for world in (2, 3, 4):  # ranks see every world-th utterance, in batches of 2 (update_freq)
        shards = [ids[rank::world] for rank in range(world)]
        batches = [s[k : k + 2] for s in shards for k in range(0, len(s), 2)]
        assert_same(whole, masks_by_id(dataset, batches[::-1]))
    dataset.set_epoch(2)
    other = masks_by_id(dataset, [ids])
    assert all(not torch.equal(other[i][0], whole[i][0]) for i in ids)
    dataset.set_epoch(1)  # a resumed run back in epoch 1
    assert_same(whole, masks_by_id(dataset, [ids[:5], ids[5:]]))


def test_masks_are_those_of_the_public_entry_with_one_seed_per_utterance(task_and_model):
    task, _ = task_and_model
    dataset = task.dataset("train")
    batch = dataset.collater([dataset[i] for i in (3, 7, 1)])
    net_input = batch["net_input"]
    seeds = [(5, 1, i) for i in (3, 7, 1)]
    expected = compute_vesper_masks(
        net_input["source"], net_input["padding_mask"], task.span_masks[0], seeds
    )
    assert torch.equal(net_input["stage1_mask"], expected[0])
    assert torch.equal(net_input["stage2_mask"], expected[1])
    # a plain config that spawned loader workers can unpickle (fairseq's choice enums cannot)
    assert pickle.loads(pickle.dumps(dataset.masking)) == dataset.masking
    assert dataset.masking.strategy == "emotion" and dataset.masking.variant == "fixed"
    # the validation set, loaded before the model was built, gets masks too
    valid = task.dataset("valid")
    assert "stage1_mask" in valid.collater([valid[0], valid[1]])["net_input"]


def test_loader_workers_see_each_new_epoch(task_and_model):
    task, _ = task_and_model
    dataset = task.dataset("train")
    iterator = task.get_batch_iterator(dataset, max_sentences=4, num_workers=1, seed=1)
    for epoch in (1, 2):
        seen = {}
        for batch in iterator.next_epoch_itr(shuffle=True):
            ids = batch["id"].tolist()
            dataset.set_epoch(epoch)
            expected = dataset.collater([dataset[i] for i in ids])["net_input"]
            assert torch.equal(batch["net_input"]["stage1_mask"], expected["stage1_mask"])
            assert torch.equal(batch["net_input"]["stage2_mask"], expected["stage2_mask"])
            seen.update(dict.fromkeys(ids))
        assert len(seen) == NUM


def test_model_uses_the_batch_masks_and_falls_back_without_them(task_and_model):
    task, model = task_and_model
    dataset = task.dataset("train")
    net_input = dataset.collater([dataset[i] for i in range(3)])["net_input"]
    out = model(**net_input)
    assert torch.equal(out["stage1_mask"], net_input["stage1_mask"])
    assert torch.equal(out["stage2_mask"], net_input["stage2_mask"])
    online = model(net_input["source"], net_input["padding_mask"])
    assert online["stage1_mask"].shape == net_input["stage1_mask"].shape
    assert online["stage1_mask"].any() and not torch.equal(
        online["stage1_mask"], net_input["stage1_mask"]
    )
