"""The demo's stages record their inputs: a stage whose inputs changed is redone, saying so."""

import importlib.util

from fairseq_runs import REPO, make_tiny_teacher
from safetensors.torch import load_file

from vesper_fairseq.cli import export as export_cli
from vesper_fairseq.formats import load_encoder


def load_quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", REPO / "examples/quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_stage_is_redone_when_its_input_file_changed(tmp_path, capsys, monkeypatch):
    quickstart = load_quickstart()
    # vesper-export in this process rather than in a subprocess (same code, faster)
    in_process = lambda cmd, log: export_cli.main([str(c) for c in cmd[1:]])  # noqa: E731
    monkeypatch.setattr(quickstart, "run", in_process)
    checkpoint, out = tmp_path / "checkpoint.pt", tmp_path / "vesper"
    make_tiny_teacher(checkpoint, seed=0)
    quickstart.export(checkpoint, out)
    assert "==> export: the pretrained encoder as safetensors + JSON\n" in capsys.readouterr().out
    quickstart.export(checkpoint, out)
    assert "export: the pretrained encoder as safetensors + JSON: done already" in (
        capsys.readouterr().out
    )
    make_tiny_teacher(checkpoint, seed=1)  # same file name, other weights
    quickstart.export(checkpoint, out)
    assert "inputs changed (the checkpoint file changed (checkpoint_sha256))" in (
        capsys.readouterr().out
    )
    exported = load_file(out / "model.safetensors")
    expected = load_encoder(checkpoint).state_dict()
    assert all((exported[k] == expected[k]).all() for k in exported)
