"""vesper-export: take the encoder out of a fairseq checkpoint (or any encoder checkpoint).

    vesper-export checkpoint_best.pt --to vesper --out vesper4/      # config.json + safetensors
    vesper-export checkpoint_best.pt --to wavlm --out vesper4.pt     # original WavLM layout
    vesper-export checkpoint_best.pt --to hf --out vesper4-hf/       # transformers WavLMModel

CHECKPOINT is a fairseq checkpoint of model `vesper` (its student; the prediction heads are
dropped) or `vesper_classifier` (its upstream; the classification head is dropped), or any
other format load_encoder reads, weights-only: a file that pickles other Python objects is
refused unless --trust-checkpoint (which runs code from the file: trusted files only)."""

import argparse
import logging
from pathlib import Path

import torch

from ..checkpoints import CheckpointError, load_encoder
from ..export import EXPORT_FORMATS, export_encoder

logger = logging.getLogger("vesper_fairseq.export")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="vesper-export", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="fairseq checkpoint (vesper / vesper_classifier)")
    parser.add_argument(
        "--to", required=True, choices=EXPORT_FORMATS, help="vesper | wavlm | hf (see README)"
    )
    parser.add_argument("--out", required=True, help="output folder (vesper, hf) or .pt (wavlm)")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle a checkpoint that a weights-only load refuses (runs code from the file)",
    )
    return parser.parse_args(argv)


def export(args) -> Path:
    encoder = load_encoder(
        args.checkpoint, allow_pickle=args.trust_checkpoint, opt_in="--trust-checkpoint"
    )
    source = {"checkpoint": str(Path(args.checkpoint).resolve())}
    out = export_encoder(encoder, args.out, args.to, source=source)
    params = sum(p.numel() for p in encoder.parameters()) / 1e6
    logger.info(
        f"exported {encoder.num_layers}-layer encoder ({params:.2f}M parameters) as "
        f"{args.to} to {out}"
    )
    return out


def main(argv=None):
    logging.basicConfig(
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO
    )
    args = parse_args(argv)
    try:
        with torch.no_grad():
            export(args)
    except CheckpointError as e:
        raise SystemExit(f"vesper-export: {e}") from None


if __name__ == "__main__":
    main()
