"""Evaluation figures: confusion matrix and reliability diagram (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path


def plot_report(report: dict, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    import numpy as np

    labels = report["confusion"]["labels"]
    matrix = np.array(report["confusion"]["matrix"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [1.6, 1]})
    shown = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    ax1.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    ax1.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax1.set_yticks(range(len(labels)), labels, fontsize=8)
    ax1.set_xlabel("predicted")
    ax1.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax1.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if shown[i, j] > 0.5 else "black",
            )
    ax1.set_title(f"confusion (n={report['n']}, accuracy {report['accuracy']:.4f})")
    bins = report["reliability"]
    centres = [(b["lo"] + b["hi"]) / 2 for b in bins]
    ax2.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax2.bar(
        centres,
        [b["accuracy"] for b in bins],
        width=1 / 15 * 0.9,
        alpha=0.7,
        label="accuracy in bin",
    )
    ax2.plot(
        [b["confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        "o-",
        color="C3",
        label="mean confidence vs accuracy",
    )
    threshold = report["auto_accept"]["threshold"]
    if threshold is not None:
        ax2.axvline(threshold, color="C2", linestyle=":", label=f"auto-accept {threshold:.3f}")
    ax2.set_xlim(0, 1)
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("calibrated top score")
    ax2.set_ylabel("accuracy")
    ax2.set_title(f"reliability (ECE {report['ece']:.4f})")
    ax2.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
