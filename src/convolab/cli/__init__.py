"""The ``convolab`` command: ``demo``, ``train``, ``filters``, ``predict``, ``evaluate``, ``export``.

``main(argv)`` returns the exit code: 0 on success, 2 for a bad command line, 1 when the
command fails (missing or unreadable file, bad model file, dataset unavailable). Errors are
one line on stderr, ``convolab: error: ...``, never a traceback; set ``CONVOLAB_DEBUG=1`` to
see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._common import CommandError, UsageError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so ``main`` owns every error."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


def build_parser():
    """The argument parser for ``convolab`` and its subcommands."""
    from .. import __version__
    from . import demo, export_cmd, filters_cmd, predict, train

    parser = _Parser(
        prog="convolab",
        formatter_class=_Formatter,
        description="Convolutional neural networks on NumPy: the lesson's filters, models and figures.",
        epilog=("Start with 'convolab demo' (offline, well under a minute). Each command has its own --help."),
    )
    parser.add_argument("--version", action="version", version=f"convolab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo.add_parser(sub, _Formatter)
    train.add_parser(sub, _Formatter)
    filters_cmd.add_parser(sub, _Formatter)
    predict.add_parsers(sub, _Formatter)
    export_cmd.add_parser(sub, _Formatter)
    return parser


def _runtime_errors():
    """The documented exception types a command may raise for bad input or missing data."""
    errors = [CommandError, ValueError, TypeError, OSError, RuntimeError, MemoryError]
    for module, name in (("convolab.saving", "ModelFileError"), ("convolab.datasets", "DatasetUnavailableError")):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _message(exc):
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line, whatever the exception held


def _fail(exc, code):
    print(f"convolab: error: {_message(exc)}", file=sys.stderr, flush=True)
    _abort_other_ranks(code)
    return code


def _abort_other_ranks(code):
    """On one of several MPI ranks, an error must end them all: the others would wait for it for ever."""
    mpi = sys.modules.get("convolab.distributed._mpi")
    comm = mpi._state["comm"] if mpi is not None else None
    if comm is not None and comm.Get_size() > 1:
        import time

        time.sleep(0.2)  # Abort kills at once: give mpiexec time to forward the message
        comm.Abort(code)


def main(argv=None):
    """Run the ``convolab`` command line; returns the exit code (0, 1 runtime error, 2 usage error)."""
    debug = os.environ.get("CONVOLAB_DEBUG", "") not in ("", "0")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(exc, 2)
    except SystemExit as exc:  # --help and --version exit 0 through argparse
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for train --processes to start itself again
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # train says what it saved in the exception's message
        detail = " ".join(str(exc).split())
        if sys.stdout.isatty():  # end the progress bar's line first
            print(flush=True)
        print(f"convolab: interrupted{': ' + detail if detail else ''}", file=sys.stderr, flush=True)
        return 130
    except UsageError as exc:
        if debug:
            raise
        return _fail(exc, 2)
    except _runtime_errors() as exc:
        if debug:
            raise
        return _fail(exc, 1)
