"""Audio files cut short: the sizes a WAV or AIFF header declares against the bytes present.

libsndfile reads a WAV (RIFF, RIFX, RF64, BW64) or AIFF/AIFF-C file that was cut short (an
interrupted download or copy) without an error, as shorter audio. :func:`truncation_problem`
walks the chunk headers in front of the audio (a few small reads, whatever the file's size) and
compares the size of the audio chunk with the bytes the file holds. A truncated FLAC needs no
check here: libsndfile fails on it ("flac decoder lost sync").

Tolerated, so that no complete file is rejected: sizes left as placeholders by writers that
could not seek back (0, and from 0x7FFF0000 up: 0xFFFFFFFF, the ~2 GiB maxima of arecord, sox
and others; a WAV of 2 GiB or more of audio is therefore not checked unless it is RF64), a
missing pad byte, a shortfall of less than one sample frame (or of one byte: writers that count
the pad byte), chunks after the audio (whole or cut: the audio is complete), a data size larger
than the file when the file is as long as its RIFF/FORM size says (a miscounted size, not a cut),
RF64/BW64 (sizes from the ds64 chunk), RIFX, WAVE_FORMAT_EXTENSIBLE, AIFF-C. Whatever cannot be
read with confidence (another container such as W64 or CAF, a chunk id that is not text, a
misaligned chunk) gets no verdict: libsndfile decides.
"""

import os
import struct
from dataclasses import dataclass

FORMS = {b"RIFF": "<", b"RIFX": ">", b"RF64": "<", b"BW64": "<", b"FORM": ">"}
FORM_TYPES = {b"WAVE": "WAV", b"AIFF": "AIFF", b"AIFC": "AIFF"}
UNKNOWN_SIZE = 0x7FFF0000  # 32-bit sizes from here up are streaming writers' placeholders
MAX_CHUNKS = 256  # chunks walked before the audio; past that, no verdict


class HeaderEnds(Exception):
    """The file ends inside the chunks in front of the audio."""


@dataclass
class Walk:
    """What the chunks in front of the audio declare."""

    f: object  # the open file
    size: int  # bytes in the file
    endian: str  # struct's "<" or ">"
    declared_end: int | None  # file size the form header declares, None if a placeholder
    frame_bytes: int = 1
    ds64_data: int | None = None  # RF64's 64-bit size of the data chunk

    def read(self, offset: int, fmt: str) -> tuple:
        self.f.seek(offset)
        raw = self.f.read(struct.calcsize(self.endian + fmt))
        if len(raw) < struct.calcsize(self.endian + fmt):
            raise HeaderEnds
        return struct.unpack(self.endian + fmt, raw)


def truncation_problem(path) -> str | None:
    """``truncated: ...`` when ``path`` is a WAV or AIFF file holding less audio than its header
    declares, else None (complete, another format, or nothing a header can tell)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return _form_problem(f, size, f.read(12))
    except OSError:  # unreadable: the decoder gives the reason
        return None


def _form_problem(f, size: int, head: bytes) -> str | None:
    endian = FORMS.get(head[:4])
    if endian is None:
        return None
    declared = _form_size(head, endian)
    if len(head) < 12:
        return _ends_in_header(size, declared)
    kind = FORM_TYPES.get(head[8:12])
    if kind is None or (kind == "AIFF") != (head[:4] == b"FORM"):
        return None  # RIFF AVI, FORM 8SVX, ...
    walk = Walk(f, size, endian, declared)
    try:
        return _walk_problem(walk, kind)
    except HeaderEnds:
        return _ends_in_header(size, walk.declared_end)


def _form_size(head: bytes, endian: str) -> int | None:
    if len(head) < 8:
        return None
    n = struct.unpack(endian + "I", head[4:8])[0]
    return None if _placeholder(n) else n + 8


def _placeholder(n: int) -> bool:
    return n == 0 or n >= UNKNOWN_SIZE


def _ends_in_header(size: int, declared: int | None) -> str:
    of = f" of the {declared} it declares" if declared else ""
    return f"truncated: the file ends inside its header, after {size} bytes{of}"


def _walk_problem(walk: Walk, kind: str) -> str | None:
    offset = 12
    for _ in range(MAX_CHUNKS):
        if offset >= walk.size:  # no audio chunk: cut right after a chunk, or not audio at all
            if walk.declared_end and walk.declared_end > walk.size:
                raise HeaderEnds
            return None
        cid, n = walk.read(offset, "4sI")
        if not all(32 <= c < 127 for c in cid):
            return None  # misaligned or not a chunk: no verdict
        body = offset + 8
        if cid == b"data" and kind == "WAV":
            return _wav_data_problem(walk, n, body)
        if cid == b"SSND" and kind == "AIFF":
            return _ssnd_problem(walk, n, body)
        if body + n > walk.size:
            raise HeaderEnds
        _note_chunk(walk, cid, n, body)
        offset = body + n + (n & 1)
    return None


def _note_chunk(walk: Walk, cid: bytes, n: int, body: int) -> None:
    """Records the frame size (fmt, COMM) and RF64's sizes (ds64)."""
    if cid == b"fmt " and n >= 14:
        walk.frame_bytes = max(walk.read(body + 12, "H")[0], 1)  # nBlockAlign
    elif cid == b"COMM" and n >= 8:
        channels, _, bits = walk.read(body, "hIh")
        walk.frame_bytes = max(channels * ((bits + 7) // 8), 1)
    elif cid == b"ds64" and n >= 16:
        riff, data = walk.read(body, "QQ")
        walk.ds64_data = data or None
        if walk.declared_end is None and riff:
            walk.declared_end = riff + 8


def _wav_data_problem(walk: Walk, n: int, body: int) -> str | None:
    if n == 0xFFFFFFFF and walk.ds64_data is not None:
        return _audio_problem(walk, walk.ds64_data, body)
    return None if _placeholder(n) else _audio_problem(walk, n, body)


def _ssnd_problem(walk: Walk, n: int, body: int) -> str | None:
    if _placeholder(n) or n < 8:
        return None
    offset = walk.read(body, "I")[0]  # bytes between the SSND header and the first frame
    return _audio_problem(walk, n - 8 - offset, body + 8 + offset)


def _audio_problem(walk: Walk, declared: int, start: int) -> str | None:
    present = max(walk.size - start, 0)
    if declared - present < max(walk.frame_bytes, 2):
        return None  # less than a frame: a pad byte counted in the size, or a partial frame
    if walk.declared_end is not None and walk.size >= walk.declared_end:
        return None  # not cut: the file is as long as its form header says
    return f"truncated: the header declares {declared} bytes of audio, the file holds {present}"
