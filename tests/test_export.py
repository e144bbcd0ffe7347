"""Encoders out of fairseq checkpoints: Vesper folder, original WavLM .pt, HF folder."""

import argparse
import datetime
import json
import logging
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fairseq_runs import BIN, REPO, make_tiny_teacher, run, write_audio_manifest
from hf_wavlm import hf_layer_outputs
from safetensors.torch import load_file

from vesper_fairseq.cli import export as export_cli
from vesper_fairseq.cli.fairseq_command import hydra_train_command
from vesper_fairseq.data.teacher import FrozenTeacher
from vesper_fairseq.formats import load_encoder
from vesper_fairseq.modules.student import build_student
from vesper_fairseq.safe_load import CheckpointError, load_checkpoint

ATOL = 1e-5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real 2-update fairseq `vesper` checkpoint (2-layer student of a 4-layer teacher)."""
    root = tmp_path_factory.mktemp("export")
    data = write_audio_manifest(root / "data", {"train": 6, "valid": 2}, seconds=(0.6, 2.0))
    teacher = make_tiny_teacher(root / "teacher.pt")
    save = root / "ckpt"
    overrides = [f"task.data={data}", f"task.teacher_path={teacher}"]
    overrides += ["optimization.max_update=2", "dataset.disable_validation=true"]
    run(hydra_train_command(REPO / "examples" / "pretraining", "tiny", save, *overrides), root)
    return {"root": root, "data": data, "teacher": teacher, "ckpt": save / "checkpoint_last.pt"}


@pytest.fixture(scope="module")
def classifier(trained):
    """A real 1-update fairseq `vesper_classifier` checkpoint over the vesper checkpoint."""
    data, root = trained["data"], trained["root"]
    save = root / "cls"
    for split, rows in (("train", 6), ("valid", 2)):
        (data / f"{split}.emo").write_text("".join(["ang\n", "neu\n"][i % 2] for i in range(rows)))
    (data / "dict.emo.txt").write_text("ang 4\nneu 4\n")
    overrides = [f"task.data={data}", f"model.upstream_path={trained['ckpt']}"]
    overrides += ["optimization.max_update=1", "optimization.max_epoch=1"]
    run(hydra_train_command(REPO / "examples" / "finetuning", "tiny", save, *overrides), root)
    return save / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def student(trained):
    return load_encoder(trained["ckpt"])


def raw_state(path):
    return load_checkpoint(path)  # weights only: the project writes plain types


def layer_results(encoder, wave):
    with torch.no_grad():
        return encoder.layer_results(wave)


def assert_same_layers(a, b, atol=ATOL):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=atol)


def export(ckpt, to, out):
    export_cli.main([str(ckpt), "--to", to, "--out", str(out)])
    return out


WAVE = torch.randn(1, 12000, generator=torch.Generator().manual_seed(3))


def test_fairseq_checkpoint_gives_the_student_without_heads(trained, student):
    state = raw_state(trained["ckpt"])
    assert any(k.startswith("heads.") for k in state["model"])
    assert student.num_layers == 2 and not student.cfg.encoder_layer_norm
    expected = {k[len("encoder.") :]: v for k, v in state["model"].items() if k[:8] == "encoder."}
    assert sorted(student.state_dict()) == sorted(expected)
    assert all(torch.equal(v, expected[k]) for k, v in student.state_dict().items())


def test_fairseq_checkpoint_matches_the_model_fairseq_itself_loads(trained, student):
    from fairseq import checkpoint_utils

    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([str(trained["ckpt"])])
    reference = models[0].encoder.eval()
    assert_same_layers(layer_results(student, WAVE), layer_results(reference, WAVE), atol=0)


@pytest.mark.parametrize("to", ["vesper", "wavlm", "hf"])
def test_every_export_round_trips_layer_by_layer(trained, student, tmp_path, to):
    out = export(trained["ckpt"], to, tmp_path / ("model.pt" if to == "wavlm" else "model"))
    loaded = load_encoder(out)
    assert loaded.num_layers == 2 and not loaded.training
    assert_same_layers(layer_results(loaded, WAVE), layer_results(student, WAVE))


def test_vesper_folder_schema_and_no_pickle(trained, student, tmp_path, monkeypatch):
    out = export(trained["ckpt"], "vesper", tmp_path / "v4")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "vesper-encoder" and config["format_version"] == 1
    assert config["encoder"] == student.cfg.to_dict() and config["num_layers"] == 2
    assert config["source"]["checkpoint"] == str(trained["ckpt"].resolve())
    tensors = load_file(out / "model.safetensors")
    assert set(tensors) == set(student.state_dict()) - {"mask_emb"}  # no heads, no mask_emb
    assert all(v.dtype == torch.float32 for v in tensors.values())

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load (pickle) used for a Vesper folder")

    monkeypatch.setattr(torch, "load", no_pickle)
    assert_same_layers(layer_results(load_encoder(out), WAVE), layer_results(student, WAVE))


def test_wavlm_export_is_an_original_checkpoint_and_a_teacher(trained, student, tmp_path):
    out = export(trained["ckpt"], "wavlm", tmp_path / "vesper.pt")
    raw = torch.load(out, weights_only=True)
    assert set(raw) == {"cfg", "model"} and raw["cfg"]["encoder_layers"] == 2
    assert not any(k.startswith("heads.") for k in raw["model"]) and "mask_emb" in raw["model"]
    # the original WavLM code always builds encoder.layer_norm: an identity one is written
    assert raw["cfg"]["encoder_layer_norm"] is True
    assert torch.equal(raw["model"]["encoder.layer_norm.weight"], torch.ones(64))
    assert torch.equal(raw["model"]["encoder.layer_norm.bias"], torch.zeros(64))
    teacher = FrozenTeacher.from_path(out)
    targets, _ = teacher(student.normalize_waveform(WAVE), None, [1, 2])  # takes normed input
    with torch.no_grad():
        expected = student.layer_results(WAVE)
    for layer in (1, 2):
        torch.testing.assert_close(targets[layer], expected[layer], rtol=0, atol=ATOL)
    again = build_student(teacher.encoder, 1)  # a student of the exported encoder
    assert again.num_layers == 1 and not again.cfg.encoder_layer_norm


def test_hf_export_loads_in_transformers_layer_by_layer(trained, student, tmp_path):
    from transformers import AutoFeatureExtractor, WavLMModel

    out = export(trained["ckpt"], "hf", tmp_path / "hf")
    model, info = WavLMModel.from_pretrained(out, output_loading_info=True)
    assert all(not info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    model.eval()
    extractor = AutoFeatureExtractor.from_pretrained(out)
    assert extractor.do_normalize is True and extractor.sampling_rate == 16000
    normed = student.normalize_waveform(WAVE)  # HF models take the preprocessed waveform
    ours = layer_results(student, WAVE)
    assert_same_layers(hf_layer_outputs(model, normed), ours)
    with torch.no_grad():
        out_hf = model(normed, output_hidden_states=True)
    # last_hidden_state is the identity-initialised encoder LayerNorm of h_N, not h_N
    h_n = ours[-1]
    expected_last = F.layer_norm(h_n, h_n.shape[-1:], eps=1e-5)
    torch.testing.assert_close(out_hf.last_hidden_state, expected_last, rtol=0, atol=1e-4)
    assert (out_hf.last_hidden_state - h_n).abs().max() > 1e-2
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:  # 5.x: raw per-layer outputs
        assert_same_layers(list(out_hf.hidden_states), ours)


def test_pickled_fairseq_checkpoint_needs_trust(trained, student, tmp_path, caplog):
    state = raw_state(trained["ckpt"])
    state["args"] = argparse.Namespace(arch="vesper")  # plain data: read weights-only
    state["extra_state"]["val_loss"] = np.float64(0.5)
    path = tmp_path / "checkpoint_best.pt"
    torch.save(state, path)
    assert_same_layers(layer_results(load_encoder(path), WAVE), layer_results(student, WAVE))
    state["extra_state"]["elapsed"] = datetime.timedelta(seconds=1)  # other classes: opt-in
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="datetime.timedelta.*allow_pickle=True"):
        load_encoder(path)
    with caplog.at_level(logging.WARNING):
        loaded = load_encoder(path, allow_pickle=True)
    assert "weights_only=False" in caplog.text and "trusted" in caplog.text
    assert_same_layers(layer_results(loaded, WAVE), layer_results(student, WAVE), atol=0)


def test_stored_student_config_needs_no_teacher(trained, student, tmp_path):
    state = raw_state(trained["ckpt"])
    assert state["cfg"]["model"]["student"] == student.cfg.to_dict()
    state["cfg"]["model"]["teacher_path"] = str(tmp_path / "gone.pt")
    torch.save(state, tmp_path / "stored.pt")
    loaded = load_encoder(tmp_path / "stored.pt")
    assert_same_layers(layer_results(loaded, WAVE), layer_results(student, WAVE), atol=0)

    state["cfg"]["model"]["student"] = None
    torch.save(state, tmp_path / "orphan.pt")
    with pytest.raises(CheckpointError, match=r"model.student \(the encoder's config\) is not in"):
        load_encoder(tmp_path / "orphan.pt")


def test_real_classifier_checkpoint_exports_its_frozen_upstream(classifier, student, tmp_path):
    assert any(k.startswith("head.") for k in raw_state(classifier)["model"])
    out = export(classifier, "wavlm", tmp_path / "upstream.pt")
    raw = torch.load(out, weights_only=True)
    assert not any(k.startswith(("head.", "upstream.")) for k in raw["model"])
    assert_same_layers(layer_results(load_encoder(out), WAVE), layer_results(student, WAVE))


def test_classifier_normalize_override_is_exported(trained, student, tmp_path):
    state = raw_state(trained["ckpt"])
    model = {"upstream." + k[8:]: v for k, v in state["model"].items() if k[:8] == "encoder."}
    model["head.proj.weight"] = torch.randn(8, 64)
    state["model"] = model
    state["cfg"]["model"] = {
        "_name": "vesper_classifier",
        "upstream_path": str(trained["ckpt"]),
        "upstream": student.cfg.to_dict(),
        "normalize": False,
    }
    path = tmp_path / "classifier.pt"
    torch.save(state, path)
    out = export(path, "vesper", tmp_path / "upstream")
    loaded = load_encoder(out)
    assert loaded.cfg.normalize is False  # what the classifier ran with
    assert set(load_file(out / "model.safetensors")) == set(student.state_dict()) - {"mask_emb"}
    normed = student.normalize_waveform(WAVE)
    assert_same_layers(layer_results(loaded, normed), layer_results(student, WAVE))


def test_bad_exports_and_folders_get_clear_errors(trained, tmp_path):
    out = export(trained["ckpt"], "vesper", tmp_path / "v")
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(dict(config, format_version=99)))
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_encoder(out)
    (out / "config.json").write_text(json.dumps(dict(config, format="something")))
    with pytest.raises(CheckpointError, match="not 'vesper-encoder'"):
        load_encoder(out)
    (out / "config.json").write_text(json.dumps(config))
    (out / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_encoder(out)

    state = raw_state(trained["ckpt"])
    state["cfg"]["model"]["_name"] = "wav2vec2"
    torch.save(state, tmp_path / "w2v.pt")
    with pytest.raises(SystemExit, match="model 'wav2vec2'"):
        export(tmp_path / "w2v.pt", "vesper", tmp_path / "x")


def test_export_leaves_no_temporary_files(trained, tmp_path):
    export(trained["ckpt"], "hf", tmp_path / "hf")
    export(trained["ckpt"], "hf", tmp_path / "hf")  # again, over the first one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]
    names = sorted(p.name for p in (tmp_path / "hf").iterdir())
    assert names == ["config.json", "model.safetensors", "preprocessor_config.json"]


@pytest.mark.slow
def test_vesper_export_command_line(trained, tmp_path):
    out = tmp_path / "cli"
    log = run([BIN / "vesper-export", trained["ckpt"], "--to", "vesper", "--out", out], tmp_path)
    assert "exported 2-layer encoder" in log
    shutil.copytree(out, tmp_path / "copy")
    assert load_encoder(tmp_path / "copy").num_layers == 2
    proc_log = run([BIN / "vesper-export", "--help"], tmp_path)
    assert "--to" in proc_log
