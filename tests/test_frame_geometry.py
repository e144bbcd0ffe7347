"""Frame geometry comes from the encoder config: the frames it counts are the encoder's."""

import pytest
import torch

from vesper_fairseq.modules.masking import MaskingConfig, check_frame_geometry
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import WavLMConfig, tiny_wavlm_config


def test_wavlm_geometry_is_400_sample_frames_every_320():
    cfg = WavLMConfig()
    assert (cfg.frame_stride, cfg.receptive_field) == (320, 400)
    lengths = [0, 399, 400, 719, 720, 16000, 16319, 16320]
    assert [cfg.num_frames(n) for n in lengths] == [max(0, 1 + (n - 400) // 320) for n in lengths]


def test_counted_frames_are_the_encoders_output_frames():
    torch.manual_seed(0)
    encoder = WavLMEncoder(tiny_wavlm_config(encoder_layers=1)).eval()
    with torch.inference_mode():
        for n in (400, 719, 720, 3333, 8000):
            out = encoder(torch.randn(1, n), None)
            assert out.layer_results[0].shape[1] == encoder.cfg.num_frames(n)
    lengths = torch.tensor([400, 1000, 8000])
    assert encoder.cfg.num_frames(lengths).tolist() == [1, 2, 24]


def test_masking_frames_must_be_the_encoders():
    check_frame_geometry(MaskingConfig(), tiny_wavlm_config())
    other = tiny_wavlm_config(conv_feature_layers="[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)]")
    with pytest.raises(ValueError, match=r"\(400, 320\) differ from the encoder's CNN frames"):
        check_frame_geometry(MaskingConfig(), other)
