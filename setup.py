from setuptools import find_packages, setup

setup(
    name="vesper-fairseq",
    version="0.1.0",
    description="Vesper: compact emotion-specific speech encoders distilled from WavLM, in fairseq",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["vesper_fairseq", "vesper_fairseq.*"]),
    install_requires=[
        # any fairseq 0.12.2 carrying scripts/patch_fairseq.py's edits (`make install` builds
        # one as 0.12.2+py311); importing the plugin names a missing edit
        "fairseq>=0.12.2,<0.13",
        "hydra-core>=1.3.2,<1.4",
        "omegaconf>=2.3,<2.4",
        "torch>=2.1",
        "numpy>=1.24",
        "soundfile>=0.12",
        "soxr>=0.3",
        "av>=12",
        "safetensors>=0.4",
        "tqdm>=4.60",
        "matplotlib>=3.7",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.2",
            "transformers>=5",  # hidden_states = raw layer outputs (export tests)
            "scikit-learn>=1.3",
            "onnx>=1.15",
            "onnxruntime>=1.17",
        ],
        # vesper-export --to onnx, and running the exported model
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],
        # formatters are pinned: a new release may reformat and fail `make lint`
        "dev": ["black==26.10.1", "ruff==0.17.6"],
    },
    entry_points={
        "console_scripts": [
            "vesper-dump-teacher = vesper_fairseq.cli.dump_teacher:main",
            "vesper-export = vesper_fairseq.cli.export:main",
            "vesper-extract = vesper_fairseq.cli.extract:main",
            "vesper-evaluate = vesper_fairseq.cli.evaluate:main",
            "vesper-predict = vesper_fairseq.cli.predict:main",
            "vesper-cv = vesper_fairseq.cli.cv:main",
            "vesper-manifest-audio-folder = vesper_fairseq.corpora.cli:audio_folder_main",
            "vesper-manifest-iemocap = vesper_fairseq.corpora.cli:iemocap_main",
            "vesper-manifest-meld = vesper_fairseq.corpora.cli:meld_main",
            "vesper-manifest-cremad = vesper_fairseq.corpora.cli:cremad_main",
            "vesper-manifest-lssed = vesper_fairseq.corpora.cli:lssed_main",
            "vesper-manifest-emobox = vesper_fairseq.corpora.cli:emobox_main",
            "vesper-manifest-labelled = vesper_fairseq.corpora.cli:labelled_main",
            "vesper-manifest-synthetic = vesper_fairseq.corpora.cli:synthetic_main",
        ],
    },
)
