"""A finished run started again stops before its first step instead of training one update
past optimization.max_update (fairseq checks the limit only after a step)."""

import logging

logger = logging.getLogger(__name__)


def exit_if_complete(task_cfg, model) -> None:
    """Called by the tasks' begin_epoch, before the epoch's first update. When resuming, the
    trainer has given the model the checkpoint's update count; the task's config holds
    max_update (an interpolation of optimization.max_update)."""
    try:
        max_update = int(task_cfg.max_update or 0)
    except Exception:  # a task built outside a training config
        return
    done = getattr(model, "num_updates", None)
    if max_update and done is not None and done >= max_update:
        logger.info(
            f"training is complete: the checkpoint is at update {done} and "
            f"optimization.max_update is {max_update}; nothing to do (raise "
            "optimization.max_update to train further)"
        )
        raise SystemExit(0)
