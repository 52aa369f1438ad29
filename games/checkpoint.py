"""Checkpoints of the driver's loops, so that a run killed by anything resumes where it was.

Every loop under a ``Checkpoints`` store takes the next key of the store (0, 1, 2, … in the order the
loops start; the runs of a chunk take ``PARENT.cI/0``, …). A simulation that is deterministic given its
configuration starts the same loops in the same order when it is run again, so loop i of a rerun
finds loop i's checkpoint: a finished loop is loaded whole (its record, its final state and the
positions of its random streams, so that what follows draws the same numbers), an unfinished one
goes on from its last save. The fingerprint saved with each checkpoint (the loop's kind, runs and
steps) guards against a loop that is not the one saved: its checkpoint is then ignored.
"""
from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Optional

import torch

from .trajectory import atomic_write


class Checkpoints:
    """A directory of loop checkpoints.

    Args:
        root: the directory (created on the first save).
        every: seconds between a loop's saves (0: at every step where it may save).
        prefix: the keys' prefix (a chunk's store), "" at the top.
        resuming: whether the directory holds an unfinished run's checkpoints.
    """

    def __init__(self, root, every: float = 60.0, prefix: str = "", resuming: bool = False):
        """A store in ``root`` whose next key is ``prefix`` + "0".

        Args:
            root: the directory (created on the first save).
            every: seconds between a loop's saves (0: at every step where it may save).
            prefix: the keys' prefix (a chunk's store), "" at the top.
            resuming: whether the directory holds an unfinished run's checkpoints.
        """
        self.root, self.every, self.prefix, self.resuming = Path(root), float(every), prefix, resuming
        self.count = 0

    def next_key(self) -> str:
        """The key of the next loop to start."""
        key = f"{self.prefix}{self.count}"
        self.count += 1
        return key

    def child(self, name: str) -> "Checkpoints":
        """The store of the loops run inside ``name`` (a chunk of runs): keys ``name/0``, ``name/1``, …"""
        return Checkpoints(self.root, self.every, f"{name}/", self.resuming)

    def path(self, key: str) -> Path:
        return self.root / (key.replace("/", "_") + ".pt")

    def load(self, key: str, fingerprint: dict) -> Optional[dict]:
        """The checkpoint saved under ``key``, if there is one of the same ``fingerprint``.

        Args:
            key: the loop's key (``next_key``).
            fingerprint: what identifies the loop (its kind, runs and steps); a checkpoint saved with
                another one is ignored, and the store's log says so.

        Returns:
            The saved dict (``fingerprint`` and the payload's entries), or None if there is no
            checkpoint of this loop.
        """
        path = self.path(key)
        if not path.exists():
            return None
        saved = torch.load(path, weights_only=False)
        if saved.get("fingerprint") != fingerprint:
            self.log(f"{key}: checkpoint of {saved.get('fingerprint')} ignored (this loop is {fingerprint})")
            return None
        return saved

    def save(self, key: str, fingerprint: dict, payload: dict) -> None:
        """Write ``payload`` under ``key`` atomically.

        Args:
            key: the loop's key (``next_key``).
            fingerprint: what identifies the loop, checked by ``load``.
            payload: what the loop needs to resume (anything ``torch.save`` writes).
        """
        buffer = io.BytesIO()
        torch.save({"fingerprint": fingerprint, **payload}, buffer)
        atomic_write(self.path(key), lambda f: f.write(buffer.getvalue()))

    def log(self, message: str) -> None:
        """Append a line to the store's ``resume.log`` (what was resumed, from where)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "resume.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
            f.flush()
            os.fsync(f.fileno())
