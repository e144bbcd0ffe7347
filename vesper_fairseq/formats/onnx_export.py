"""ONNX export of an encoder (selected per-layer outputs) or a classifier (probabilities).

Graphs take `waveform` (float32, batch x samples, raw 16 kHz audio: the standardisation the
encoder's cfg asks for is inside the graph, over the real samples) and `padding_mask` (bool,
batch x samples, True on padded samples); batch and length are dynamic. Outputs:

    encoder:    layer_{i} (batch x frames x D) for each selected i (indices into layer_results),
                frame_padding_mask (bool, batch x frames)
    classifier: probabilities (batch x classes), logits (batch x classes)

The labels, sample rate and training crop are in the model's metadata_props. Opset 17, written
with torch's TorchScript-based exporter (`dynamo=False`): it traces the eager model without
extra packages or network access and keeps the dynamic axes through the frame arithmetic;
torch's default dynamo exporter needs onnxscript, which this project does not require.
"""

import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from ..inference.checkpoint import ClassifierInfo
from ..io_utils import atomic_path
from ..models.vesper_classifier import VesperClassifier
from ..modules.wavlm import WavLMEncoder
from ..modules.wavlm_config import SAMPLE_RATE

logger = logging.getLogger(__name__)

OPSET = 17
INPUTS = ["waveform", "padding_mask"]


class EncoderGraph(nn.Module):
    def __init__(self, encoder: WavLMEncoder, layers: list[int]):
        super().__init__()
        self.encoder, self.layers = encoder, layers

    def forward(self, waveform, padding_mask):
        out = self.encoder(waveform, padding_mask, max_layer=max(self.layers))
        return (*[out.layer_results[i] for i in self.layers], out.padding_mask)


class ClassifierGraph(nn.Module):
    def __init__(self, model: VesperClassifier):
        super().__init__()
        self.model = model

    def forward(self, waveform, padding_mask):
        logits = self.model(waveform, padding_mask)
        return torch.softmax(logits, dim=-1), logits


def parse_layers(spec: str | None, num_layers: int) -> list[int]:
    """'all' / None -> 0..N; 'i,j' -> [i, j] (indices into layer_results)."""
    if spec in (None, "all"):
        return list(range(num_layers + 1))
    try:
        layers = sorted({int(x) for x in spec.split(",")})
    except ValueError:
        raise ValueError(
            f"layers must be 'all' or comma-separated integers, got {spec!r}"
        ) from None
    if not layers or layers[0] < 0 or layers[-1] > num_layers:
        raise ValueError(f"layers {spec!r} must lie in 0..{num_layers}")
    return layers


def export_onnx_encoder(encoder: WavLMEncoder, out, layers: str | None = None) -> Path:
    chosen = parse_layers(layers, encoder.num_layers)
    outputs = [f"layer_{i}" for i in chosen] + ["frame_padding_mask"]
    axes = {name: {0: "batch", 1: "frames"} for name in outputs}
    metadata = {"kind": "encoder", "layers": json.dumps(chosen), "sample_rate": str(SAMPLE_RATE),
                "encoder": json.dumps(encoder.cfg.to_dict())}  # fmt: skip
    return _export(EncoderGraph(encoder.eval(), chosen), out, outputs, axes, metadata)


def export_onnx_classifier(model: VesperClassifier, info: ClassifierInfo, out) -> Path:
    outputs = ["probabilities", "logits"]
    axes = {name: {0: "batch"} for name in outputs}
    metadata = {
        "kind": "classifier",
        "labels": json.dumps(info.labels),
        "sample_rate": str(info.sample_rate),
        "crop_samples": str(info.crop_samples),
    }
    return _export(ClassifierGraph(model.eval()), out, outputs, axes, metadata)


def _export(graph: nn.Module, out, outputs, axes, metadata) -> Path:
    import onnx

    out = Path(out)
    waveform = torch.randn(2, SAMPLE_RATE, generator=torch.Generator().manual_seed(0))
    padding = torch.zeros(2, SAMPLE_RATE, dtype=torch.bool)
    padding[1, 12000:] = True
    axes = {**axes, **{name: {0: "batch", 1: "samples"} for name in INPUTS}}
    with atomic_path(out) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation notes, not user problems
            torch.onnx.export(graph.float().eval(), (waveform, padding), str(tmp), dynamo=False,
                              opset_version=OPSET, input_names=INPUTS, output_names=outputs,
                              dynamic_axes=axes)  # fmt: skip
        proto = onnx.load(str(tmp))
        separate_shared_weights(proto.graph)
        for key, value in metadata.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp))
    logger.info("wrote %s (ONNX opset %d; outputs %s)", out, OPSET, ", ".join(outputs))
    return out


def separate_shared_weights(graph) -> None:
    """torch's exporter gives weights of equal values (e.g. two LayerNorms still at their
    initial ones) one initializer and names the others through Identity nodes, which it may
    place after their first use; onnxruntime then refuses the model. Each such name becomes an
    initializer of its own again."""
    initializers = {init.name: init for init in graph.initializer}
    shared = [n for n in graph.node if n.op_type == "Identity" and n.input[0] in initializers]
    for node in shared:
        copy = graph.initializer.add()
        copy.CopyFrom(initializers[node.input[0]])
        copy.name = node.output[0]
        graph.node.remove(node)
