"""CSVLogger: one CSV row per epoch with the epoch's logs (Keras's callback)."""

from __future__ import annotations

import collections.abc
import csv
import os

import numpy as np

from .base import Callback


class CSVLogger(Callback):
    """Stream each epoch's logs to a CSV file, as Keras 3 writes it.

    Columns: ``epoch`` (counted from 0) then the log keys sorted, fixed by the first epoch;
    a key missing later is written ``NA``; lists and arrays are written ``"[a, b]"``.
    Rows end in ``\\r\\n`` (the csv module's ``excel`` dialect) and are flushed each epoch.

    Args:
        filename: path of the CSV file, e.g. ``'run/log.csv'``.
        separator: string between the fields.
        append: True appends to an existing file (the header is written only if it is empty),
            False overwrites it.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:

            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _cell(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _cell(value):
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value
    if isinstance(value, collections.abc.Iterable):
        return f'"[{", ".join(map(str, value))}]"'
    return value
