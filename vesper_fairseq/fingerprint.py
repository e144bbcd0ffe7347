"""What made an output: fingerprints of an encoder's weights, of the audio files read and of
other input files (a checkpoint, a manifest), and the differences between two recorded
settings, so that a rerun with anything different is refused, saying what differs."""

import hashlib
from pathlib import Path

import torch
from tqdm import tqdm

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
    "checkpoint_sha256": "the checkpoint file changed",
    "manifest_sha256": "the manifest changed",
    "labels_sha256": "the split's labels changed",
    "settings_sha256": "the settings changed",
    "rows_sha256": "this shard's manifest rows (paths or sample counts) changed",
    "encoder_weights": "the encoder's weights changed",
    "audio_sha256": "the contents of the audio files changed",
    "config_sha256": "the config file changed",
    "manifests_sha256": "the fold's manifest files (.tsv, .emo, dict.*.txt) changed",
    "upstream_weights": "the upstream encoder's weights changed",
}
# sizes and modification times of the audio files: recorded to skip re-reading unchanged files,
# never compared (a copied dataset has new times and the same contents)
AUDIO_STAT = "audio_stat_sha256"


def audio_fingerprint(paths, recorded: dict | None = None) -> dict:
    """{"audio_sha256": digest of the files' bytes, in order; AUDIO_STAT: of their sizes and
    modification times}. The bytes are read only when the sizes or times differ from those
    `recorded` (an earlier audio_fingerprint): files copied, touched or changed."""
    paths = [Path(p) for p in paths]
    stat = _stat_digest(paths)
    if recorded and recorded.get(AUDIO_STAT) == stat and recorded.get("audio_sha256"):
        return {"audio_sha256": recorded["audio_sha256"], AUDIO_STAT: stat}
    return {"audio_sha256": _content_digest(paths), AUDIO_STAT: stat}


def _stat_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            raise ValueError(f"{path}: file not found (listed in the manifest)") from None
        except OSError as e:
            raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None
        digest.update(f"{path}\t{info.st_size}\t{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _content_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    quiet = len(paths) < 200
    for path in tqdm(paths, desc="hashing audio", unit="file", leave=False, disable=quiet):
        digest.update(bytes.fromhex(file_digest(path)))
    return digest.hexdigest()


def file_digest(path) -> str:
    """sha256 of the file's bytes (hex); a file that cannot be read is named."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None


def differences(recorded: dict, current: dict) -> list[str]:
    """'key: recorded -> current' for every key whose value differs (long values shortened);
    for a digest, what it stands for, first (in the order of DIGESTS)."""
    order = list(DIGESTS)
    keys = sorted(
        set(recorded) | set(current),
        key=lambda key: (order.index(key), "") if key in DIGESTS else (len(order), key),
    )
    return [
        _difference(key, recorded.get(key), current.get(key))
        for key in keys
        if recorded.get(key) != current.get(key)
    ]


def _difference(key: str, recorded, current) -> str:
    if key not in DIGESTS:
        return f"{key}: {_short(recorded)} -> {_short(current)}"
    if recorded is None:
        return f"no {key} recorded (made by an earlier release)"
    return f"{DIGESTS[key]} ({key})"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
