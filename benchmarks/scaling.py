"""How convolab's epoch time grows with batch size and image size (the two-conv model)."""

from __future__ import annotations

SUBSET = 8192  # images timed per point; the table scales to a 60,000-image epoch


def scaling_tables(run_one):
    lines = [
        "Two-conv CNN, seconds per 60,000-image epoch (timed on 8,192 images and scaled)",
        "",
        "| batch size | s/epoch |",
        "|---|---|",
    ]
    for b in (8, 16, 32, 64, 128, 256, 512):
        r = run_one("convolab", "multi", b, SUBSET, 1024)
        lines.append(f"| {b} | {r['epoch_s']:.2f} |" if "epoch_s" in r else f"| {b} | {r.get('error')} |")
    lines += ["", "| image size (HxWx1) | s/epoch at batch 32 |", "|---|---|"]
    for s in (28, 32, 64, 128):
        n = SUBSET if s <= 64 else SUBSET // 4
        r = run_one("convolab", "multi", 32, n, 256, input_shape=(s, s, 1))
        lines.append(f"| {s} | {r['epoch_s']:.2f} |" if "epoch_s" in r else f"| {s} | {r.get('error')} |")
    return "\n".join(lines)
