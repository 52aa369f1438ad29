"""Running a catalog entry into its run directory: what ``gandyn run/reproduce`` and ``gandyn.reproduce`` do."""
from __future__ import annotations

import sys
from pathlib import Path

from . import catalog, rundir
from .report import Report


def reproduce(name: str, quick: bool = False, out=None, overrides=None, quiet: bool = False, fresh: bool = False,
              address=None) -> Path:
    """Run catalog entry ``name`` (``overrides``: dotted configuration keys) into ``out`` (default
    runs/NAME) and return that directory: ``summary.json``, ``report.md``, the figures.

    An unfinished run of the same entry and configuration in ``out`` is resumed from its checkpoints
    (``gandyn.rundir``), to the same results; ``fresh`` starts over instead. The loops run as the
    ``run.*`` keys say (``games.execution``): worker processes (on the Ray cluster at ``address``),
    threads, the divergence bound, checkpoints every ``run.checkpoint_every`` seconds.

    Args:
        name: the catalog entry's name.
        quick: whether to apply the entry's ``--quick`` overrides.
        out: the output directory; None for runs/NAME.
        overrides: {dotted key: value} of configuration keys, on top of the entry's defaults.
        quiet: whether to silence progress messages.
        fresh: whether to discard an unfinished run in ``out`` instead of resuming it.
        address: the Ray cluster's address for worker processes; None for this machine.

    Returns:
        The output directory.

    Raises:
        ConfigError: for an unknown entry, a bad key or value, or an ``out`` that cannot be used.
        KeyboardInterrupt: if interrupted, once what was computed is written.
    """
    experiment = catalog.get(name)
    config = experiment.config(quick, dict(overrides or {}))
    out = rundir.writable(out or Path("runs") / name)
    identity = {"entry": name, "quick": bool(quick), "config": config.to_dict()}
    report = Report(out, experiment.title, quiet=quiet)
    try:
        with rundir.resumable(out, identity, config.run, fresh, address) as checkpoints:
            if checkpoints.resuming:
                report.log(f"{name}: resuming the unfinished run in {out} (--fresh starts over)")
            experiment.execute(config, report, quick)
            out = report.write(config.to_dict())
    except KeyboardInterrupt:
        report.key("interrupted", True)
        report.text("**Interrupted:** the figures and key figures above are those computed before it.")
        report.write(config.to_dict())
        print(f"gandyn: interrupted; what was computed is in {report.out}", file=sys.stderr)
        raise
    report.log(f"wrote {out}/summary.json and {out}/report.md")
    return out
