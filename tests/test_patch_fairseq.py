"""The fairseq 0.12.2 patcher (scripts/patch_fairseq.py) and the patched install it produces."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SDIST = REPO / "build" / "sdist" / "fairseq-0.12.2.tar.gz"


def _load_patcher():
    """The patcher as the installer loads it: by path, through scripts/patch_fairseq.py."""
    spec = importlib.util.spec_from_file_location("patch_script", REPO / "scripts/patch_fairseq.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fairseq_patch


patcher = _load_patcher()


@pytest.fixture(scope="module")
def sdist_tree(tmp_path_factory):
    assert SDIST.exists(), f"{SDIST} is missing: run `make install` first"
    dest = tmp_path_factory.mktemp("sdist")
    with tarfile.open(SDIST) as tar:
        tar.extractall(dest, filter="data")
    return dest / "fairseq-0.12.2"


def _snapshot(root: Path, edits) -> dict[str, str]:
    return {e.path: (root / e.path).read_text() for e in edits}


def test_patch_applies_every_edit_once_then_is_idempotent(tmp_path, sdist_tree):
    root = tmp_path / "fairseq-0.12.2"
    shutil.copytree(sdist_tree, root)
    edits = patcher.source_edits() + patcher.packaging_edits()

    first = patcher.patch(root)
    assert first.ok and first.applied == len(edits) and first.already == 0
    assert (root / "fairseq/version.txt").read_text().strip() == "0.12.2+py311"
    assert (
        "field(default_factory=CommonConfig)" in (root / "fairseq/dataclass/configs.py").read_text()
    )
    after_first = _snapshot(root, edits)

    second = patcher.patch(root)
    assert second.ok and second.applied == 0 and second.already == len(edits)
    assert _snapshot(root, edits) == after_first


def test_refuses_another_fairseq_version(tmp_path):
    (tmp_path / "fairseq").mkdir()
    (tmp_path / "fairseq/version.txt").write_text("0.13.0\n")
    with pytest.raises(ValueError, match="refusing to patch fairseq 0.13.0"):
        patcher.patch(tmp_path)
    assert patcher.main(["patch_fairseq.py", str(tmp_path)]) == 2


def test_missing_anchor_fails_and_writes_nothing(tmp_path, sdist_tree):
    root = tmp_path / "fairseq-0.12.2"
    shutil.copytree(sdist_tree, root)
    data_utils = root / "fairseq/data/data_utils.py"
    data_utils.write_text(data_utils.read_text().replace("np.int,", "np.int64,"))
    before = _snapshot(root, patcher.source_edits())

    report = patcher.patch(root)
    assert not report.ok and any("data_utils.py" in m for m in report.missing)
    assert _snapshot(root, patcher.source_edits()) == before
    assert patcher.main(["patch_fairseq.py", str(root)]) == 1


def test_no_fairseq_tree_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        patcher.patch(tmp_path)


INSTALLED_CHECK = """
import numpy as np, torch, inspect
import fairseq
from fairseq import checkpoint_utils
from fairseq.data.data_utils import compute_mask_indices
from fairseq.dataclass.configs import FairseqConfig
from fairseq.dataclass.initialize import hydra_init
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

assert fairseq.__version__ == "0.12.2+py311", fairseq.__version__
cfg = FairseqConfig()
assert cfg.common is not FairseqConfig().common  # default_factory, not a shared instance
hydra_init("vesper_test")
node = ConfigStore.instance().repo["vesper_test.yaml"].node
assert OmegaConf.select(node, "common.log_interval") == 100
mask = compute_mask_indices((2, 50), None, 0.5, 5, no_overlap=True, min_space=1)
assert mask.shape == (2, 50) and mask.any()
assert "weights_only=False" in inspect.getsource(checkpoint_utils.load_checkpoint_to_cpu)
assert 'PathManager.rename(cp + ".tmp", cp)' in inspect.getsource(checkpoint_utils.save_checkpoint)
print("OK")
"""


def test_installed_fairseq_is_the_patched_build_and_works_on_this_python():
    out = subprocess.run(
        [sys.executable, "-c", INSTALLED_CHECK], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stderr[-3000:]


def test_hydra_train_takes_user_dir_anywhere_and_any_component_field(monkeypatch):
    from fairseq_cli.hydra_train import _prepare_argv

    monkeypatch.chdir(REPO)
    argv = ["task.data=D", "--config-dir", "examples/pretraining", "--user-dir", "vesper_fairseq"]
    argv += ["model.masking.strategy=random", "--config-name=tiny", "--info", "+model.x=1"]
    argv += ["criterion.cross_weight=0.5", "optimization.max_update=2", "--cfg", "job"]
    assert _prepare_argv(argv) == [
        "--config-dir",
        "examples/pretraining",
        "--config-name=tiny",
        "--info",
        "--cfg",
        "job",
        "++task.data=D",
        "++model.masking.strategy=random",
        "+model.x=1",
        "++criterion.cross_weight=0.5",
        "optimization.max_update=2",
        f"common.user_dir={REPO / 'vesper_fairseq'}",
    ]
    same = _prepare_argv(
        [f"common.user_dir={REPO / 'vesper_fairseq'}", "--user-dir=vesper_fairseq"]
    )
    assert same == [f"common.user_dir={REPO / 'vesper_fairseq'}"]
    with pytest.raises(SystemExit, match="give one plugin folder"):
        _prepare_argv(["--user-dir", "vesper_fairseq", "common.user_dir=/elsewhere"])


def test_hydra_train_names_an_unknown_field_in_one_line(tmp_path):
    cmd = [Path(sys.executable).parent / "fairseq-hydra-train", "--user-dir", "vesper_fairseq"]
    cmd += ["--config-dir", "examples/pretraining", "--config-name", "tiny", "task.data=D"]
    cmd += ["task.teacher_path=T", "model.masking.stratgy=random", f"hydra.run.dir={tmp_path}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "error: Key 'stratgy' not in 'MaskingConfig'" in out.stderr
    assert "Traceback" not in out.stderr and "tensorboardX" not in out.stderr + out.stdout


def test_importing_the_plugin_names_each_missing_patch_and_the_fix(tmp_path, sdist_tree):
    assert {e.path for e in patcher.missing_patches(sdist_tree)} >= {
        "fairseq/dataclass/configs.py",
        "fairseq/checkpoint_utils.py",
        "fairseq_cli/hydra_train.py",
    }
    patched = tmp_path / "patched"
    shutil.copytree(sdist_tree, patched)
    assert patcher.patch(patched).ok and patcher.missing_patches(patched) == []

    env = dict(os.environ, PYTHONPATH=f"{sdist_tree}{os.pathsep}{REPO}")
    out = subprocess.run(
        [sys.executable, "-c", "import vesper_fairseq"], env=env, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert f"ImportError: the fairseq in {sdist_tree} lacks" in out.stderr
    assert "fairseq_cli/hydra_train.py: fairseq-hydra-train --user-dir" in out.stderr
    assert f"python scripts/patch_fairseq.py {sdist_tree}" in out.stderr


def test_requirements_accept_any_fairseq_0_12_2_and_declare_what_the_plugin_imports():
    from importlib.metadata import version

    from packaging.requirements import Requirement

    setup_py = (REPO / "setup.py").read_text()
    block = setup_py[setup_py.index("install_requires") : setup_py.index("extras_require")]
    reqs = {r.name: r for r in map(Requirement, re.findall(r'"([^"#]+)"', block))}
    fairseq = reqs["fairseq"].specifier
    assert fairseq.contains("0.12.2") and fairseq.contains("0.12.2+py311")
    assert not fairseq.contains("0.13.0")
    for name in ("fairseq", "hydra-core", "omegaconf", "torch", "soxr"):
        assert reqs[name].specifier.contains(version(name)), name
