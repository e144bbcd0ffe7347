"""vesper-extract: per-layer features of an encoder over a manifest or a list of audio files.

    vesper-extract --encoder vesper4/ --manifest data/train.tsv --layers all --out feats/
    vesper-extract --encoder vesper4.pt --audio a.wav b.wav --layers 0,4 \
        --granularity utterance --out feats/ --name clips

Writes {out}/{name}_{shard}_{num_shards}.layer{L}.npy (+ .len, .tsv, .done.json last), see
vesper_fairseq/features/dump.py. Audio may be any file the manifest scripts read (any sample rate
and channel count: converted to 16 kHz mono by the same code); every input is checked before
anything is written. An interrupted run resumes where its last progress save left off when
rerun with the same arguments."""

import logging
import os
from pathlib import Path

import torch

from ..features.dump import (
    DumpSettings,
    check_manifest_audio,
    dump_features,
    read_manifest,
    rows_of_files,
)
from ..formats import load_encoder
from ..io_utils import LockedError, WriteError
from ..logging_setup import (
    argument_parser,
    device_problem,
    number_problem,
    parse_checked,
    setup_logging,
)
from ..safe_load import CheckpointError, add_trust_option

logger = logging.getLogger("vesper_fairseq.extract")


def parse_args(argv=None):
    parser = argument_parser("vesper-extract", __doc__)
    parser.add_argument("--encoder", required=True, help="any checkpoint load_encoder reads")
    add_trust_option(parser, "an encoder file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", help="fairseq manifest .tsv (root line, path<TAB>samples)")
    source.add_argument("--audio", nargs="+", help="audio files")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--name",
        default=None,
        help="output name; by default the manifest's stem, the file's stem or the files' folder",
    )
    parser.add_argument(
        "--layers",
        default="all",
        help="'all' or comma-separated indices into layer_results: 0 = input of layer 1, "
        "l = output of layer l",
    )
    parser.add_argument("--granularity", choices=["frame", "utterance"], default="frame")
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument(
        "--max-chunk",
        type=float,
        default=30.0,
        help="seconds of audio per encoder call (longer files are chunked; 0 = never)",
    )
    parser.add_argument(
        "--context", type=int, default=None, help="context frames each side of a chunk"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="chunks per encoder call")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="redo the shard (a finished one stays until the new one replaces it)",
    )
    parser.add_argument(
        "--save-every", type=float, default=60.0, help="seconds between progress saves"
    )
    return parse_checked(parser, argv, option_problem)


def option_problem(args) -> str | None:
    """What is wrong with the options, before anything is loaded or written."""
    for option, low in (("batch_size", 1), ("num_shards", 1), ("context", 0)):
        value = getattr(args, option)
        if value is not None and value < low:
            return f"--{option.replace('_', '-')} must be >= {low}, got {value}"
    if not 0 <= args.shard < args.num_shards:
        return f"--shard {args.shard} is not in [0, --num-shards {args.num_shards})"
    for option in ("max_chunk", "save_every"):
        problem = number_problem(f"--{option.replace('_', '-')}", getattr(args, option), 0)
        if problem:
            return problem
    return device_problem(args.device, auto=False)


def parse_layers(spec: str, num_layers: int) -> list[int]:
    if spec == "all":
        return list(range(num_layers + 1))
    try:
        layers = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise ValueError(f"--layers must be 'all' or integers like '0,4', got {spec!r}") from None
    if not layers or layers[0] < 0 or layers[-1] > num_layers:
        raise ValueError(f"--layers {spec!r}: this encoder has layers 0..{num_layers}")
    return layers


def default_name(args) -> str:
    """Named after the input: the manifest's stem, the single file's stem, or the folder that
    holds the files."""
    if args.manifest:
        return Path(args.manifest).stem
    paths = [Path(a).resolve() for a in args.audio]
    if len(paths) == 1:
        return paths[0].stem
    return Path(os.path.commonpath([p.parent for p in paths])).name or "audio"


def extract(args) -> Path:
    if args.manifest:  # every input is checked before anything is written
        root, rows = read_manifest(Path(args.manifest))
        check_manifest_audio(root, rows)
    else:
        root, rows = rows_of_files(args.audio)
    name = args.name or default_name(args)
    encoder = load_encoder(
        args.encoder, allow_pickle=args.trust_checkpoint, opt_in="--trust-checkpoint"
    ).to(args.device)
    settings = DumpSettings(
        layers=parse_layers(args.layers, encoder.num_layers),
        granularity=args.granularity,
        dtype=args.dtype,
        max_chunk=args.max_chunk or None,
        context=args.context,
        batch_size=args.batch_size,
        shard=args.shard,
        num_shards=args.num_shards,
    )
    return dump_features(
        encoder,
        args.encoder,
        root,
        rows,
        Path(args.out),
        name,
        settings,
        device=args.device,
        overwrite=args.overwrite,
        save_every=args.save_every,
    )


def main(argv=None):
    setup_logging()
    args = parse_args(argv)
    try:
        extract(args)
    except (CheckpointError, LockedError, ValueError, WriteError) as e:
        raise SystemExit(f"vesper-extract: {e}") from None


if __name__ == "__main__":
    main()
