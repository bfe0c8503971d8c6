"""Callbacks with Keras's names."""
from .base import Callback, CallbackList, LambdaCallback
from .epoch_timer import EpochTimer
from .early_stopping import EarlyStopping, TerminateOnNaN
from .history import History
from .model_checkpoint import ModelCheckpoint
from .progbar_logger import ProgbarLogger

__all__ = ["Callback", "CallbackList", "EarlyStopping", "EpochTimer", "History", "LambdaCallback", "ModelCheckpoint", "ProgbarLogger", "TerminateOnNaN"]
