"""fairseq-hydra-train as a child process: its full log to a file, a progress bar of updates and
each validation's figures on the console (vesper-cv, the quickstart)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from pathlib import Path

from omegaconf import OmegaConf
from tqdm import tqdm

logger = logging.getLogger(__name__)
UPDATES = re.compile(r"""num_updates["']?[=: ]+["']?(\d+)""")
SHOWN = ("loss", "wa", "ua", "wf1", "macro_f1")


def planned_updates(config: Path, overrides: list[str]) -> int | None:
    """optimization.max_update of the yaml, or of an override of it (the bar's length)."""
    value = config_value(config, overrides, "optimization.max_update")
    return int(value) if value else None


def config_value(config: Path, overrides: list[str], key: str):
    """`key` (group.name) as the last override of it sets it, else as the yaml does; None when
    neither sets it (or the yaml leaves it ???)."""
    for override in reversed(overrides):
        if override.lstrip("+").startswith(f"{key}="):
            return override.split("=", 1)[1]
    try:
        return OmegaConf.select(OmegaConf.load(config), key, throw_on_missing=False)
    except OSError:
        return None


def validation_summary(line: str) -> str | None:
    """'epoch 3: loss 1.21 | wa 0.52 | ua 0.48 ...' from a simple or json fairseq valid line."""
    if "valid on '" in line and "subset |" in line:
        parts = [f.strip().split(" ", 1) for f in line.split("subset |", 1)[1].split(" | ")]
        fields = {p[0]: p[1] for p in parts if len(p) == 2}
        fields["epoch"] = re.search(r"epoch (\d+)", line).group(1)
    elif '"valid_loss"' in line:
        raw = json.loads(line[line.index("{") :])
        fields = {k.removeprefix("valid_"): v for k, v in raw.items()}
    else:
        return None
    shown = " | ".join(f"{k} {fields[k]}" for k in SHOWN if k in fields)
    return f"epoch {int(fields.get('epoch', 0))}: {shown}"


def run_training(cmd: list[str], log_path: Path, label: str, total: int | None = None) -> None:
    """Runs `cmd`, appending its output to `log_path`; raises with the log's tail on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with (
        open(log_path, "a", encoding="utf-8") as log,
        tqdm(total=total, desc=label, unit="update", dynamic_ncols=True, leave=False) as bar,
    ):
        summary = ""
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        for line in proc.stdout:
            log.write(line)
            updates = UPDATES.search(line)
            if updates and int(updates.group(1)) > bar.n:
                bar.update(int(updates.group(1)) - bar.n)
            latest = validation_summary(line)
            if latest:
                summary = latest
                bar.set_postfix_str(summary)
            if "Loaded checkpoint" in line:  # a resumed run says from where
                bar.write(f"{label}: {line.split(' - ', 1)[-1].strip()}")
        code = proc.wait()
    if code != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{label}: fairseq-hydra-train failed ({code}), log {log_path}:\n{tail}")
    logger.info("%s: %d updates, last valid %s (log: %s)", label, bar.n, summary, log_path)
