"""Mutations of a JSON document for the file fuzzers: every path into it, one edit at a path, and
hypothesis's arbitrary JSON values. Needs hypothesis: importorskip it before importing this."""

from hypothesis import strategies as st


def paths_of(value, prefix=()):
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths_of(v, prefix + (i,))
    return out


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            0,
            1,
            -1,
            2**31,
            2**64,
            10**400,
            -(10**400),
            1e308,
            -1e-320,
            "",
            "F32",
            "PCG64",
            "Dense",
            "same",
            "relu",
            [],
            {},
            [0, 0],
            [1, 1],
        ]
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)


def mutate(doc, path, op, value, key):
    """Apply one mutation at ``path`` in place (``doc`` is a list holding the root)."""
    parent = doc
    for step in ((0,) + path)[:-1]:
        parent = parent[step]
    last = ((0,) + path)[-1]
    if op == "replace":
        parent[last] = value
    elif op == "delete" and isinstance(parent, (dict, list)) and len(path) > 0:
        del parent[last]
    elif op == "add":
        target = parent[last]
        if isinstance(target, dict):
            target[key] = value
        elif isinstance(target, list):
            target.append(value)
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(last, parent[last])
