"""Console scripts and training runs print their stage, progress and results, and
nothing that looks like an error when nothing is wrong."""

import importlib
import importlib.util
import logging
import re
import sys

import pytest
import torch
from fairseq.trainer import _catalog_shared_params
from fairseq_runs import REPO

from vesper_fairseq.cli import training_run
from vesper_fairseq.logging_setup import hide_absent_parameter_notices, quiet_fairseq_notices

ENTRY_POINTS = dict(re.findall(r'"([\w-]+) = ([\w.]+:\w+)"', (REPO / "setup.py").read_text()))


@pytest.mark.parametrize("script", sorted(ENTRY_POINTS))
def test_help_shows_the_defaults(script, capsys):
    module, func = ENTRY_POINTS[script].split(":")
    with pytest.raises(SystemExit) as stop:
        getattr(importlib.import_module(module), func)(["--help"])
    out = capsys.readouterr()
    assert stop.value.code == 0 and re.search(r"[([]default: ", out.out), out.out
    assert "tensorboardX" not in out.out + out.err and "(default: None)" not in out.out
    options = re.split(r"\n(?=  -)", out.out)  # one block per option
    assert not [o for o in options if len(re.findall(r"default", o, re.I)) > 1], "said twice"
    if script == "vesper-extract":  # options without a help text show theirs too
        assert "(default: float16)" in out.out and "(default: frame)" in out.out


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 4, 3, bias=False)
        self.norm = torch.nn.LayerNorm(4, elementwise_affine=False)
        self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
        self.b.weight = self.a.weight  # truly shared


def test_absent_parameters_are_not_reported_as_shared_but_shared_ones_are(caplog):
    model = Tiny()
    quiet_fairseq_notices()
    hide_absent_parameter_notices(model)
    trainer = logging.getLogger("fairseq.trainer")
    with caplog.at_level(logging.INFO):
        for shared in _catalog_shared_params(model):  # what fairseq's Trainer reports
            for path in shared[1:]:
                trainer.info(f"detected shared parameter: {shared[0]} <- {path}")
    assert [r.getMessage() for r in caplog.records] == [
        "detected shared parameter: a.weight <- b.weight"
    ]


def test_the_config_and_model_objects_fairseq_logs_are_not_printed(caplog):
    train = logging.getLogger("fairseq_cli.train")
    quiet_fairseq_notices()
    with caplog.at_level(logging.INFO):
        train.info({"common": {"seed": 1}})
        train.info(Tiny())
        train.info("training on 1 devices (GPUs/TPUs)")
    assert [r.getMessage() for r in caplog.records] == ["training on 1 devices (GPUs/TPUs)"]


FAKE_TRAINING = """
import sys
print("[2026][train_inner][INFO] - epoch 001:  2 / 4 loss=1.3, num_updates=2, lr=0.01")
print("[2026][valid][INFO] - epoch 001 | valid on 'valid' subset | loss 1.25 | wa 0.5 | "
      "ua 0.45 | num_updates 4")
print('[2026][valid][INFO] - {"epoch": 2, "valid_loss": "0.9", "valid_ua": "0.6", '
      '"valid_num_updates": "8"}')
sys.exit(int(sys.argv[1]))
"""


def test_run_training_logs_everything_and_shows_progress_and_validation(tmp_path, caplog):
    log = tmp_path / "fold1" / "train.log"
    with caplog.at_level(logging.INFO):
        training_run.run_training([sys.executable, "-c", FAKE_TRAINING, "0"], log, "fold1", 8)
    assert "valid on 'valid' subset" in log.read_text() and "num_updates=2" in log.read_text()
    assert "fold1: 8 updates, last valid epoch 2: loss 0.9 | ua 0.6" in caplog.text
    (line,) = [
        x for x in log.read_text().splitlines() if x.startswith("[2026][valid]") and "|" in x
    ]
    first = training_run.validation_summary(line)
    assert first == "epoch 1: loss 1.25 | wa 0.5 | ua 0.45"
    with pytest.raises(
        RuntimeError, match=r"fold2: fairseq-hydra-train failed \(3\)(.|\n)*valid_ua"
    ):
        training_run.run_training(
            [sys.executable, "-c", FAKE_TRAINING, "3"], tmp_path / "f2.log", "fold2"
        )


def test_planned_updates_from_the_yaml_or_an_override():
    tiny = REPO / "examples" / "finetuning" / "tiny.yaml"
    assert training_run.planned_updates(tiny, []) == 180
    assert training_run.planned_updates(tiny, ["task.data=x", "optimization.max_update=7"]) == 7


def test_demo_closing_lines_name_the_data_and_teacher_it_used(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("quickstart", REPO / "examples" / "quickstart.py")
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    scores = {"wa": 0.5, "ua": 0.4, "wf1": 0.3}
    data, teacher = tmp_path / "my_manifests", tmp_path / "models" / "WavLM-Large.pt"
    quickstart.report({"Vesper (pretrained)": scores}, tmp_path / "out", data, teacher)
    out = capsys.readouterr().out
    assert f"manifests:        {data}\n" in out and f"teacher:          {teacher}\n" in out
    assert f"{tmp_path / 'out' / 'eval' / 'vesper' / 'confusion.png'}" in out
    assert "teacher.pt" not in out.replace("WavLM-Large.pt", "")
