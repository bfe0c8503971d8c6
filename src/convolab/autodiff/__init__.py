"""Reverse-mode differentiation over convolab's ops: a tape, tensors and ``keras.ops``.

- :mod:`.tensor`: :class:`Tensor` (a value and the node that made it) and :class:`Variable`
  (a layer's weight array, updated in place by the optimizer);
- :mod:`.tape`: :class:`GradientTape`, which records while its block runs and replays the
  recorded backwards in reverse;
- :mod:`.functions`: the NumPy-like ops Keras programs use (``keras.ops``), each with its
  hand-written backward.
"""

from . import functions
from .tape import GradientTape, is_recording, record
from .tensor import Node, Tensor, Variable, unwrap

__all__ = ["GradientTape", "Node", "Tensor", "Variable", "functions", "is_recording", "record", "unwrap"]
