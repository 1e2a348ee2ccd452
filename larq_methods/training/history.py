"""What a run writes per epoch beside its checkpoints: `history.csv`, TensorBoard scalars,
`curves.png`, and JSON files."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import tensorflow as tf

from larq_methods import saving


def read_history(path) -> dict[str, list[float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) if r[k] not in ("", None) else math.nan for r in rows] for k in (rows[0] if rows else {})}


def truncate_history(history_csv, epochs: int) -> None:
    """Keeps the header and the rows of epochs 0..`epochs`-1 of `history_csv`: the rows a
    run resumed at epoch `epochs` would otherwise repeat (an epoch cut short by Ctrl-C
    after its row, or ended by a NaN)."""
    path = Path(history_csv)
    if not path.exists():
        return
    header, *rows = path.read_text().splitlines(keepends=True) or [""]
    kept = [row for row in rows if row.strip() and int(float(row.split(",", 1)[0])) < epochs]
    if len(kept) != len(rows):
        saving.write_bytes(path, "".join([header, *kept]).encode())


HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def append_history(history_csv, row: dict) -> None:
    """Appends one epoch's row; the first row writes the header (`HISTORY_KEYS` first,
    then the others in sorted order). Values are written with `repr`, so two identical runs write
    identical files."""
    path = Path(history_csv)
    text = path.read_text() if path.exists() else ""
    if text:
        keys = next(csv.reader([text.splitlines()[0]]))
    else:
        first = [k for k in HISTORY_KEYS if k in row]
        keys = [*first, *sorted(k for k in row if k not in first)]
        text = ",".join(keys) + "\n"
    line = io.StringIO()
    csv.writer(line).writerow(["" if row.get(k) is None else repr(row[k]) for k in keys])
    # rewritten whole through a temporary file: a full disk leaves the rows it had
    saving.write_bytes(path, (text + line.getvalue()).encode())


def plot_history(history_csv, png) -> None:
    """Loss and accuracy, training and evaluation, per epoch (whole-epoch ticks); written
    atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    history = read_history(history_csv)
    if not history.get("epoch"):
        return
    epochs = [int(e) + 1 for e in history["epoch"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "eval"), (f"val_precise_bn_{metric}", "eval, PreciseBN")):
            if key in history:
                ax.plot(epochs, history[key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(0.5, max(epochs) + 0.5)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    try:
        with saving.atomic_path(png) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)


def write_json(path, data: dict) -> None:
    saving.write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


class TensorBoardLog:
    """Per-epoch scalars in `run_dir/logs/`, laid out as Keras' TensorBoard callback lays
    them out: train/ and validation/, `epoch_<metric>`."""

    def __init__(self, run_dir):
        self.writers = {split: tf.summary.create_file_writer(str(Path(run_dir) / "logs" / split)) for split in ("train", "validation")}

    def write(self, row: dict, epoch: int) -> None:
        for key, value in row.items():
            if key != "epoch":
                split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                with self.writers[split].as_default():
                    tf.summary.scalar(f"epoch_{name}", value, step=epoch)
        for writer in self.writers.values():
            writer.flush()
