"""Feature extraction over a list of audio files into per-layer arrays (the format of
data/layer_arrays.py, as the teacher-target store), resumably.

Output of one shard, prefix OUT/{name}_{shard}_{num_shards}::

    {prefix}.layer{L}.npy   frame: (sum of frames, D), rows' frames concatenated in row order;
                            utterance: (rows, D), the mean over each file's frames
    {prefix}.len            frames per row, one per line (row i = .tsv row i)
    {prefix}.tsv            the rows, as a fairseq manifest (root line, then path<TAB>samples)
    {prefix}.done.json      written last: the shard is complete (layers, dtype, encoder, ...)

While running, arrays live in {prefix}.partial/ (memory-mapped .npy files of the final shape
plus progress.json, saved every `save_every` seconds after flushing the arrays). Rows are
processed in fixed groups of `batch_size` rows from the shard's first row, and progress is saved
only between groups, so a resumed run batches exactly as an uninterrupted one and writes the
same bytes. Outputs record their settings, the encoder's weights fingerprint and a digest of
the audio files' bytes: a rerun or resume with anything different is refused, saying what
differs (`overwrite` starts over; the finished shard stays whole until the new one replaces it).
Final names appear only when the shard is complete; {prefix}.lock keeps a second process out.
"""

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from ..corpora.audio import SOUNDFILE_EXTS, AudioSkip, load_audio, to_16k_mono
from ..corpora.audio_headers import truncation_problem
from ..corpora.manifest import (
    NOT_REPRESENTABLE,
    manifest_name_problem,
    printable,
    root_line_problem,
)
from ..data.layer_arrays import (
    ShardWriter,
    compare,
    read_json,
    recorded_maker,
    remove_shard,
    shard_prefix,
    shard_rows,
)
from ..data.manifest_file import read_audio_manifest
from ..fingerprint import AUDIO_STAT, audio_fingerprint, weights_fingerprint
from ..io_utils import exclusive_lock
from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import SAMPLE_RATE
from . import iter_chunk_features

logger = logging.getLogger(__name__)

FEATURES_FORMAT = "vesper-features"
FEATURES_VERSION = 3  # 2: weights fingerprint, resumable between groups of rows; 3: audio bytes
# the encoder's path (the same weights elsewhere are the same) and the audio files' times
INFORMATIONAL = ("encoder", AUDIO_STAT)


@dataclass
class DumpSettings:
    layers: list[int]
    granularity: str = "frame"  # or "utterance"
    dtype: str = "float16"
    max_chunk: float | None = 30.0  # seconds of output frames per encoder call
    context: int | None = None  # frames each side (default conv_pos // 2)
    batch_size: int = 8
    shard: int = 0
    num_shards: int = 1


def read_manifest(path: Path) -> tuple[Path, list[tuple[str, int]]]:
    """The root folder and rows of a manifest whose folder exists and that has rows."""
    root, rows = read_audio_manifest(path)
    return Path(root), rows


def read_16k(path: Path) -> np.ndarray:
    """Any audio the manifest scripts read, as 16 kHz mono float32 (the same conversion)."""
    try:
        return to_16k_mono(*load_audio(path))
    except AudioSkip as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # decoder errors
        raise ValueError(f"{path}: cannot be read as audio: {e}") from None


def rows_of_files(files: list[str]) -> tuple[Path, list[tuple[str, int]]]:
    """The files as manifest rows (16 kHz sample counts); every file is decoded once here, so a
    bad one stops the run before anything is written."""
    paths = [Path(f).resolve() for f in files]
    root = Path(os.path.commonpath([p.parent for p in paths])) if paths else Path("/")
    root_problem = root_line_problem(str(root))
    for path in paths:  # the output's .tsv is a manifest: every name must survive it
        rel = str(path.relative_to(root))
        problem = root_problem or manifest_name_problem(rel, str(root))
        if problem:
            raise ValueError(
                f"{printable(str(path))}: {NOT_REPRESENTABLE} (the output's .tsv): {problem}"
            )
    return root, [(str(p.relative_to(root)), len(read_16k(p))) for p in paths]


def check_manifest_audio(root: Path, rows: list[tuple[str, int]]) -> None:
    """Every manifest row names a readable, complete audio file, of the manifest's length where
    the file is 16 kHz already (headers only: fast on large manifests)."""
    for rel, samples in rows:
        path = Path(root) / rel
        if not path.is_file():
            raise ValueError(f"{path}: file not found (listed in the manifest)")
        problem = truncation_problem(path)
        if problem:
            raise ValueError(f"{path}: {problem}")
        if path.suffix.lower() in SOUNDFILE_EXTS:
            try:
                info = sf.info(str(path))
            except Exception as e:  # libsndfile errors
                raise ValueError(f"{path}: cannot be read as audio: {e}") from None
            if info.samplerate == SAMPLE_RATE and info.frames != samples:
                raise ValueError(
                    f"{path}: the manifest says {samples} samples, the file has {info.frames}: "
                    "regenerate the manifest"
                )


def load_wave(path: Path, expected: int) -> torch.Tensor:
    wav = read_16k(path)
    if len(wav) != expected:
        raise ValueError(f"{path}: the manifest says {expected} samples, the file has {len(wav)}")
    return torch.from_numpy(wav)


def setting_differences(recorded: dict, current: dict) -> list[str]:
    return compare(recorded, current, INFORMATIONAL)


def dump_features(
    encoder: WavLMEncoder,
    encoder_path: str,
    root: Path,
    rows: list[tuple[str, int]],
    out: Path,
    name: str,
    settings: DumpSettings,
    device: str = "cpu",
    overwrite: bool = False,
    save_every: float = 60.0,
) -> Path:
    """Extract one shard of `rows` (see the module doc); returns its done.json path."""
    s = settings
    if s.granularity not in ("frame", "utterance"):
        raise ValueError(f"granularity must be 'frame' or 'utterance', got {s.granularity!r}")
    if s.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {s.batch_size}")
    start, end = shard_rows(len(rows), s.shard, s.num_shards)
    shard = rows[start:end]
    prefix = shard_prefix(out, name, s.shard, s.num_shards)
    frames = [encoder.cfg.num_frames(n) for _, n in shard]
    if s.granularity == "utterance":
        short = [path for (path, _), f in zip(shard, frames) if f == 0]
        if short:
            need = encoder.cfg.receptive_field
            raise ValueError(f"{root / short[0]}: too short for one frame ({need} samples)")
    fingerprint = dict(
        asdict(s),
        encoder=str(Path(encoder_path).resolve()),
        encoder_weights=weights_fingerprint(encoder),
        rows_sha256=_digest(root, shard),
        version=FEATURES_VERSION,
    )
    with exclusive_lock(f"{prefix}.lock", f"{prefix}.*"):
        done = Path(f"{prefix}.done.json")
        paths = [root / path for path, _ in shard]
        fingerprint.update(audio_fingerprint(paths, recorded_maker(prefix)))
        if not overwrite and _finished(done, fingerprint):
            return done
        # --overwrite: the finished shard stays whole until the new one replaces it
        old = _keys(read_json(done).get("layers") or []) if done.exists() else []
        writer = _extract(
            encoder, root, shard, frames, prefix, fingerprint, device, save_every, overwrite
        )
        meta = dict(fingerprint, rows=[start, end])
        meta.update(format=FEATURES_FORMAT, version=FEATURES_VERSION, frames=int(sum(frames)))
        rows_text = "".join(f"{path}\t{n}\n" for path, n in shard)
        remove_shard(prefix, [key for key in old if key not in writer.arrays], partial=False)
        done = writer.finish(frames, meta, extra={".tsv": f"{root}\n{rows_text}"})
        logger.info(f"wrote {len(shard)} rows, {sum(frames)} frames to {prefix}.*")
        return done


def _keys(layers) -> list[str]:
    return [f"layer{layer}" for layer in layers]


def _finished(done: Path, fingerprint: dict) -> bool:
    if not done.exists():
        return False
    diffs = setting_differences(json.loads(done.read_text()), fingerprint)
    if diffs:
        raise ValueError(
            f"{done}: the finished output was made with other settings ({'; '.join(diffs)}): "
            "rerun with --overwrite to replace it, or write to another --out or --name"
        )
    logger.info(f"{done} exists: this shard is already finished")
    return True


def _extract(encoder, root, shard, frames, prefix, fingerprint, device, save_every, restart):
    s = DumpSettings(**{k: fingerprint[k] for k in DumpSettings.__dataclass_fields__})
    offsets = np.concatenate([[0], np.cumsum(frames)]).astype(np.int64)
    height = int(offsets[-1]) if s.granularity == "frame" else len(shard)
    shapes = {key: (height, encoder.embed_dim) for key in _keys(s.layers)}
    partial = ShardWriter(
        prefix,
        shapes,
        s.dtype,
        fingerprint,
        what="partial extraction",
        informational=INFORMATIONAL,
        restart=restart,
    )
    if partial.next_row:
        logger.info(f"resuming {prefix} at row {partial.next_row} of {len(shard)}")
    stride = encoder.cfg.frame_stride
    max_frames = None if s.max_chunk is None else max(1, int(s.max_chunk * SAMPLE_RATE) // stride)
    last_save = time.monotonic()
    with tqdm(total=len(shard), initial=partial.next_row, desc=prefix.name, unit="file") as bar:
        for first in range(partial.next_row, len(shard), s.batch_size):
            group = range(first, min(first + s.batch_size, len(shard)))
            waves = ((i, load_wave(root / shard[i][0], shard[i][1])) for i in group)
            chunks = iter_chunk_features(
                encoder, waves, s.layers, max_frames, s.context, s.batch_size, device
            )
            _store_chunks(chunks, partial, s, offsets, frames, bar)
            if time.monotonic() - last_save > save_every:
                partial.save(group.stop)
                last_save = time.monotonic()
    partial.save(len(shard))
    return partial


def _store_chunks(chunks, partial, s: DumpSettings, offsets, frames, bar) -> None:
    sums = {}
    for i, chunk, feats, last in chunks:
        for layer, x in zip(s.layers, feats):
            if s.granularity == "frame":
                a = offsets[i] + chunk.start
                partial.arrays[f"layer{layer}"][a : a + chunk.frames] = x.float().cpu().numpy()
            else:
                sums[layer] = sums.get(layer, 0.0) + x.double().sum(0).cpu()
        if not last:
            continue
        for layer, total in sums.items():
            partial.arrays[f"layer{layer}"][i] = (total / frames[i]).float().numpy()
        sums = {}
        bar.update(1)


def _digest(root: Path, rows) -> str:
    text = "\n".join([str(root), *(f"{p}\t{n}" for p, n in rows)])
    return hashlib.sha256(text.encode()).hexdigest()
