"""Trajectory: the one record every simulator (discrete, SDE, flow) returns."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict

import numpy as np
import torch


@dataclass
class Trajectory:
    """Times [T], states [T, K, d], observables {name: [T, K]} and metadata (JSON-serialisable).

    ``times`` are on the common clock t = Σ η_k (cumulative reference learning rate). ``p`` splits
    the state into θ = states[..., :p] and ω = states[..., p:].

    Args:
        times: the record's times t_n, shape [T].
        states: the runs' states at those times, shape [T, K, d].
        p: the number of θ coordinates.
        observables: {name: `[T, K]`}, the observables of the step taken from each recorded state.
        metadata: JSON-serialisable facts about the run (set-up, seeds, diverged runs, wall time).
    """

    times: torch.Tensor
    states: torch.Tensor
    p: int
    observables: Dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        T = self.times.shape[0]
        if self.states.ndim != 3 or self.states.shape[0] != T:
            raise ValueError(f"states must be [T={T}, K, d], got {tuple(self.states.shape)}")
        for name, v in self.observables.items():
            if tuple(v.shape) != tuple(self.states.shape[:2]):
                raise ValueError(f"observable {name!r} must be [T, K], got {tuple(v.shape)}")

    @property
    def K(self) -> int:
        return self.states.shape[1]

    @property
    def theta(self) -> torch.Tensor:
        return self.states[..., : self.p]

    @property
    def omega(self) -> torch.Tensor:
        return self.states[..., self.p :]

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.observables[name]

    def runs(self, index) -> "Trajectory":
        """The sub-ensemble of runs ``index``."""
        return Trajectory(
            self.times,
            self.states[:, index],
            self.p,
            {k: v[:, index] for k, v in self.observables.items()},
            dict(self.metadata),
        )

    @classmethod
    def join_runs(cls, parts) -> "Trajectory":
        """The ensemble made of ``parts``, Trajectories of consecutive chunks of its runs on the same
        record grid: states and observables joined along the runs; the metadata is the first part's,
        with the diverged runs of every part (renumbered), the seeds joined and the longest wall time."""
        parts = list(parts)
        first, offset, diverged, seeds = parts[0], 0, {}, []
        for part in parts:
            if part.times.shape != first.times.shape or not torch.equal(part.times, first.times):
                raise ValueError("the parts of an ensemble must share their record times")
            diverged.update({offset + int(run): step for run, step in part.metadata.get("diverged", {}).items()})
            seeds += part.metadata.get("seeds") or []
            offset += part.K
        meta = {**first.metadata, "diverged": diverged,
                "interrupted": next((p.metadata["interrupted"] for p in parts if p.metadata.get("interrupted")), None),
                "wall_time_s": max(p.metadata.get("wall_time_s", 0.0) for p in parts)}
        if "seeds" in first.metadata:
            meta["seeds"] = seeds if offset <= 64 else None
        return cls(first.times, torch.cat([p.states for p in parts], dim=1), first.p,
                   {name: torch.cat([p.observables[name] for p in parts], dim=1) for name in first.observables}, meta)

    def save(self, path) -> Path:
        """Write ``path`` (.npz) and its JSON sidecar (.json), each atomically."""
        path = Path(path).with_suffix(".npz")
        arrays = {"times": self.times, "states": self.states}
        arrays.update({f"obs/{k}": v for k, v in self.observables.items()})
        arrays = {k: v.detach().cpu().numpy() for k, v in arrays.items()}
        atomic_write(path, lambda f: np.savez(f, **arrays))
        meta = {"p": self.p, "metadata": self.metadata}
        text = json.dumps(meta, indent=2, default=str)
        atomic_write(path.with_suffix(".json"), lambda f: f.write(text.encode()))
        return path

    @classmethod
    def load(cls, path) -> "Trajectory":
        path = Path(path).with_suffix(".npz")
        meta = json.loads(path.with_suffix(".json").read_text())
        with np.load(path) as data:
            obs = {k[4:]: torch.from_numpy(data[k]) for k in data.files if k.startswith("obs/")}
            return cls(
                torch.from_numpy(data["times"]),
                torch.from_numpy(data["states"]),
                meta["p"],
                obs,
                meta["metadata"],
            )


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same directory, then rename over ``path`` (with the
    permissions a plain ``open`` would give: mkstemp's are owner-only).

    Args:
        path: the file to write; its directory is created if needed. A reader sees the old file or the
            whole new one, never a part.
        write: a function of a binary file object that writes the contents.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask (read once, at import: reading it means setting it, then restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
