"""Helpers for fairseq's OmegaConf configs."""

from omegaconf import OmegaConf, open_dict


def persist_build_values(cfg, **values) -> None:
    """Store values computed while building a model (e.g. the encoder's own cfg) in its config,
    so that checkpoints reload without the files they were built from.

    fairseq's `models.build_model` hands the model a merged copy of `cfg.model` whose parent is
    the root config; the trainer saves the root config, so the values go to both nodes."""
    targets = [cfg]
    parent = cfg._get_parent() if OmegaConf.is_config(cfg) else None
    if parent is not None and "model" in parent and parent.model is not cfg:
        targets.append(parent.model)
    for target in targets:
        with open_dict(target):
            for key, value in values.items():
                target[key] = value
