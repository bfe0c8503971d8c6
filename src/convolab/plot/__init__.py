"""Figures for the lesson and for your own experiments (matplotlib, loaded on first use).

Every function returns a ``matplotlib.figure.Figure`` and, given ``save=path``, writes it
there too. No display is needed: figures render headless, and show inline in Jupyter.

The lesson's ``from tfcv import *`` helpers keep their names::

    from convolab.plot import *      # plot_convolution, display_dataset, plot_results, ...
    plot_convolution(x_train[:5], [[-1., 0., 1.], [-1., 0., 1.]], 'Vertical edge filter')
    plot_results(hist)
"""

from ._base import DPI as DPI  # re-exported: convolab.plot.DPI
from .convolution import plot_convolution
from .data import display_dataset
from .evaluation import confusion_matrix, plot_confusion_matrix, plot_misclassified
from .layers import plot_feature_maps, plot_filters
from .training import plot_results

__all__ = [
    "confusion_matrix",
    "display_dataset",
    "plot_confusion_matrix",
    "plot_convolution",
    "plot_feature_maps",
    "plot_filters",
    "plot_misclassified",
    "plot_results",
]
