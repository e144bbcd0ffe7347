"""Model `vesper`: student from the teacher, frozen CNN, masking wired into the encoder."""

import pytest
import torch
from fairseq_runs import REPO, make_tiny_teacher
from omegaconf import OmegaConf

from vesper_fairseq.formats import load_encoder
from vesper_fairseq.models.vesper import VesperConfig, VesperModel


def build(tmp_path, **cfg):
    teacher = make_tiny_teacher(tmp_path / "teacher.pt")
    cfg = OmegaConf.structured(VesperConfig(teacher_path=str(teacher), mask_seed=3, **cfg))
    return VesperModel.build_model(cfg, task=None), load_encoder(teacher), cfg


def batch(lengths=(16000, 11000, 7000)):
    g = torch.Generator().manual_seed(0)
    source = torch.randn(len(lengths), max(lengths), generator=g)
    padding = torch.arange(max(lengths))[None] >= torch.tensor(lengths)[:, None]
    return source.masked_fill(padding, 0.0), padding


def test_student_layers_come_from_the_teacher_and_the_cnn_is_frozen(tmp_path):
    model, teacher, cfg = build(tmp_path, num_layers=2)
    student, source = model.encoder.state_dict(), teacher.state_dict()
    for i, t in enumerate((1, 3)):  # uniform extract of 2 from 4: teacher layers 1 and 3
        assert torch.equal(
            student[f"encoder.layers.{i}.fc1.weight"], source[f"encoder.layers.{t - 1}.fc1.weight"]
        )
    assert not any(p.requires_grad for p in model.encoder.feature_extractor.parameters())
    assert (
        model.encoder.post_extract_proj.weight.requires_grad
        and model.encoder.mask_emb.requires_grad
    )
    assert cfg.student["encoder_layers"] == 2 and cfg.teacher_dim == teacher.embed_dim


def test_reload_needs_no_teacher_file(tmp_path):
    model, _, cfg = build(tmp_path, num_layers=2)
    (tmp_path / "teacher.pt").unlink()
    again = VesperModel.build_model(cfg, task=None)
    again.load_state_dict(model.state_dict())
    source, padding = batch()
    model.eval(), again.eval()
    a = model(source, padding, mask=False)["predictions"]["high"]
    b = again(source, padding, mask=False)["predictions"]["high"]
    torch.testing.assert_close(a, b)


def test_forward_masks_real_frames_and_feeds_the_heads(tmp_path):
    model, _, _ = build(
        tmp_path, num_layers=4, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0
    )
    source, padding = batch()
    out = model(source, padding)
    frames = out["padding_mask"]
    for key in ("stage1_mask", "stage2_mask"):
        assert out[key].shape == frames.shape and not (out[key] & frames).any()
    assert 0.3 < out["stage1_mask"][0].float().mean() < 0.8
    assert set(out["predictions"]) == {"low", "high", "cross"}
    assert model.source_layers == {"low": 2, "high": 4, "cross": 4} and model.stage2_layer == 2
    # masking changes what the heads see; without masks the output is the plain encoder's
    unmasked = model(source, padding, mask=False)["predictions"]["low"]
    assert not torch.allclose(unmasked, out["predictions"]["low"])
    plain = model.encoder(source, padding, normalize=False).layer_results[2]
    torch.testing.assert_close(unmasked, model.heads["low"](plain))


def test_masks_are_reproducible_per_update(tmp_path):
    model, _, _ = build(tmp_path, num_layers=2)
    source, padding = batch()
    model.set_num_updates(7)
    first = model.compute_masks(source, padding)
    model.set_num_updates(7)
    again = model.compute_masks(source, padding)
    model.set_num_updates(8)
    other = model.compute_masks(source, padding)
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])


def test_student_dropouts_are_the_authors_whatever_the_teacher_says(tmp_path):
    teacher = make_tiny_teacher(
        tmp_path / "t.pt",
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        dropout_input=0.1,
        encoder_layerdrop=0.05,
    )
    cfg = OmegaConf.structured(VesperConfig(teacher_path=str(teacher), num_layers=2))
    encoder = VesperModel.build_model(cfg, task=None).encoder
    assert encoder.dropout_input.p == 0.0 and encoder.cfg.encoder_layerdrop == 0.0
    assert encoder.encoder.dropout.p == 0.1  # after the positional conv
    for layer in encoder.encoder.layers:
        assert layer.self_attn.dropout == 0.1  # attention probabilities
        assert layer.dropout1.p == 0.1 and layer.dropout3.p == 0.1  # after attention, fc2
        assert layer.dropout2.p == 0.1  # after the FFN activation
    assert cfg.student["activation_dropout"] == 0.1 and cfg.student["dropout_input"] == 0.0
    for name in ("vesper4", "vesper12"):
        recipe = OmegaConf.load(REPO / "examples" / "pretraining" / f"{name}.yaml")
        model = recipe.model
        assert (model.dropout, model.attention_dropout, model.activation_dropout) == (0.1,) * 3
        assert model.dropout_input == 0.0 and model.encoder_layerdrop == 0.0
        assert recipe.optimizer.adam_betas == "(0.9, 0.999)"
        assert str(model.masking.variant) == "fixed"


def test_stage2_masks_a_layer_after_stage1(tmp_path):
    with pytest.raises(ValueError, match="stage2_layer=0 is not in"):
        build(tmp_path, num_layers=2, stage2_layer=0)
    with pytest.raises(ValueError, match="needs 2 layers or more"):
        build(tmp_path, num_layers=1)
