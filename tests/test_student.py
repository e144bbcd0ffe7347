"""The Vesper student: layer maps, initialisation and parameter counts."""

import logging

import pytest
import torch

from vesper_fairseq.modules.student import build_student, teacher_layer_map
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import large_wavlm_config, tiny_wavlm_config

VESPER_4_PARAMS = 63_515_872
VESPER_12_PARAMS = 164_289_952
WAVLM_LARGE_PARAMS = 315_453_120


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return WavLMEncoder(tiny_wavlm_config(encoder_layers=8)).eval()


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_teacher_layer_maps():
    assert teacher_layer_map(24, 4, "uniform_extract") == [[1], [7], [13], [19]]
    assert teacher_layer_map(24, 12, "uniform_extract") == [[i] for i in range(1, 24, 2)]
    assert teacher_layer_map(24, 4, "uniform_average") == [
        list(range(s, s + 6)) for s in (1, 7, 13, 19)
    ]
    assert teacher_layer_map(24, 24, "uniform_average") == [[i] for i in range(1, 25)]
    assert teacher_layer_map(24, 3, "custom_extract", [2, 12, 24]) == [[2], [12], [24]]
    assert teacher_layer_map(24, 2, "random") == [[], []]
    with pytest.raises(ValueError, match="student layers <= teacher layers"):
        teacher_layer_map(4, 5, "uniform_extract")
    with pytest.raises(ValueError, match="in 1..24"):
        teacher_layer_map(24, 2, "custom_extract", [0, 24])
    with pytest.raises(ValueError, match="needs 2 teacher layers"):
        teacher_layer_map(24, 2, "custom_extract", [3])
    with pytest.raises(ValueError, match="init must be one of"):
        teacher_layer_map(24, 2, "distill")


def test_full_depth_student_reproduces_the_teacher_exactly(teacher):
    student = build_student(teacher, teacher.num_layers).eval()
    source = torch.randn(2, 5000)
    padding_mask = torch.zeros(source.shape, dtype=torch.bool)
    padding_mask[1, 3000:] = True
    with torch.no_grad():
        ref = teacher.layer_results(source, padding_mask)
        out = student.layer_results(source, padding_mask)
    assert len(out) == len(ref) == 9
    for a, b in zip(out, ref):
        assert torch.equal(a, b)


def test_uniform_extract_copies_layers_and_everything_outside(teacher, caplog):
    with caplog.at_level(logging.INFO, logger="vesper_fairseq.modules.student"):
        student = build_student(teacher, 4)
    assert student.teacher_layer_map == [[1], [3], [5], [7]]
    assert "student layer 2 <- teacher layers [3]" in caplog.text
    assert student.cfg.encoder_layers == 4 and not student.cfg.encoder_layer_norm
    teacher_state = teacher.state_dict()
    for key, value in student.state_dict().items():
        if key.startswith("encoder.layers."):
            index = int(key.split(".")[2])
            rest = key.split(".", 3)[3]
            source = f"encoder.layers.{2 * index}.{rest}"
            ref = (
                teacher_state["encoder.layers.0." + rest]
                if "relative" in key
                else teacher_state[source]
            )
        else:
            ref = teacher_state[key]
        assert torch.equal(value, ref), key
    assert "encoder.layer_norm.weight" not in student.state_dict()
    source = torch.randn(1, 4000)
    with torch.no_grad():  # same input and same first layer -> same first outputs
        s, t = student.layer_results(source), teacher.layer_results(source)
    assert torch.equal(s[0], t[0]) and torch.equal(s[1], t[1])
    assert not torch.allclose(s[2], t[2])


def test_uniform_average_and_custom_extract(teacher):
    average = build_student(teacher, 2, init="uniform_average")
    key = "fc1.weight"
    ref = torch.stack([teacher.encoder.layers[i].get_parameter(key) for i in range(4, 8)]).mean(0)
    torch.testing.assert_close(average.encoder.layers[1].get_parameter(key), ref)
    custom = build_student(teacher, 2, init="custom_extract", layers=[8, 2])
    assert torch.equal(
        custom.encoder.layers[0].get_parameter(key), teacher.encoder.layers[7].get_parameter(key)
    )
    rel = "self_attn.relative_attention_bias.weight"
    assert torch.equal(
        custom.encoder.layers[0].get_parameter(rel), teacher.encoder.layers[0].get_parameter(rel)
    )


def test_random_init_copies_only_what_is_outside_the_layers(teacher):
    student = build_student(teacher, 2, init="random")
    assert torch.equal(student.mask_emb, teacher.mask_emb)
    assert torch.equal(student.encoder.pos_conv[0].weight_v, teacher.encoder.pos_conv[0].weight_v)
    for i in range(2):
        assert not torch.equal(
            student.encoder.layers[i].fc1.weight, teacher.encoder.layers[i].fc1.weight
        )


def test_post_ln_teacher_keeps_its_encoder_layer_norm():
    teacher = WavLMEncoder(
        tiny_wavlm_config(extractor_mode="default", layer_norm_first=False)
    ).eval()
    student = build_student(teacher, 2)
    assert torch.equal(student.encoder.layer_norm.weight, teacher.encoder.layer_norm.weight)
    source = torch.randn(1, 4000)
    with torch.no_grad():
        assert torch.equal(student.layer_results(source)[1], teacher.layer_results(source)[1])


def test_vesper_parameter_counts_on_meta_device():
    """All parameters of the student (CNN, mask_emb, projections, positional conv, layers,
    relative bias table); no pretraining heads and no encoder.layer_norm (Vesper drops it)."""
    with torch.device("meta"):
        teacher = WavLMEncoder(large_wavlm_config())
    assert _num_params(teacher) == WAVLM_LARGE_PARAMS
    vesper4 = build_student(teacher, 4)
    vesper12 = build_student(teacher, 12)
    assert vesper4.mask_emb.is_meta
    assert _num_params(vesper4) == VESPER_4_PARAMS
    assert _num_params(vesper12) == VESPER_12_PARAMS
    assert vesper4.teacher_layer_map == [[1], [7], [13], [19]]
