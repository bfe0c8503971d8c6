"""``convolab export``: a saved model to ONNX for inference elsewhere."""

from __future__ import annotations

from pathlib import Path

from ._common import CommandError, load_model_file, writable_file


def add_parser(sub, formatter):
    p = sub.add_parser(
        "export",
        formatter_class=formatter,
        help="export a saved model to ONNX",
        description=(
            "Write an ONNX graph (NHWC input, float32) that gives the same predictions as "
            "model.predict in onnxruntime. Needs the onnx extra: pip install 'convolab[onnx]'."
        ),
        epilog="example: convolab export runs/multi/model.convolab model.onnx",
    )
    p.add_argument("model", metavar="MODEL", help="model file written by model.save() or convolab train")
    p.add_argument("output", metavar="OUT.onnx", help="where to write the ONNX file")
    p.set_defaults(func=run_export)


def run_export(args):
    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise CommandError(f"{out}: the output file should end in .onnx")
    model = load_model_file(args.model)
    writable_file(out, "OUT.onnx")  # so that an error names the target, not the temporary file beside it
    try:
        from ..saving import export_model

        path = export_model(model, str(out), format="onnx")
    except ImportError as exc:  # its message already says what to install
        raise CommandError(str(exc)) from None
    print(f"wrote {path}")
    return 0
