"""fairseq's manifest audio dataset with a crop policy and normalisation of the crop."""

import logging
import os

import numpy as np
import torch
from fairseq.data.audio.raw_audio_dataset import FileAudioDataset

from vesper_fairseq.corpora.audio_headers import truncation_problem
from vesper_fairseq.data.manifest_file import ManifestError, read_manifest
from vesper_fairseq.modules.waveform import standardize_waveform

logger = logging.getLogger(__name__)

CROP_MODES = ("first", "random")


class CroppedAudioDataset(FileAudioDataset):
    """Reads `{split}.tsv` rows like FileAudioDataset, then crops every item to
    `max_sample_size` (`first`: from the start, as the Vesper authors do; `random`: a uniformly
    drawn window) and, if `normalize`, standardises the crop itself (what the encoder sees).

    Items shorter than `min_sample_size` are dropped at load time; shorter crops are padded at
    collation (`pad=True`) or the batch is cut to its shortest item (`pad=False`)."""

    def __init__(self, manifest_path, *, crop: str = "first", seed: int = 1, **kwargs):
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
        normalize = kwargs.pop("normalize", False)
        read_manifest(manifest_path)  # a clear error (file, line) for what fairseq cannot read
        super().__init__(manifest_path, normalize=False, **kwargs)
        self.manifest_path = manifest_path
        self.crop = crop
        self.normalize_crop = normalize
        self.seed = seed
        self.epoch = 1
        skipped = self.skipped_indices
        num_rows = len(self.sizes) + len(skipped)
        self.manifest_rows = np.array(
            [i for i in range(num_rows) if i not in skipped], dtype=np.int64
        )

    def set_epoch(self, epoch):
        self.epoch = epoch

    def crop_window(self, index: int, size: int) -> tuple[int, int]:
        """(start, end) in samples of the crop taken from item `index` of `size` samples."""
        excess = size - self.max_sample_size
        if excess <= 0:
            return 0, size
        if self.crop == "first":
            return 0, self.max_sample_size
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        start = int(rng.integers(0, excess + 1))
        return start, start + self.max_sample_size

    def crop_to_max_size(self, wav, target_size):
        # called by the collater only with pad=False, to cut a batch to its shortest item
        if self.crop == "first":
            return wav[:target_size]
        return super().crop_to_max_size(wav, target_size)

    def audio_path(self, index: int) -> str:
        fn = self.fnames[index]
        fn = fn if isinstance(self.fnames, list) else fn.as_py()
        return os.path.join(self.root_dir, self.text_compressor.decompress(fn))

    def where(self, index: int) -> str:
        line = int(self.manifest_rows[index]) + 2
        return f"{self.audio_path(index)} (line {line} of {self.manifest_path})"

    def __getitem__(self, index):
        problem = truncation_problem(self.audio_path(index))  # soundfile reads it as shorter
        if problem:
            raise ManifestError(f"{self.where(index)}: {problem}; copy the file again")
        try:
            item = super().__getitem__(index)
        except Exception as exc:  # soundfile errors, fairseq's bare "sample rate: 8000, need ..."
            raise ManifestError(
                f"{self.where(index)}: {exc}; expected {self.sample_rate} Hz audio soundfile can "
                "read (the manifests/ scripts convert any audio to 16 kHz mono)"
            ) from exc
        start, end = self.crop_window(index, len(item["source"]))
        source = item["source"][start:end]
        if self.normalize_crop:
            with torch.no_grad():
                source = standardize_waveform(source[None])[0]
        return {"id": index, "source": source}

    def size(self, index):
        return min(int(self.sizes[index]), self.max_sample_size)
