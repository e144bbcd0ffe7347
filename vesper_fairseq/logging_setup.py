"""The one logging setup of every console script, and the filters that keep fairseq runs of the
plugin's models free of notices that look like errors when nothing is wrong."""

from __future__ import annotations

import argparse
import copy
import logging
import math
import re
import warnings

FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"
SHARED = re.compile(r"detected shared parameter: (\S+) <- (\S+)$")
# paths of parameters that a plugin model declares absent (None), e.g. bias=False convolutions
_ABSENT: set[str] = set()


def setup_logging(level: int = logging.INFO) -> None:
    """Console logging for a vesper-* script, in place of the console handler that importing
    fairseq installs (other handlers, e.g. a test's log capture, are kept)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    logging.basicConfig(format=FORMAT, datefmt="%Y-%m-%d %H:%M:%S", level=level)
    root.setLevel(level)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # its one-time font cache notice
    quiet_fairseq_notices()


def _has_default(action: argparse.Action) -> bool:
    default = action.default
    return bool(action.option_strings) and all(
        default is not v for v in (None, False, argparse.SUPPRESS)
    )


class HelpWithDefaults(argparse.HelpFormatter):
    """Every option that has a default says it, with or without a help text."""

    def _format_action(self, action):
        if not action.help and _has_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or not _has_default(action):
            return text
        return f"{text} (default: %(default)s)"


def argument_parser(prog: str | None, doc: str, **kwargs) -> argparse.ArgumentParser:
    """A console script's parser: the first paragraph of its docstring, defaults in --help."""
    return argparse.ArgumentParser(
        prog=prog,
        description=" ".join(doc.strip().split("\n\n")[0].split()),
        formatter_class=HelpWithDefaults,
        **kwargs,
    )


def parse_checked(parser: argparse.ArgumentParser, argv, option_problem) -> argparse.Namespace:
    """Parsed options; what `option_problem(args)` finds wrong is a usage error (exit 2)."""
    args = parser.parse_args(argv)
    problem = option_problem(args)
    if problem:
        parser.error(problem)
    return args


def number_problem(option: str, value, low: float, inclusive: bool = True) -> str | None:
    """`value` (None: unset) must be a finite number >= `low` (> `low` unless inclusive)."""
    if value is None:
        return None
    if math.isfinite(value) and (value > low or (value == low and inclusive)):
        return None
    return f"{option} must be a number {'>=' if inclusive else '>'} {low}, got {value}"


def device_problem(device: str, auto: bool = True) -> str | None:
    """--device: a device torch knows and this machine has (or 'auto' where `auto`)."""
    import torch

    if auto and device == "auto":
        return None
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        known = "auto, cpu, cuda, cuda:0" if auto else "cpu, cuda, cuda:0"
        return f"--device {device!r} is not a device ({known}, ...)"
    if parsed.type == "cuda" and not torch.cuda.is_available():
        return f"--device {device}: no CUDA device is available"
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        return f"--device {device}: this machine has {torch.cuda.device_count()} CUDA devices"
    return None


def _not_an_object_dump(record: logging.LogRecord) -> bool:
    # fairseq_cli.train logs the whole config and the model's repr as objects, not messages;
    # the composed config stays in the Hydra run folder's .hydra/config.yaml
    return isinstance(record.msg, str)


def _not_an_absent_parameter(record: logging.LogRecord) -> bool:
    # fairseq's Trainer catalogs parameters by identity and takes every absent (None)
    # parameter for one shared tensor; truly shared parameters are still reported
    match = SHARED.match(str(record.msg))
    return not (match and {match.group(1), match.group(2)} <= _ABSENT)


def quiet_fairseq_notices() -> None:
    """Idempotent; run on `import vesper_fairseq`, so fairseq-hydra-train runs get it too."""
    train, trainer = logging.getLogger("fairseq_cli.train"), logging.getLogger("fairseq.trainer")
    if _not_an_object_dump not in train.filters:
        train.addFilter(_not_an_object_dump)
    if _not_an_absent_parameter not in trainer.filters:
        trainer.addFilter(_not_an_absent_parameter)
    for message in (
        r"'pin_memory' argument is set as true but no accelerator is found",
        r"`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated",
    ):
        warnings.filterwarnings("ignore", message=message)


def hide_absent_parameter_notices(model) -> None:
    """Declares `model`'s absent (None) parameters to the shared-parameter filter."""
    for prefix, module in model.named_modules():
        for name, param in module._parameters.items():
            if param is None:
                _ABSENT.add(f"{prefix}.{name}" if prefix else name)
