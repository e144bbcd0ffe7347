"""Precomputed teacher targets, in the per-layer array format of layer_arrays.py (float16).

Layout of a store folder::

    meta.json                         teacher cfg and weights fingerprint, layers, dtype, crop
    {split}_{i}_{n}.layer{L}.npy      (frames, dim) float16, rows of shard i of n concatenated
    {split}_{i}_{n}.features.npy      (frames, C) float16 CNN output (--with-features only)
    {split}_{i}_{n}.len               frames per manifest row of the shard, one per line
    {split}_{i}_{n}.done.json         written last: the shard is complete (rows, manifest and
                                      settings hashes)

Shard i of n holds the contiguous manifest rows `shard_rows(num_rows, i, n)`; an unfinished
shard lives in {split}_{i}_{n}.partial/ (layer_arrays.ShardWriter).
"""

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..fingerprint import audio_fingerprint, differences, file_digest, weights_fingerprint
from ..io_utils import LockedError, live_locks, write_json_atomic
from ..modules.wavlm_config import SAMPLE_RATE, parse_conv_layers
from .layer_arrays import open_array, read_json, read_lengths, shard_prefix
from .manifest_file import read_manifest

logger = logging.getLogger(__name__)

STORE_FORMAT = "vesper-teacher-targets"
STORE_VERSION = 2  # 2: teacher weights fingerprint; every shard names the settings it used
SHARD_SUFFIXES = (".len", ".done.json")
INFORMATIONAL = ("teacher_path",)  # recorded, but a moved teacher file is the same teacher


@dataclass(frozen=True)
class CropPolicy:
    """How waveforms were cut and scaled before the teacher saw them."""

    mode: str
    max_sample_size: int
    normalize: bool
    sample_rate: int = SAMPLE_RATE
    # 0: the teacher saw the student's crop; N: the first N samples of the file (standardised
    # over them), of which the crop's frames were kept (the authors' whole-file targets)
    teacher_max_sample_size: int = 0

    def record(self) -> dict:
        """The policy as meta.json holds it (no teacher key when 0, as stores before it)."""
        record = asdict(self)
        if not self.teacher_max_sample_size:
            del record["teacher_max_sample_size"]
        return record


def store_settings(
    teacher_cfg: dict, fingerprint: str, layers, crop: CropPolicy, features: bool = False
) -> dict:
    """Everything that decides the stored targets (meta.json without its informational keys);
    `features`: the store also holds the CNN's output (a store without them has no such key)."""
    settings = json.loads(
        json.dumps(
            {
                "format": STORE_FORMAT,
                "version": STORE_VERSION,
                "dtype": "float16",
                "layers": sorted(layers),
                "teacher_cfg": teacher_cfg,
                "teacher_fingerprint": fingerprint,
                "crop": crop.record(),
            }
        )
    )
    if features:
        settings["features"] = True
    return settings


def settings_digest(meta: dict) -> str:
    settings = {k: v for k, v in meta.items() if k not in INFORMATIONAL}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _flat(meta: dict) -> dict:
    flat = {}
    for key, value in meta.items():
        if key in INFORMATIONAL:
            continue
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def open_store(root: Path, settings: dict, teacher_path, overwrite=False) -> dict:
    """Writes meta.json, or checks that an existing one describes the same targets; with
    `overwrite` a store made with other settings is removed first (one with these settings is
    kept: the shards of one --overwrite run, started one after another, all stay)."""
    root, path = Path(root), Path(root) / "meta.json"
    if path.exists():
        old = read_json(path)
        diffs = differences(_flat(old), _flat(settings))
        if not diffs:
            return old
        if not overwrite:
            raise ValueError(
                f"{path}: the store was made with other settings ({'; '.join(diffs)}): rerun "
                "with --overwrite to start it over, or write to another --out"
            )
        remove_store(root)
    meta = dict(settings, teacher_path=str(Path(teacher_path).resolve()))
    write_json_atomic(path, meta)
    return meta


def remove_store(root: Path) -> None:
    """meta.json first (nothing looks like a store any more), then every shard file; refused
    while another process writes a shard of it."""
    busy = live_locks(root)
    if busy:
        lock, holder = busy[0]
        raise LockedError(
            f"{root}: cannot start the store over while process {holder.get('pid')} on "
            f"{holder.get('host')} writes a shard of it (lock {lock})"
        )
    (Path(root) / "meta.json").unlink(missing_ok=True)
    for pattern in (
        "*_*_*.layer*.npy",
        "*_*_*.layer*.npy.tmp",
        "*_*_*.features.npy",
        "*_*_*.features.npy.tmp",
        *(f"*_*_*{s}" for s in SHARD_SUFFIXES),
    ):
        for path in Path(root).glob(pattern):
            path.unlink(missing_ok=True)
    for folder in Path(root).glob("*_*_*.partial"):
        shutil.rmtree(folder, ignore_errors=True)
    logger.info("%s: removed the earlier store (--overwrite)", root)


def array_keys(layers, features: bool = False) -> list[str]:
    """The layer_arrays keys of a store's shards: layer{L} per layer, then features."""
    return [f"layer{layer}" for layer in layers] + (["features"] if features else [])


class TeacherTargetStore:
    """Reads a store written by `vesper-dump-teacher`, memory-mapped."""

    def __init__(self, root):
        self.root = Path(root)
        path = self.root / "meta.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: {root} is not a teacher target store")
        self.meta = read_json(path)
        version = self.meta.get("version") if isinstance(self.meta, dict) else None
        if self.meta.get("format") != STORE_FORMAT or version not in (1, STORE_VERSION):
            raise ValueError(f"{path}: not a version-{STORE_VERSION} {STORE_FORMAT} store")
        self.layers = list(self.meta["layers"])
        self.has_features = bool(self.meta.get("features", False))
        self.crop = CropPolicy(**self.meta["crop"])
        self.settings_sha256 = settings_digest(self.meta) if version > 1 else None

    def check_teacher(self, encoder, path) -> None:
        """The store must hold targets of `encoder` (task.teacher_path), the student's source."""
        dim, where = self.teacher_cfg.get("encoder_embed_dim"), self.meta.get("teacher_path")
        if encoder.embed_dim != dim:
            raise ValueError(
                f"target store {self.root} holds targets of a {dim}-wide teacher ({where}), but "
                f"task.teacher_path {path} is {encoder.embed_dim} wide: recompute the store "
                "with that teacher (vesper-dump-teacher) or use the store's teacher"
            )
        recorded = self.meta.get("teacher_fingerprint")
        if recorded is None:
            logger.warning("%s: a version-1 store records no teacher fingerprint", self.root)
            return
        current = weights_fingerprint(encoder)
        if current != recorded:
            raise ValueError(
                f"target store {self.root} was computed by teacher {where} (weights "
                f"{recorded[:12]}), but task.teacher_path {path} has other weights "
                f"({current[:12]}): recompute the store with that teacher or use the store's"
            )

    @property
    def teacher_cfg(self) -> dict:
        return self.meta["teacher_cfg"]

    def check_compatible(self, crop: CropPolicy, layers: list[int]) -> None:
        if crop != self.crop:
            raise ValueError(
                f"target store {self.root} was computed with crop {self.crop}, but the task "
                f"crops with {crop}: recompute it with vesper-dump-teacher or change the task"
            )
        missing = sorted(set(layers) - set(self.layers))
        if missing:
            raise ValueError(
                f"target store {self.root} holds teacher layers {self.layers}, not {missing}"
            )

    def split(self, split: str, manifest_path) -> "SplitTargets":
        return SplitTargets(self, split, manifest_path)


class SplitTargets:
    """Targets of every row of one manifest, across its shards."""

    def __init__(self, store: TeacherTargetStore, split: str, manifest_path):
        done = sorted(store.root.glob(f"{split}_*_*.done.json"))
        if not done:
            raise FileNotFoundError(f"{store.root}: no finished shard for split {split!r}")
        num_shards = {json.loads(p.read_text())["num_shards"] for p in done}
        if len(num_shards) != 1 or len(done) != next(iter(num_shards)):
            raise ValueError(
                f"{store.root}: split {split!r} has {len(done)} finished shards of "
                f"{sorted(num_shards)}: run the missing shards of vesper-dump-teacher"
            )
        digest = file_digest(manifest_path)
        root, rows = read_manifest(manifest_path)
        paths = [Path(root) / rel for rel, _ in rows]
        self.arrays, self.offsets, self.lengths = {}, [], []
        for shard in range(len(done)):
            prefix = shard_prefix(store.root, split, shard, len(done))
            info = read_json(Path(f"{prefix}.done.json"))
            if info["manifest_sha256"] != digest:
                raise ValueError(
                    f"{prefix}.done.json was computed from another version of {manifest_path}: "
                    "rerun vesper-dump-teacher on it (it redoes the changed shards)"
                )
            if store.settings_sha256 and info.get("settings_sha256") != store.settings_sha256:
                raise ValueError(
                    f"{prefix}.done.json was made with other settings (teacher, layers or crop) "
                    f"than {store.root / 'meta.json'}: the store mixes two runs; recompute it "
                    "with vesper-dump-teacher --overwrite"
                )
            _check_audio(prefix, info, paths, manifest_path)
            lengths = read_lengths(prefix)
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
            for key, name, width in _shard_arrays(store):
                array = open_array(prefix, name, np.float16, (int(lengths.sum()), width))
                self.arrays.setdefault(key, []).append(array)
            self.lengths.extend(lengths.tolist())
            self.offsets.extend((shard, int(o)) for o in offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, row: int) -> dict[int, np.ndarray]:
        shard, offset = self.offsets[row]
        end = offset + self.lengths[row]
        return {key: arrays[shard][offset:end] for key, arrays in self.arrays.items()}


def _check_audio(prefix, info: dict, paths: list[Path], manifest_path) -> None:
    """The shard's audio files hold the bytes its targets were computed from (shards of
    earlier releases record no audio digest and are not checked)."""
    if not info.get("audio_sha256"):
        return
    start, end = info["rows"]
    if audio_fingerprint(paths[start:end], info)["audio_sha256"] != info["audio_sha256"]:
        raise ValueError(
            f"{prefix}.done.json: the audio files of its rows changed after the targets were "
            f"computed: rerun vesper-dump-teacher on {manifest_path} (it redoes the changed "
            "shards)"
        )


def _shard_arrays(store: TeacherTargetStore) -> list[tuple]:
    """(key, array name, width) of every array of a shard: the layers, then the features."""
    width = store.teacher_cfg.get("encoder_embed_dim")
    names = array_keys(store.layers, store.has_features)
    keys = [*store.layers, "features"]
    conv_dim = parse_conv_layers(store.teacher_cfg["conv_feature_layers"])[-1][0]
    return [(k, n, conv_dim if k == "features" else width) for k, n in zip(keys, names)]
