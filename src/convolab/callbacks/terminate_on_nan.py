"""TerminateOnNaN: stop ``fit`` at the first batch whose loss is NaN or infinite (Keras's callback)."""

from __future__ import annotations

import math

from .base import Callback


class TerminateOnNaN(Callback):
    """Stop training as soon as the loss in a batch's logs is NaN or infinite.

    Without it ``fit`` goes on through such a batch, as Keras's does (convolab skips that batch's
    update and warns once); with it, training stops at that batch and its epoch is the last in
    the history.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
