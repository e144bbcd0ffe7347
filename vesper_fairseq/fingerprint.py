"""What made an output: a fingerprint of an encoder's weights and the differences between two
recorded settings, so that a rerun with anything different is refused, saying what differs."""

import hashlib

import torch

IGNORED = ("mask_emb",)  # used only for masking during training, never by a forward for targets


def weights_fingerprint(module: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the module's tensors."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if name in IGNORED:
            continue
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


# digests recorded beside outputs: two hex strings say nothing to a person, what changed does
DIGESTS = {
    "manifest_sha256": "the manifest changed",
    "settings_sha256": "the settings changed",
    "rows_sha256": "this shard's manifest rows (paths or sample counts) changed",
    "encoder_weights": "the encoder's weights changed",
}


def differences(recorded: dict, current: dict) -> list[str]:
    """'key: recorded -> current' for every key whose value differs (long values shortened);
    for a digest, what it stands for, first."""
    keys = sorted(set(recorded) | set(current), key=lambda key: (key not in DIGESTS, key))
    return [
        (
            f"{DIGESTS[key]} ({key})"
            if key in DIGESTS
            else f"{key}: {_short(recorded.get(key))} -> {_short(current.get(key))}"
        )
        for key in keys
        if recorded.get(key) != current.get(key)
    ]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
