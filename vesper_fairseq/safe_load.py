"""Reading checkpoints without running code from them.

Every checkpoint is read with ``torch.load(weights_only=True)`` plus an allowlist of the few
plain-data classes fairseq checkpoints may hold (argparse.Namespace, numpy scalars). A file
that needs anything else is refused, naming the file and the opt-in of its role
(``allow_pickle=True``, ``--trust-checkpoint``, ``task.trust_teacher=true``, ...); only with that
opt-in is it unpickled with ``weights_only=False``, which runs code from the file.

fairseq reads its own checkpoints (resuming, ``finetune_from_model``, loading a model) through
``fairseq.checkpoint_utils``; importing the plugin routes those reads through here too."""

import argparse
import contextlib
import logging
import os
import pickle
import re

import numpy as np
import torch

logger = logging.getLogger(__name__)

SAFE_GLOBALS = [
    argparse.Namespace,  # legacy fairseq checkpoints keep their arguments in one
    np.dtype,
    np.dtypes.Float16DType,
    np.dtypes.Float32DType,
    np.dtypes.Float64DType,
    np.dtypes.Int32DType,
    np.dtypes.Int64DType,
    np.dtypes.BoolDType,
    np._core.multiarray.scalar,  # numpy scalars (e.g. a best validation loss)
]
FAIRSEQ_OPT_IN = "task.trust_restore_file=true (fairseq training) or --trust-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not describe a valid encoder."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def load_checkpoint(f, map_location="cpu", allow_pickle=False, opt_in="allow_pickle=True"):
    """torch.load of a path or binary file, weights only unless the caller opted in.

    ``opt_in`` names, in the refusal, how the user allows unpickling this file."""
    is_path = isinstance(f, str | os.PathLike)
    source = f if is_path else getattr(f, "name", "<file>")
    rewind = None if is_path else f.tell()
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: (?:GLOBAL )?(\S+)", str(e))
        if not allow_pickle and found:
            raise CheckpointError(
                source,
                f"holds pickled Python objects that a weights-only load refuses (global "
                f"{found.group(1)}); {opt_in} unpickles it, which runs code from the file: "
                "only for a file you trust",
            ) from None
        if not allow_pickle:
            operand = re.search(r"Unsupported operand[^\n]*", str(e))
            problem = operand.group(0) if operand else first_line(e)
            raise CheckpointError(
                source, f"cannot be read as a PyTorch checkpoint: {problem}"
            ) from None
    except Exception as e:  # truncated zip, garbage bytes, ...
        raise CheckpointError(
            source, f"cannot be read as a PyTorch checkpoint: {first_line(e)}"
        ) from None
    logger.warning("%s: unpickled with weights_only=False (%s: trusted file)", source, opt_in)
    if rewind is not None:
        f.seek(rewind)
    try:
        return torch.load(f, map_location=map_location, weights_only=False)
    except Exception as e:  # missing classes, corrupt data, ...
        raise CheckpointError(source, f"cannot be unpickled: {first_line(e)}") from None


def first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# --- fairseq's own checkpoint reads -----------------------------------------------------------

_fairseq = {"allow_pickle": False, "opt_in": FAIRSEQ_OPT_IN}


class _WeightsOnlyTorch:
    """What `fairseq.checkpoint_utils` sees as `torch`: the real module, except `load`."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **_ignored):
        return load_checkpoint(f, map_location, _fairseq["allow_pickle"], _fairseq["opt_in"])


def guard_fairseq_checkpoints() -> None:
    """Make fairseq read checkpoints weights-only (it asks for weights_only=False)."""
    from fairseq import checkpoint_utils

    if not isinstance(checkpoint_utils.torch, _WeightsOnlyTorch):
        checkpoint_utils.torch = _WeightsOnlyTorch()


def trust_fairseq_checkpoints(opt_in: str) -> None:
    """The user opted in (``opt_in``): fairseq checkpoints of this process may be unpickled."""
    _fairseq.update(allow_pickle=True, opt_in=opt_in)


@contextlib.contextmanager
def fairseq_checkpoint_loads(allow_pickle: bool, opt_in: str):
    """fairseq checkpoint reads inside the block follow this caller's opt-in."""
    saved = dict(_fairseq)
    _fairseq.update(allow_pickle=allow_pickle, opt_in=opt_in)
    try:
        yield
    finally:
        _fairseq.update(saved)


TRUST_OPTION = "--trust-checkpoint"


def add_trust_option(parser: argparse.ArgumentParser, what: str = "a checkpoint") -> None:
    """The console scripts' opt-in to unpickle `what` (one file role) when a weights-only load
    refuses it."""
    parser.add_argument(
        TRUST_OPTION,
        action="store_true",
        help=f"unpickle {what} that a weights-only load refuses (runs code from the file)",
    )
