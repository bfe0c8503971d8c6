"""AdamW: Adam with decoupled weight decay (Loshchilov and Hutter), Keras's formulation."""

from __future__ import annotations

from .adam import Adam


class AdamW(Adam):
    """Adam whose step first decays every variable: ``w -= w * weight_decay * lr``, then Adam's
    ``m += (g - m)(1 - b1)``; ``v += (g**2 - v)(1 - b2)``;
    ``w -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)``.

    The decay is the base optimizer's ``weight_decay`` (Keras 3 applies it the same way for
    every optimizer); AdamW only makes it required and gives it a default.

    Defaults as Keras: ``learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
    epsilon=1e-7, amsgrad=False``.
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        name=None,
        **kwargs,
    ):
        if weight_decay is None:
            raise ValueError("AdamW: `weight_decay` must be a float (use Adam for no decay); got None")
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            name=name,
            weight_decay=weight_decay,
            **kwargs,
        )
