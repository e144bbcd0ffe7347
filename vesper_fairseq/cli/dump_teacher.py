"""vesper-dump-teacher: precompute the teacher's target layers over a manifest.

    vesper-dump-teacher DATA --split train --teacher WavLM-Large.pt --out STORE \
        [--layers 12,24] [--max-sample-size 80000] [--shard 0 --num-shards 4] [--with-features]
        [--teacher-max-sample-size 320000]

Each process writes one shard (data/layer_arrays.py); a finished shard is never redone, an
interrupted one resumes after its last saved batch, and one made from another version of the
manifest or of its audio files is redone. The store records
the teacher (config and weights fingerprint), the layers and the crop policy: a run with other
settings is refused (--overwrite starts the store over), and the task refuses a store that does
not match its own teacher or crop settings. Every option is checked before anything is
written."""

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.audio_dataset import CroppedAudioDataset
from ..data.layer_arrays import (
    ShardWriter,
    compare,
    recorded_maker,
    remove_shard,
    shard_prefix,
    shard_rows,
)
from ..data.manifest_file import read_audio_manifest
from ..data.target_store import (
    CropPolicy,
    array_keys,
    open_store,
    settings_digest,
    store_settings,
)
from ..data.teacher import FrozenTeacher, default_target_layers
from ..fingerprint import AUDIO_STAT, audio_fingerprint, file_digest, weights_fingerprint
from ..io_utils import LockedError, WriteError, exclusive_lock
from ..logging_setup import argument_parser, device_problem, parse_checked, setup_logging
from ..modules.wavlm_config import SAMPLE_RATE
from ..safe_load import CheckpointError, add_trust_option

logger = logging.getLogger("vesper_fairseq.dump_teacher")

SAVE_EVERY = 60.0  # seconds between saves of a shard's progress


def parse_args(argv=None):
    parser = argument_parser("vesper-dump-teacher", __doc__)
    parser.add_argument("data", help="folder with {split}.tsv")
    parser.add_argument("--split", default="train")
    parser.add_argument(
        "--teacher", required=True, help="WavLM checkpoint (any load_encoder format)"
    )
    add_trust_option(parser, "a teacher file")
    parser.add_argument("--out", required=True, help="target store folder")
    parser.add_argument("--layers", default=None, help="1-based teacher layers (default M/2,M)")
    parser.add_argument("--max-sample-size", type=int, default=80000, help="first-crop length")
    parser.add_argument(
        "--teacher-max-sample-size",
        type=int,
        default=0,
        help="0: the teacher sees the crop (the method); N: the first N samples of each file, "
        "standardised over them, keeping the crop's frames (the authors' code: 320000)",
    )
    parser.add_argument(
        "--normalize",
        choices=["auto", "yes", "no"],
        default="auto",
        help="standardise each crop (auto: as the teacher's cfg)",
    )
    parser.add_argument(
        "--with-features",
        action="store_true",
        help="also store the frozen CNN's output (float16), fed to the student in place of its CNN",
    )
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per teacher call")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start the store over when it was made with other settings (removes its targets)",
    )
    return parse_checked(parser, argv, option_problem)


def option_problem(args) -> str | None:
    """What is wrong with the options, before anything is loaded or written."""
    for name in ("max_sample_size", "batch_size", "num_shards"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}"
    context = args.teacher_max_sample_size
    if context and context < args.max_sample_size:
        return (
            f"--teacher-max-sample-size {context} must be 0 or at least --max-sample-size "
            f"{args.max_sample_size}: the teacher must see every sample of the crop"
        )
    if not 0 <= args.shard < args.num_shards:
        return f"--shard {args.shard} is not in [0, --num-shards {args.num_shards})"
    if args.layers is not None:
        try:
            parse_layers(args.layers)
        except ValueError as e:
            return str(e)
    problem = device_problem(args.device, auto=False)
    if problem:
        return problem
    manifest = Path(args.data) / f"{args.split}.tsv"
    if not manifest.is_file():
        return f"{manifest} not found (DATA must hold {args.split}.tsv)"
    if not Path(args.teacher).exists():
        return f"--teacher {args.teacher}: no such file or folder"
    return None


def parse_layers(spec: str) -> list[int]:
    try:
        layers = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise ValueError(f"--layers must be integers like '12,24', got {spec!r}") from None
    if not layers:
        raise ValueError(f"--layers must name at least one layer, got {spec!r}")
    return layers


def target_layers(spec: str | None, num_layers: int) -> list[int]:
    layers = default_target_layers(num_layers) if spec is None else parse_layers(spec)
    if layers[0] < 1 or layers[-1] > num_layers:
        raise ValueError(f"--layers {spec}: the teacher has layers 1..{num_layers}")
    return layers


def dump_shard(args) -> Path:
    manifest = Path(args.data) / f"{args.split}.tsv"
    read_audio_manifest(manifest)  # its audio folder exists and it has rows
    teacher = FrozenTeacher.from_path(args.teacher, args.trust_checkpoint, "--trust-checkpoint")
    layers = target_layers(args.layers, teacher.num_layers)
    normalize = {"auto": teacher.cfg.normalize, "yes": True, "no": False}[args.normalize]
    crop = CropPolicy(
        "first", args.max_sample_size, normalize, SAMPLE_RATE, args.teacher_max_sample_size
    )
    dataset = first_crops(manifest, crop, crop.max_sample_size)
    # the teacher's input: the crop, or a longer start of the file (of which the crop's frames
    # are kept); stored CNN features are always the crop's, the student's own input
    context = crop.teacher_max_sample_size
    teacher_input = first_crops(manifest, crop, context) if context else None
    sizes = torch.as_tensor(np.minimum(dataset.sizes, crop.max_sample_size))
    all_frames = teacher.cfg.num_frames(sizes).tolist()
    if not any(all_frames):
        raise ValueError(
            f"{manifest}: no row gives a teacher frame when cropped to --max-sample-size "
            f"{crop.max_sample_size} (one frame needs {teacher.cfg.receptive_field} "
            "samples): the store would hold no target"
        )
    start, end = shard_rows(len(dataset), args.shard, args.num_shards)
    fingerprint = weights_fingerprint(teacher.encoder)
    settings = store_settings(
        teacher.cfg.to_dict(), fingerprint, layers, crop, features=args.with_features
    )
    prefix = shard_prefix(Path(args.out), args.split, args.shard, args.num_shards)
    with exclusive_lock(f"{prefix}.lock", f"shard {args.shard}/{args.num_shards} of {args.out}"):
        paths = [dataset.audio_path(i) for i in range(start, end)]
        audio = audio_fingerprint(paths, recorded_maker(prefix))  # a missing file: before meta
        meta = open_store(Path(args.out), settings, args.teacher, args.overwrite)
        record = {
            "shard": args.shard,
            "num_shards": args.num_shards,
            "rows": [start, end],
            "frames": int(sum(all_frames[start:end])),
            "manifest_sha256": file_digest(manifest),
            "settings_sha256": settings_digest(meta),
            **audio,
        }
        done = Path(f"{prefix}.done.json")
        keys = array_keys(layers, args.with_features)
        if not _finished(done, record, keys):
            teacher.encoder.to(args.device)
            frames = all_frames[start:end]
            inputs = (dataset, teacher_input)
            _write_shard(inputs, teacher, layers, prefix, start, frames, record, args)
            logger.info(f"wrote {end - start} rows, {record['frames']} frames to {prefix}.*")
    return done


def first_crops(manifest: Path, crop: CropPolicy, size: int) -> CroppedAudioDataset:
    """The manifest's audio cut to its first `size` samples, scaled as `crop` says."""
    return CroppedAudioDataset(
        str(manifest),
        crop="first",
        sample_rate=crop.sample_rate,
        max_sample_size=size,
        min_sample_size=0,
        pad=True,
        normalize=crop.normalize,
        shuffle=False,
    )


def _finished(done: Path, record: dict, keys) -> bool:
    """Whether `done` records this very shard; a stale one (the manifest changed) is removed."""
    if not done.exists():
        return False
    old = json.loads(done.read_text())
    diffs = compare(old, record, (AUDIO_STAT,))
    if not diffs:
        shard = f"{record['shard']}/{record['num_shards']}"
        logger.info(f"{done} exists: shard {shard} already finished")
        return True
    logger.warning(f"{done}: made from other inputs ({'; '.join(diffs)}): redoing the shard")
    remove_shard(Path(str(done)[: -len(".done.json")]), keys)
    return False


def _write_shard(inputs, teacher, layers, prefix, start, frames, record, args) -> Path:
    """Writes the shard in fixed batches from its first row; a killed run resumes at the batch
    after the last saved one (progress saved every SAVE_EVERY seconds)."""
    offsets = np.concatenate([[0], np.cumsum(frames)]).astype(np.int64)
    total, width = int(offsets[-1]), teacher.encoder.embed_dim
    targets = {f"layer{layer}": layer for layer in layers}
    shapes = {name: (total, width) for name in targets}
    if args.with_features:
        targets["features"] = "features"
        shapes["features"] = (total, teacher.cfg.conv_layers[-1][0])
    made_by = dict(record, batch_size=args.batch_size)
    writer = ShardWriter(
        prefix, shapes, "float16", made_by, restart=True, informational=(AUDIO_STAT,)
    )
    rows = [r for r in range(start, start + len(frames)) if frames[r - start] > 0]
    batches = [rows[i : i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
    desc = f"{args.split} shard {args.shard}/{args.num_shards}"
    last_save = time.monotonic()
    with tqdm(total=len(rows), initial=writer.next_row, desc=desc) as bar:
        for b in range(writer.next_row // args.batch_size, len(batches)):
            arrays = {targets[name]: array for name, array in writer.arrays.items()}
            _dump_batch(inputs, teacher, layers, batches[b], start, frames, offsets, arrays, args)
            bar.update(len(batches[b]))
            if time.monotonic() - last_save > SAVE_EVERY:
                writer.save(min((b + 1) * args.batch_size, len(rows)))
                last_save = time.monotonic()
    return writer.finish(frames, record)


def _dump_batch(inputs, teacher, layers, rows, start, frames, offsets, arrays, args):
    """`inputs`: the crops, and the teacher's longer inputs (None: the crops)."""
    dataset, teacher_input = inputs
    if teacher_input is None:
        source, padding = _batch(dataset, rows, args.device)
        targets, _ = teacher(source, padding, layers, with_features=args.with_features)
    else:
        targets, _ = teacher(*_batch(teacher_input, rows, args.device), layers)
        if args.with_features:
            targets["features"] = teacher.features(*_batch(dataset, rows, args.device))
    for j, row in enumerate(rows):
        n, offset = frames[row - start], offsets[row - start]
        for key, array in arrays.items():
            array[offset : offset + n] = targets[key][j, :n].cpu().half().numpy()


def _batch(dataset, rows, device):
    """(source, padding mask or None) of these manifest rows, checked against the manifest."""
    samples = [dataset[r] for r in rows]
    for row, sample in zip(rows, samples):
        expected = min(int(dataset.sizes[row]), dataset.max_sample_size)
        if len(sample["source"]) != expected:
            path = dataset.audio_path(row)
            raise ValueError(
                f"{path}: the manifest says {dataset.sizes[row]} samples, the file "
                f"has {len(sample['source'])}: regenerate the manifest"
            )
    batch = dataset.collater(samples)["net_input"]
    padding = batch["padding_mask"].to(device) if batch["padding_mask"].any() else None
    return batch["source"].to(device), padding


def main(argv=None):
    setup_logging()
    try:
        dump_shard(parse_args(argv))
    except (CheckpointError, LockedError, ValueError, WriteError) as e:
        raise SystemExit(f"vesper-dump-teacher: {e}") from None


if __name__ == "__main__":
    main()
