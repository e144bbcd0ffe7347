"""Reading a fairseq audio manifest (``{split}.tsv``) the way FileAudioDataset does, but with an
error naming the file and line for everything fairseq would fail on (a bare AssertionError, a
missing file or ``:`` read as a zip slice, far from the cause)."""

import os

from vesper_fairseq.corpora.manifest import zip_slice_problem

ROW_FORMAT = "'relative/path<TAB>num_samples'"


class ManifestError(ValueError):
    """A manifest fairseq could not read; the message names the file and line."""


def read_manifest(path) -> tuple[str, list[tuple[str, int]]]:
    """The root folder and the (relative path, number of samples) rows of a manifest."""
    try:
        with open(path, encoding="utf-8") as f:  # universal newlines, like fairseq's open()
            lines = f.read().split("\n")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    if not lines or not lines[0].strip():
        raise ManifestError(f"{path}, line 1: expected the root folder of the audio files")
    root = lines[0].strip()
    rows = [_parse_row(path, number, line, root) for number, line in enumerate(lines, 1)][1:]
    return root, rows


def audio_source_problem(root: str, rels: list[str]) -> str | None:
    """Why a manifest with root folder `root` (line 1) and rows of relative paths `rels` names
    no audio to read, or None. (A row with an absolute path does not need the root.)"""
    if not rels:
        return "holds no audio rows (only line 1, the audio folder)"
    if not os.path.isdir(root) and not all(os.path.isabs(rel) for rel in rels):
        return f"its audio folder {root} (line 1) does not exist"
    return None


def read_audio_manifest(path) -> tuple[str, list[tuple[str, int]]]:
    """read_manifest, for a tool that reads the audio: its root folder exists and it has rows."""
    root, rows = read_manifest(path)
    problem = audio_source_problem(root, [rel for rel, _ in rows])
    if problem:
        raise ManifestError(f"{path}: {problem}")
    return root, rows


def _parse_row(path, number: int, line: str, root: str) -> tuple[str, int] | None:
    if number == 1:
        return None
    if not line.strip():
        raise ManifestError(
            f"{path}, line {number}: blank line; expected {ROW_FORMAT} (fairseq cannot skip it)"
        )
    fields = line.strip().split("\t")
    if len(fields) != 2:
        raise ManifestError(
            f"{path}, line {number}: expected {ROW_FORMAT}, got {len(fields)} tab-separated "
            f"field(s) in {line!r}"
        )
    rel, size = fields
    if not size.isdigit():
        raise ManifestError(
            f"{path}, line {number}: expected {ROW_FORMAT}, the sample count is {size!r}"
        )
    problem = zip_slice_problem(os.path.join(root, rel))
    if problem:
        raise ManifestError(f"{path}, line {number}: the path {rel!r} {problem}")
    return rel, int(size)
