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
    problem = not_a_checkpoint(f)
    if problem:
        raise CheckpointError(source, problem)
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


HEAD_BYTES = 512
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
# torch.save(..., _use_new_zipfile_serialization=False): a pickle of this magic number first,
# which torch.load still reads (weights-only too)
LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
SIGNATURES = [  # (leading bytes, what the file is)
    (b"version https://git-lfs", "a Git LFS pointer, not the file itself: run `git lfs pull`"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"fLaC", "a FLAC audio file"),
    (b"OggS", "an Ogg audio file"),
    (b"ID3", "an MP3 audio file"),
    (b"\x1f\x8b", "a gzip archive: unpack it first"),
    (b"\x80", "a plain Python pickle, not one torch.save wrote"),
]


def read_head(f) -> bytes | None:
    """The first HEAD_BYTES bytes of a path or of a seekable binary file (left where it was);
    None where they cannot be read here (torch.load then says why)."""
    if isinstance(f, str | os.PathLike):
        try:
            with open(f, "rb") as opened:
                return opened.read(HEAD_BYTES)
        except OSError:
            return None
    if not (hasattr(f, "seekable") and f.seekable()):
        return None
    where = f.tell()
    head = f.read(HEAD_BYTES)
    f.seek(where)
    return head


def not_a_checkpoint(f) -> str | None:
    """Why the path or binary file `f` is no file torch.load reads (its first bytes are
    neither a zip archive nor the legacy format), saying what it is; None when it may be."""
    if isinstance(f, str | os.PathLike) and not os.path.exists(f):
        return "no such file"
    if isinstance(f, str | os.PathLike) and os.path.isdir(f):
        return "a folder, not a checkpoint file"
    head = read_head(f)
    if head is None or head.startswith((ZIP_MAGIC, LEGACY_MAGIC)):
        return None
    what = _what_it_is(head)
    return f"not a PyTorch checkpoint ({what})"


def _what_it_is(head: bytes) -> str:
    if not head:
        return "an empty file"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "a WAV audio file"
    if _is_onnx(head):
        return "an ONNX model: run it with onnxruntime"
    if len(head) > 9 and head[8:10] == b'{"':  # u64 header length, then the JSON header
        return "a safetensors file: give the folder that holds it and its config.json"
    for signature, what in SIGNATURES:
        if head.startswith(signature):
            return what
    text = _text(head)
    if text is not None:
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file, beginning {first!r}" if first else "a text file of blank lines"
    return (
        "neither a zip archive, as torch.save writes, nor its legacy pickle format; it begins "
        f"with bytes {head[:8].hex(' ')}"
    )


def _is_onnx(head: bytes) -> bool:
    """An ONNX ModelProto: field 1 (ir_version, a small varint), then another field."""
    return (
        len(head) > 2
        and head[0] == 0x08
        and 0 < head[1] < 0x20
        and head[2] in b"\x12\x1a\x22\x2a\x3a\x42"
    )


def _text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    for cut in range(4):  # a multi-byte character split at the end of the head
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


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
