"""The loss curve of a run, as data (JSON and CSV) and as a picture (PNG, matplotlib Agg)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

COLUMNS = ("step", "loss", "lr", "tokens", "epoch")


def write_curve(log: list[dict], out_dir: Path, *, title: str = "training loss") -> dict[str, Path]:
    """Write `curve.json`, `curve.csv` and `curve.png` into `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "curve.json", "csv": out_dir / "curve.csv", "png": out_dir / "curve.png"}
    paths["json"].write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(log)
    _plot(log, paths["png"], title)
    return paths


def _plot(log: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    steps = [entry["step"] for entry in log]
    losses = [entry["loss"] for entry in log]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, linewidth=1.0, color="#3465a4", label="loss per step")
    if len(losses) >= 10:
        window = max(2, len(losses) // 20)
        smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1])
                  for i in range(len(losses))]
        ax.plot(steps, smooth, linewidth=2.0, color="#cc0000", label=f"mean of {window}")
        ax.legend()
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    # Fixed metadata keeps the PNG byte-identical across runs of the same curve.
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
