"""The fairseq-hydra-train command line that trains with this plugin loaded, in the README's
form (`--user-dir`); used by vesper-cv, examples/quickstart.py and the tests."""

import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def hydra_train_launcher() -> list[str]:
    """fairseq-hydra-train beside this Python, else the same entry point through `python -m`."""
    script = Path(sys.executable).parent / "fairseq-hydra-train"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fairseq_cli.hydra_train"]


def hydra_train_command(
    config_dir, config_name: str, save_dir, *overrides, hydra_dir=None, launcher=None
) -> list[str]:
    """Train with config `config_dir/config_name` and the plugin, checkpoints in `save_dir` and
    Hydra's own output in `hydra_dir` (default `save_dir/hydra`); `overrides` are group.key=value
    strings; `launcher` replaces fairseq-hydra-train (e.g. torchrun ... -m fairseq_cli.hydra_train).
    """
    hydra_dir = f"{save_dir}/hydra" if hydra_dir is None else hydra_dir
    return [
        *map(str, hydra_train_launcher() if launcher is None else launcher),
        "--user-dir",
        str(PLUGIN_DIR),
        "--config-dir",
        str(config_dir),
        "--config-name",
        config_name,
        f"checkpoint.save_dir={save_dir}",
        f"hydra.run.dir={hydra_dir}",
        *map(str, overrides),
    ]
