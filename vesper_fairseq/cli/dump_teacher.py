"""vesper-dump-teacher: precompute the teacher's target layers over a manifest.

    vesper-dump-teacher DATA --split train --teacher WavLM-Large.pt --out STORE \
        [--layers 12,24] [--max-sample-size 80000] [--shard 0 --num-shards 4]

Each process writes one shard; a finished shard is never redone, an interrupted one is redone
from its start. The store records the crop policy, so the task refuses a store that does not
match its own crop settings."""

import argparse
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..checkpoints import CheckpointError
from ..data.audio_dataset import CroppedAudioDataset
from ..data.target_store import (
    CropPolicy,
    manifest_digest,
    shard_prefix,
    shard_rows,
    write_meta,
)
from ..data.teacher import FrozenTeacher, default_target_layers
from ..io_utils import atomic_write_text, write_json_atomic
from ..modules.wavlm_layers import conv_output_lengths

logger = logging.getLogger("vesper_fairseq.dump_teacher")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="vesper-dump-teacher", description=__doc__.split("\n")[0])
    parser.add_argument("data", help="folder with {split}.tsv")
    parser.add_argument("--split", default="train")
    parser.add_argument(
        "--teacher", required=True, help="WavLM checkpoint (any load_encoder format)"
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle a teacher file that a weights-only load refuses (runs code from it)",
    )
    parser.add_argument("--out", required=True, help="target store folder")
    parser.add_argument("--layers", default=None, help="1-based teacher layers (default M/2,M)")
    parser.add_argument("--max-sample-size", type=int, default=80000, help="first-crop length")
    parser.add_argument(
        "--normalize",
        choices=["auto", "yes", "no"],
        default="auto",
        help="standardise each crop (auto: as the teacher's cfg)",
    )
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per teacher call")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def dump_shard(args) -> Path:
    teacher = FrozenTeacher.from_path(args.teacher, args.trust_checkpoint, "--trust-checkpoint")
    teacher.encoder.to(args.device)
    layers = default_target_layers(teacher.num_layers)
    if args.layers:
        layers = sorted(int(x) for x in args.layers.split(","))
    normalize = {"auto": teacher.cfg.normalize, "yes": True, "no": False}[args.normalize]
    crop = CropPolicy("first", args.max_sample_size, normalize, args.sample_rate)
    write_meta(Path(args.out), teacher.cfg.to_dict(), layers, crop)

    manifest = Path(args.data) / f"{args.split}.tsv"
    dataset = CroppedAudioDataset(
        str(manifest),
        crop="first",
        sample_rate=crop.sample_rate,
        max_sample_size=crop.max_sample_size,
        min_sample_size=0,
        pad=True,
        normalize=crop.normalize,
        shuffle=False,
    )
    start, end = shard_rows(len(dataset), args.shard, args.num_shards)
    prefix = shard_prefix(Path(args.out), args.split, args.shard, args.num_shards)
    done = Path(f"{prefix}.done.json")
    digest = manifest_digest(manifest)
    if done.exists():
        logger.info(f"{done} exists: shard {args.shard}/{args.num_shards} already finished")
        return done
    sizes = torch.as_tensor(np.minimum(dataset.sizes[start:end], crop.max_sample_size))
    frames = conv_output_lengths(sizes, teacher.cfg.conv_layers).tolist()
    offsets = np.concatenate([[0], np.cumsum(frames)]).astype(np.int64)
    arrays = {
        layer: np.lib.format.open_memmap(
            f"{prefix}.layer{layer}.npy.tmp",
            mode="w+",
            dtype=np.float16,
            shape=(int(offsets[-1]), teacher.encoder.embed_dim),
        )
        for layer in layers
    }
    rows = [r for r in range(start, end) if frames[r - start] > 0]
    with tqdm(total=len(rows), desc=f"{args.split} shard {args.shard}/{args.num_shards}") as bar:
        for i in range(0, len(rows), args.batch_size):
            chunk = rows[i : i + args.batch_size]
            _dump_batch(dataset, teacher, layers, chunk, start, frames, offsets, arrays, args)
            bar.update(len(chunk))
    for layer, array in arrays.items():
        array.flush()
        del array
        os.replace(f"{prefix}.layer{layer}.npy.tmp", f"{prefix}.layer{layer}.npy")
    atomic_write_text(f"{prefix}.len", "".join(f"{n}\n" for n in frames))
    write_json_atomic(
        done,
        {
            "shard": args.shard,
            "num_shards": args.num_shards,
            "rows": [start, end],
            "frames": int(offsets[-1]),
            "manifest_sha256": digest,
        },
    )
    logger.info(f"wrote {end - start} rows, {int(offsets[-1])} frames to {prefix}.*")
    return done


def _fname(dataset, index: int) -> str:
    name = dataset.fnames[index]
    return name if isinstance(name, str) else name.as_py()


def _dump_batch(dataset, teacher, layers, rows, start, frames, offsets, arrays, args):
    samples = [dataset[r] for r in rows]
    for row, sample in zip(rows, samples):
        expected = min(int(dataset.sizes[row]), dataset.max_sample_size)
        if len(sample["source"]) != expected:
            path = Path(dataset.root_dir) / _fname(dataset, row)
            raise ValueError(
                f"{path}: the manifest says {dataset.sizes[row]} samples, the file "
                f"has {len(sample['source'])}: regenerate the manifest"
            )
    batch = dataset.collater(samples)["net_input"]
    padding = batch["padding_mask"].to(args.device) if batch["padding_mask"].any() else None
    targets, _ = teacher(batch["source"].to(args.device), padding, layers)
    for j, row in enumerate(rows):
        n, offset = frames[row - start], offsets[row - start]
        for layer in layers:
            arrays[layer][offset : offset + n] = targets[layer][j, :n].cpu().half().numpy()


def main(argv=None):
    logging.basicConfig(
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO
    )
    try:
        dump_shard(parse_args(argv))
    except (CheckpointError, ValueError) as e:
        raise SystemExit(f"vesper-dump-teacher: {e}") from None


if __name__ == "__main__":
    main()
