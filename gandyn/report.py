"""A run directory: summary.json (flat key figures), figures (PNG and PDF), trajectories, report.md."""
from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt

from games.trajectory import Trajectory, atomic_write


class Report:
    """Collects an experiment's sections, figures and key figures, and writes them into ``out``."""

    def __init__(self, out, title: str, quiet: bool = False):
        """A report written into ``out``, created if need be; its clock (``wall_time_s``) starts now.

        Args:
            out: the run directory.
            title: the report's title, the heading of report.md.
            quiet: whether ``log`` stays silent.
        """
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.title, self.quiet = title, quiet
        self.sections, self.summary = [], {}
        self.start = time.perf_counter()

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    def text(self, markdown: str, first: bool = False) -> None:
        """A section of report.md, after the others (or before them: ``first``, for a lead paragraph).

        Args:
            markdown: the section's Markdown text.
            first: whether it goes before the others.
        """
        self.sections.insert(0 if first else len(self.sections), markdown.strip())

    def figure(self, fig, name: str, caption: str) -> None:
        """Save ``fig`` as NAME.png and NAME.pdf and cite it in the report.

        Args:
            fig: the matplotlib figure (closed once saved).
            name: the files' stem, NAME.png and NAME.pdf in ``out``.
            caption: the caption in the report.
        """
        fig.tight_layout()
        for suffix, options in (("png", {"dpi": 110}), ("pdf", {})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=suffix, bbox_inches="tight", **options)
            atomic_write(self.out / f"{name}.{suffix}", lambda f: f.write(buffer.getvalue()))
        plt.close(fig)
        self.sections.append(f"![{caption}]({name}.png)\n\n*{caption}*")

    def trajectory(self, traj: Trajectory, name: str) -> None:
        """Save ``traj``; if it was stopped by Ctrl-C, pass the interrupt on once it is on disk.

        Args:
            traj: the Trajectory.
            name: its directory's name under ``out``/trajectories.

        Raises:
            KeyboardInterrupt: if ``traj`` records an interruption, once it is saved.
        """
        traj.save(self.out / "trajectories" / name)
        if traj.metadata.get("interrupted") is not None:
            raise KeyboardInterrupt

    def key(self, name: str, value) -> None:
        """One figure of ``summary.json``: a number (NaN/inf stored as null), string or bool.

        Args:
            name: the key.
            value: a number, string or bool (a non-finite float is stored as null).
        """
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        self.summary[name] = value

    def interval(self, name: str, value: float, low: float, high: float) -> None:
        """A figure with its confidence interval: ``name``, ``name_low`` and ``name_high``.

        Args:
            name: the key.
            value: the estimate.
            low: the interval's lower bound.
            high: the interval's upper bound.
        """
        self.key(name, value)
        self.key(f"{name}_low", low)
        self.key(f"{name}_high", high)

    def write(self, config: dict) -> Path:
        self.key("wall_time_s", round(time.perf_counter() - self.start, 3))
        summary = json.dumps(self.summary, indent=2, sort_keys=True)
        atomic_write(self.out / "summary.json", lambda f: f.write(summary.encode()))
        atomic_write(self.out / "config.json", lambda f: f.write(json.dumps(config, indent=2).encode()))
        table = ["| key | value |", "|---|---|"] + [f"| `{k}` | {_fmt(v)} |" for k, v in sorted(self.summary.items())]
        text = "\n\n".join([f"# {self.title}", *self.sections, "## Key figures", "\n".join(table)])
        atomic_write(self.out / "report.md", lambda f: f.write((text + "\n").encode()))
        return self.out


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
