"""vesper-export: take the encoder out of a fairseq checkpoint (or any encoder checkpoint),
or export a fine-tuned classifier whole.

    vesper-export checkpoint_best.pt --to vesper --out vesper4/      # config.json + safetensors
    vesper-export checkpoint_best.pt --to wavlm --out vesper4.pt     # original WavLM layout
    vesper-export checkpoint_best.pt --to hf --out vesper4-hf/       # transformers WavLMModel
    vesper-export checkpoint_best.pt --to onnx --out encoder.onnx    # per-layer outputs
    vesper-export CLASSIFIER.pt --to hf --out emotion-hf/    # WavLMForSequenceClassification
    vesper-export CLASSIFIER.pt --to onnx --out emotion.onnx # class probabilities

CHECKPOINT is a fairseq checkpoint of model `vesper` (its student; the prediction heads are
dropped) or `vesper_classifier`, or any other format load_encoder reads. A classifier is
exported whole by `--to hf` and `--to onnx` (`--encoder-only`: its upstream alone) and as its
upstream by `vesper` and `wavlm`. A folder export replaces OUT whole, never leaving a mix of
old and new files; an OUT holding files the export does not write is refused (--overwrite
removes them). Checkpoints are read weights-only: a file that pickles other
Python objects is refused unless --trust-checkpoint (which runs code from the file: trusted
files only)."""

import logging
from pathlib import Path

import torch

from ..formats import EXPORT_FORMATS, export_encoder, load_encoder
from ..io_utils import WriteError
from ..logging_setup import argument_parser, parse_checked, setup_logging
from ..safe_load import CheckpointError, add_trust_option, load_checkpoint

logger = logging.getLogger("vesper_fairseq.export")

FORMATS = (*EXPORT_FORMATS, "onnx")


def parse_args(argv=None):
    parser = argument_parser("vesper-export", __doc__)
    parser.add_argument("checkpoint", help="fairseq checkpoint (vesper / vesper_classifier)")
    parser.add_argument(
        "--to", required=True, choices=FORMATS, help="vesper | wavlm | hf | onnx (see README)"
    )
    parser.add_argument(
        "--out", required=True, help="output folder (vesper, hf) or file (wavlm .pt, .onnx)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="remove the files of an --out folder that this export does not write (else refused)",
    )
    parser.add_argument(
        "--encoder-only",
        action="store_true",
        help="with a classifier checkpoint and --to hf/onnx: export only its upstream",
    )
    parser.add_argument(
        "--layers", default="all", help="ONNX encoder outputs: all | i,j,... (layer_results)"
    )
    add_trust_option(parser)
    return parse_checked(parser, argv, option_problem)


def option_problem(args) -> str | None:
    if args.layers != "all" and args.to != "onnx":
        return f"--layers {args.layers} chooses the outputs of an ONNX export (--to onnx)"
    return None


def read_classifier(path, allow_pickle: bool):
    """(model, info) when `path` is a vesper_classifier checkpoint file, else None."""
    from ..inference.checkpoint import classifier_from_state, is_classifier_checkpoint

    if not Path(path).is_file() or Path(path).suffix == ".safetensors":
        return None
    state = load_checkpoint(path, allow_pickle=allow_pickle, opt_in="--trust-checkpoint")
    return classifier_from_state(state, path) if is_classifier_checkpoint(state) else None


def export_classifier(model, info, args) -> Path:
    from ..formats.hf_classifier import save_hf_classifier
    from ..formats.onnx_export import export_onnx_classifier

    if args.to == "hf":
        out = save_hf_classifier(model, info, args.out, args.overwrite)
    else:
        out = export_onnx_classifier(model, info, args.out)
    logger.info(f"exported the {len(info.labels)}-class classifier as {args.to} to {out}")
    return out


def export(args) -> Path:
    allow_pickle = args.trust_checkpoint
    if args.to in ("hf", "onnx") and not args.encoder_only:
        classifier = read_classifier(args.checkpoint, allow_pickle)
        if classifier is not None and args.layers != "all":
            raise ValueError(
                f"--layers {args.layers} chooses an encoder's outputs; a classifier's ONNX "
                "model outputs its probabilities and logits: add --encoder-only to export "
                "its upstream with those layers"
            )
        if classifier is not None:
            return export_classifier(*classifier, args)
    encoder = load_encoder(args.checkpoint, allow_pickle=allow_pickle, opt_in="--trust-checkpoint")
    if args.to == "onnx":
        from ..formats.onnx_export import export_onnx_encoder

        out = export_onnx_encoder(encoder, args.out, args.layers)
    else:
        source = {"checkpoint": str(Path(args.checkpoint).resolve())}
        out = export_encoder(encoder, args.out, args.to, source=source, overwrite=args.overwrite)
    params = sum(p.numel() for p in encoder.parameters()) / 1e6
    logger.info(
        f"exported {encoder.num_layers}-layer encoder ({params:.2f}M parameters) as "
        f"{args.to} to {out}"
    )
    return out


def main(argv=None):
    setup_logging()
    args = parse_args(argv)
    try:
        with torch.no_grad():
            export(args)
    except (CheckpointError, ValueError, WriteError) as e:
        raise SystemExit(f"vesper-export: {e}") from None


if __name__ == "__main__":
    main()
