"""Precomputed teacher targets: HuBERT-style sharded float16 `.npy` arrays with `.len` files.

Layout of a store folder::

    meta.json                         teacher cfg, layers, dtype and the crop policy used
    {split}_{i}_{n}.layer{L}.npy      (frames, dim) float16, rows of shard i of n concatenated
    {split}_{i}_{n}.len               frames per manifest row of the shard, one per line
    {split}_{i}_{n}.done.json         written last: the shard is complete (rows, manifest hash)

Shard i of n holds the contiguous manifest rows `shard_rows(num_rows, i, n)`.
"""

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io_utils import write_json_atomic

logger = logging.getLogger(__name__)

STORE_FORMAT = "vesper-teacher-targets"
STORE_VERSION = 1


@dataclass(frozen=True)
class CropPolicy:
    """How waveforms were cut and scaled before the teacher saw them."""

    mode: str
    max_sample_size: int
    normalize: bool
    sample_rate: int = 16000


def shard_rows(num_rows: int, shard: int, num_shards: int) -> tuple[int, int]:
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is not in [0, {num_shards})")
    per = -(-num_rows // num_shards)
    return min(shard * per, num_rows), min((shard + 1) * per, num_rows)


def manifest_digest(manifest_path) -> str:
    return hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest()


def shard_prefix(root: Path, split: str, shard: int, num_shards: int) -> Path:
    return Path(root) / f"{split}_{shard}_{num_shards}"


def write_meta(root: Path, teacher_cfg: dict, layers: list[int], crop: CropPolicy) -> dict:
    """Writes meta.json, or checks that an existing one describes the same targets."""
    meta = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "dtype": "float16",
        "layers": sorted(layers),
        "teacher_cfg": teacher_cfg,
        "crop": asdict(crop),
    }
    path = Path(root) / "meta.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(meta)):
            raise ValueError(
                f"{path} describes other targets (layers, teacher or crop policy differ): "
                "use a new store folder"
            )
        return old
    Path(root).mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, meta)
    return meta


class TeacherTargetStore:
    """Reads a store written by `vesper-dump-teacher`, memory-mapped."""

    def __init__(self, root):
        self.root = Path(root)
        path = self.root / "meta.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: {root} is not a teacher target store")
        self.meta = json.loads(path.read_text())
        if self.meta.get("format") != STORE_FORMAT or self.meta.get("version") != STORE_VERSION:
            raise ValueError(f"{path}: not a version-{STORE_VERSION} {STORE_FORMAT} store")
        self.layers = list(self.meta["layers"])
        self.crop = CropPolicy(**self.meta["crop"])

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
        digest = manifest_digest(manifest_path)
        self.arrays, self.offsets, self.lengths = {}, [], []
        for shard in range(len(done)):
            prefix = shard_prefix(store.root, split, shard, len(done))
            info = json.loads(Path(f"{prefix}.done.json").read_text())
            if info["manifest_sha256"] != digest:
                raise ValueError(
                    f"{prefix}.done.json was computed from another version of {manifest_path}"
                )
            lengths = np.loadtxt(f"{prefix}.len", dtype=np.int64, ndmin=1)
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
            for layer in store.layers:
                array = np.load(f"{prefix}.layer{layer}.npy", mmap_mode="r")
                self.arrays.setdefault(layer, []).append(array)
            self.lengths.extend(lengths.tolist())
            self.offsets.extend((shard, int(o)) for o in offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, row: int) -> dict[int, np.ndarray]:
        shard, offset = self.offsets[row]
        end = offset + self.lengths[row]
        return {layer: arrays[shard][offset:end] for layer, arrays in self.arrays.items()}
