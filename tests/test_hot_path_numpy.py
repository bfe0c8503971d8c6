"""The hot path reaches NumPy only through the backend's door (a static scan of the source).

Every module a training step runs through is parsed; any ``np.<name>`` outside dtype names and
shape queries must be on the explicit allow-list below, with the reason it is not array math
on the device path (CPU-only kernels' buffers, host-side checks of user input, host results).
A new ``np.exp(...)`` in an op fails here: write ``xp = get_array_module(x)`` and ``xp.exp``.
"""

import ast
import pathlib

import convolab

ROOT = pathlib.Path(convolab.__file__).parent
HOT = sorted(
    {
        *ROOT.glob("nn/*.py"),
        *ROOT.glob("layers/*.py"),
        *ROOT.glob("optimizers/*.py"),
        *ROOT.glob("autodiff/*.py"),
        *ROOT.glob("metrics/*.py"),
        ROOT / "losses.py",
        ROOT / "activations.py",
        ROOT / "regularizers.py",
        ROOT / "models/stack_step.py",
        ROOT / "models/runner.py",
        ROOT / "models/plan.py",
        ROOT / "models/folding.py",
        ROOT / "models/sequential.py",
        ROOT / "models/tape_step.py",
        ROOT / "models/data_adapter.py",
        ROOT / "models/trainer.py",
    }
)
#: augmentation's resampling runs on the host by design (layers/augmentation/base.py); nn/erf.py
#: is NumPy's missing erf, called for NumPy inputs only (CuPy's come from cupyx.scipy.special)
HOST_ONLY = {"nn/affine.py", "nn/resize.py", "nn/color.py", "nn/flip.py", "nn/erf.py"}
#: dtype names, type checks and shape queries: not array math
SAFE = {
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "intp",
    "bool_",
    "dtype",
    "ndarray",
    "integer",
    "floating",
    "number",
    "generic",
    "inf",
    "pi",
    "e",
    "newaxis",
    "shape",
    "ndim",
    "errstate",
    "random",
    "lib",
}
CPU_KERNEL = "the compiled C kernels' NumPy buffers (taken only for NumPy inputs)"
CPU_FALLBACK = "the NumPy-only window code (strided views), taken only for NumPy inputs"
HOST_CHECK = "checks and conversions of user input on the host, before data moves"
ALLOW = {
    ("nn/conv.py", "_padded_columns"): CPU_KERNEL,
    ("nn/conv.py", "_fused_forward"): CPU_KERNEL,
    ("nn/conv.py", "_conv2d_backward_fused"): CPU_KERNEL,
    ("nn/conv.py", "_input_gradient_stride1"): CPU_KERNEL,
    ("nn/batchnorm.py", "_forward_kernels"): CPU_KERNEL,
    ("nn/batchnorm.py", "_backward_kernels"): CPU_KERNEL,
    ("nn/batchnorm.py", "_inference_kernels"): CPU_KERNEL,
    ("nn/depthwise_conv.py", "_forward_c"): CPU_KERNEL,
    ("nn/depthwise_conv.py", "_backward_c"): CPU_KERNEL,
    ("nn/activations.py", "_relu_kernel"): CPU_KERNEL,
    ("nn/activations.py", "relu_backward"): CPU_KERNEL,
    ("nn/pool.py", "_windows"): CPU_FALLBACK,
    ("nn/pool.py", "_scatter_windows"): CPU_FALLBACK,
    ("nn/pool.py", "max_pool_backward"): CPU_FALLBACK,
    ("nn/pool.py", "_window_counts"): CPU_FALLBACK,
    ("nn/pool.py", "avg_pool_backward"): CPU_FALLBACK,
    ("layers/base.py", "_add_param"): "weights are born on the host (models/placement.py moves them)",
    ("layers/base.py", "add_weight"): "weights are born on the host (models/placement.py moves them)",
    ("layers/base.py", "set_weights"): HOST_CHECK,
    ("losses.py", "_as_prediction"): HOST_CHECK,
    ("losses.py", "check_sample_weight"): HOST_CHECK,
    ("losses.py", "prepare_targets"): HOST_CHECK,
    ("losses.py", "squeeze_or_expand_to_same_rank"): "NumPy's functions dispatch CuPy arrays to CuPy (NEP 18)",
    ("losses.py", "_call_on_tape"): "np.prod of a shape tuple",
    ("activations.py", "_as_float"): HOST_CHECK,
    ("autodiff/tensor.py", "__init__"): HOST_CHECK,
    ("autodiff/functions.py", "convert_to_numpy"): "returns NumPy by contract",
    ("autodiff/functions.py", "_concatenate_split"): "the CPU's op threads, taken only for NumPy inputs",
    ("autodiff/functions.py", "_split_contiguous"): "the CPU's op threads, taken only for NumPy inputs",
    ("models/trainer.py", "_float_logs"): "a custom step's logs, already copied to the host, as floats",
    ("models/trainer.py", "predict"): "concatenates host results (predict returns NumPy)",
    ("models/tape_step.py", "tape_train_step"): "np.isfinite of a Python float",
    ("models/tape_step.py", "loss_on_tape"): "np.size of an array",
    ("metrics/base.py", "*"): "metric state is host NumPy; batches arrive as Python floats",
    ("metrics/compile.py", "_scalar"): "a host result as a float",
    ("regularizers.py", "_factor"): HOST_CHECK,
    ("layers/lambda_layer.py", "_traced_shape"): "building: the user's function measured on host zeros once",
    ("nn/resizing.py", "nearest_indices"): "index tables computed once on the host from sizes",
    ("nn/embedding.py", "accumulate_rows"): "the CPU's row sums, called for NumPy arrays only "
    "(embedding_backward sends device arrays to backend.scatter_add, cupyx.scatter_add)",
    ("layers/keras_tensor.py", "infer_output_shape"): "building a graph: a user's layer measured on host zeros once",
}


def _uses():
    found = []
    for path in HOT:
        rel = path.relative_to(ROOT).as_posix()
        if rel in HOST_ONLY:
            continue
        stack = []

        class Visitor(ast.NodeVisitor):
            def visit_FunctionDef(self, node):
                stack.append(node.name)
                self.generic_visit(node)
                stack.pop()

            visit_AsyncFunctionDef = visit_FunctionDef

            def visit_Attribute(self, node):
                if isinstance(node.value, ast.Name) and node.value.id == "np" and node.attr not in SAFE:
                    found.append((rel, stack[0] if stack else "<module>", node.attr, node.lineno))
                self.generic_visit(node)

        Visitor().visit(ast.parse(path.read_text()))
    return found


def test_hot_path_calls_numpy_only_where_allowed():
    bad = [
        f"{rel}:{line} {fn}() uses np.{attr}"
        for rel, fn, attr, line in _uses()
        if (rel, fn) not in ALLOW and (rel, "*") not in ALLOW
    ]
    assert not bad, "NumPy array math on the hot path (use backend.get_array_module):\n" + "\n".join(bad)


def test_allow_list_has_no_stale_entries():
    used = {(rel, fn) for rel, fn, _, _ in _uses()} | {(rel, "*") for rel, _, _, _ in _uses()}
    stale = [key for key in ALLOW if key not in used]
    assert not stale, f"allow-list entries that no longer match anything: {stale}"


def test_the_scan_sees_an_offender(tmp_path, monkeypatch):
    bad = tmp_path / "nn" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("import numpy as np\n\ndef f(x):\n    return np.exp(x)\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "HOT", [bad])
    assert [(rel, fn, attr) for rel, fn, attr, _ in _uses()] == [("nn/bad.py", "f", "exp")]
