"""No code from a checkpoint runs unless the user opted in for that file, in every role."""

import argparse
import re

import numpy as np
import pytest
import soundfile as sf
import torch
from classifier_fixtures import LABELS, make_tiny_classifier
from fairseq import checkpoint_utils
from fairseq_runs import make_tiny_teacher

import vesper_fairseq  # noqa: F401  (guards fairseq's checkpoint reads)
from vesper_fairseq import EmotionClassifier
from vesper_fairseq.cli import dump_teacher, evaluate, export, extract, predict
from vesper_fairseq.formats import load_encoder
from vesper_fairseq.models.vesper import VesperConfig, VesperModel
from vesper_fairseq.models.vesper_classifier import VesperClassifier, VesperClassifierConfig
from vesper_fairseq.safe_load import CheckpointError, load_checkpoint
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask


class Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def wav(folder) -> str:
    sf.write(folder / "a.wav", np.zeros(8000, dtype=np.float32), 16000)
    return str(folder / "a.wav")


def data(folder) -> str:
    (folder / "train.tsv").write_text(f"{folder}\na.wav\t8000\n")
    wav(folder)
    return str(folder)


@pytest.fixture
def planted(tmp_path):
    """A fairseq-looking checkpoint whose optimizer history runs code when unpickled."""
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    state = {
        "cfg": {"model": {"_name": "vesper"}, "task": {}},
        "model": {},
        "optimizer_history": [Payload(marker)],
    }
    torch.save(state, path)
    return path, marker


def test_load_encoder_refuses_and_opt_in_unpickles(planted):
    path, marker = planted
    with pytest.raises(
        CheckpointError, match=r"evil\.pt: .*global (builtins\.)?exec\).*allow_pickle=True"
    ):
        load_encoder(path)
    assert not marker.exists()
    with pytest.raises(CheckpointError):  # the payload ran; the file is no encoder anyway
        load_encoder(path, allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize(
    "cli, argv",
    [
        (export, lambda p, t: [str(p), "--to", "vesper", "--out", str(t / "out")]),
        (extract, lambda p, t: ["--encoder", str(p), "--audio", wav(t), "--out", str(t / "o")]),
        (dump_teacher, lambda p, t: [data(t), "--teacher", str(p), "--out", str(t / "store")]),
    ],
)
def test_console_scripts_refuse(planted, tmp_path, cli, argv):
    path, marker = planted
    with pytest.raises(SystemExit, match=r"evil\.pt: .*--trust-checkpoint"):
        cli.main(argv(path, tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize(
    "cli, argv",
    [
        (evaluate, lambda p, t: [str(p), "--out", str(t / "eval")]),
        (predict, lambda p, t: [str(p), wav(t), "--out", str(t / "p.tsv")]),
    ],
)
def test_classifier_scripts_refuse(planted, tmp_path, capsys, cli, argv):
    path, marker = planted
    assert cli.main(argv(path, tmp_path)) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        EmotionClassifier.from_checkpoint(path)
    assert not marker.exists()


def test_teacher_path_refused_by_task_and_model(planted, tmp_path):
    path, marker = planted
    task = VesperPretrainingTask(
        VesperPretrainingConfig(data=str(tmp_path), teacher_path=str(path))
    )
    with pytest.raises(CheckpointError, match="task.trust_teacher=true"):
        _ = task.teacher
    with pytest.raises(CheckpointError, match="task.trust_teacher=true"):
        VesperModel._teacher(VesperConfig(teacher_path=str(path)), None)
    assert not marker.exists()


def test_upstream_path_refused(planted):
    path, marker = planted
    with pytest.raises(CheckpointError, match="model.trust_upstream=true"):
        VesperClassifier.build_model(VesperClassifierConfig(upstream_path=str(path)))
    assert not marker.exists()


def test_fairseq_resume_reads_weights_only(planted):
    """trainer.load_checkpoint (resuming, finetune_from_model) reads through this function."""
    path, marker = planted
    with pytest.raises(CheckpointError, match="task.trust_restore_file=true"):
        checkpoint_utils.load_checkpoint_to_cpu(str(path))
    assert not marker.exists()


def test_plain_data_of_fairseq_checkpoints_loads_weights_only(tmp_path):
    """Legacy fairseq args and numpy scalars are data, not code: allowed without opt-in."""
    path = tmp_path / "plain.pt"
    torch.save({"args": argparse.Namespace(arch="vesper"), "best": np.float64(0.5)}, path)
    state = load_checkpoint(path)
    assert state["args"].arch == "vesper" and state["best"] == 0.5


def test_evaluate_says_what_a_wrong_file_is(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(500))
    wavlm = make_tiny_teacher(tmp_path / "wavlm.pt")
    for path, problem in [(garbage, "not a PyTorch checkpoint (neither a zip archive"),
                          (wavlm, "not a fairseq checkpoint")]:  # fmt: skip
        assert evaluate.main([str(path), "--out", str(tmp_path / "eval")]) == 2
        err = capsys.readouterr().err
        assert f"{path}: {problem}" in err and "Traceback" not in err


def test_evaluate_does_not_let_a_checkpoint_opt_in_for_its_upstream(tmp_path, capsys):
    """A classifier checkpoint whose config drops model.upstream, names a planted file as
    model.upstream_path and says model.trust_upstream=true: vesper-evaluate must not load it."""
    marker, evil = tmp_path / "MARKER", tmp_path / "upstream.pt"
    torch.save({"model": Payload(marker)}, evil)
    path = make_tiny_classifier(tmp_path / "checkpoint_best.pt")
    state = torch.load(path, weights_only=True)
    state["cfg"]["model"].update(upstream=None, upstream_path=str(evil), trust_upstream=True)
    torch.save(state, path)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "test.emo").write_text("ang\n")
    (folder / "dict.emo.txt").write_text("".join(f"{label} 1\n" for label in LABELS))
    (folder / "test.tsv").write_text(f"{folder}\na.wav\t8000\n")
    wav(folder)
    assert evaluate.main([str(path), "--data", str(folder), "--out", str(tmp_path / "e")]) == 2
    assert "model.upstream (the encoder's config) is not in" in capsys.readouterr().err
    assert not marker.exists()


def not_checkpoints(folder) -> dict:
    """Files people pass for a checkpoint, and what the refusal must call them."""
    import onnx
    from onnx import TensorProto, helper

    files = {"empty.pt": (b"", "an empty file"), "notes.pt": (b"101 epochs\n", "a text file")}
    files["lfs.pt"] = (b"version https://git-lfs.github.com/spec/v1\n", "a Git LFS pointer")
    for name, (content, _) in files.items():
        (folder / name).write_bytes(content)
    (folder / wav(folder)).rename(folder / "speech.pt")
    files["speech.pt"] = (None, "a WAV audio file")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph, producer_name="pytorch"), folder / "model.pt")
    files["model.pt"] = (None, "an ONNX model: run it with onnxruntime")
    np.save(folder / "array.npy", np.zeros(3))
    (folder / "array.npy").rename(folder / "array.pt")
    files["array.pt"] = (None, "a NumPy .npy array")
    return {folder / name: what for name, (_, what) in files.items()}


def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is(tmp_path, capsys):
    """Checked before torch.load, whose own errors ('101', 'EOFError', 'pop from empty list',
    'Unsupported operand 8') say nothing to the user; every reader gets the same message."""
    for path, what in not_checkpoints(tmp_path).items():
        expected = f"{path}: not a PyTorch checkpoint ({what}"
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(path)
        assert str(e.value).startswith(expected)
        with pytest.raises(CheckpointError, match=re.escape(expected)):
            load_encoder(path)
        with open(path, "rb") as f:  # fairseq's reads pass an open file
            with pytest.raises(CheckpointError, match=re.escape(what)):
                load_checkpoint(f)
            assert f.tell() == 0
        with pytest.raises(CheckpointError, match=re.escape(expected)):
            checkpoint_utils.load_checkpoint_to_cpu(str(path))
        assert predict.main([str(path), str(tmp_path), "--out", str(tmp_path / "p.tsv")]) == 2
        assert expected in capsys.readouterr().err
        assert evaluate.main([str(path), "--out", str(tmp_path / "e")]) == 2
        assert expected in capsys.readouterr().err


def test_the_legacy_torch_save_format_still_loads(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(2))
    with open(path, "rb") as f:
        assert torch.equal(load_checkpoint(f)["w"], torch.ones(2))
    import pickle

    with open(tmp_path / "plain.pt", "wb") as f:
        pickle.dump({"w": [1.0]}, f)
    with pytest.raises(CheckpointError, match=r"\(a plain Python pickle, not one torch.save"):
        load_checkpoint(tmp_path / "plain.pt")
