"""Vesper: a fairseq plugin for emotion-specific speech encoders distilled from WavLM."""

__version__ = "0.1.0"
