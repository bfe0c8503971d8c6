"""``DistributedOptimizer``: any convolab optimizer, stepping on gradients averaged over ranks."""

from __future__ import annotations

from ..optimizers import Optimizer, get as get_optimizer
from .reducer import GradientAverager


def DistributedOptimizer(optimizer, timeout=None):
    """Make ``optimizer`` average its gradients over every rank before each step (Horovod's name).

    The averaged gradients then go through the optimizer's own step, clipping included, so
    ``n`` ranks with batch ``b`` each step as one process with batch ``n * b`` does.

    Args:
        optimizer: a convolab optimizer, or a name such as ``'adam'``.
        timeout: seconds to wait for the other ranks' gradients before aborting the job
            (see :class:`GradientAverager`); None waits for ever.

    Returns:
        The same optimizer object, its ``gradient_reducer`` set; its class is unchanged, so a
        model compiled with it saves and loads as usual (a loaded model's optimizer is a plain
        one again: wrap it again to keep training on several ranks).
    """
    opt = get_optimizer(optimizer)
    if not isinstance(opt, Optimizer):
        raise TypeError(
            f"DistributedOptimizer expects a convolab optimizer or its name; got {type(optimizer).__name__}"
        )
    if isinstance(opt.gradient_reducer, GradientAverager):
        raise ValueError(
            f"DistributedOptimizer: this {type(opt).__name__} already averages its gradients over "
            "ranks; expected a plain optimizer"
        )
    opt.gradient_reducer = GradientAverager(timeout=timeout)
    return opt
