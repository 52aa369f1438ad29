"""The command line: ``gandyn run``, ``gandyn list``, ``gandyn reproduce NAME``, ``gandyn tune``,
``gandyn gallery``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from games.errors import ConfigError, MissingExtra

from . import catalog
from .config import load_toml, parse_overrides
from .runner import reproduce

DEFAULT_EXPERIMENT = "overview"


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a small version, under a minute on two cores")
    parser.add_argument("--out", type=Path, help="output directory (default: runs/NAME)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (sets run.device)")
    parser.add_argument("--seed", type=int, help="random seed (sets run.seed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a configuration key, e.g. --set sga.lr=0.1 (repeatable)")
    parser.add_argument("--config", type=Path, help="a TOML file of configuration keys")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    parser.add_argument("--fresh", action="store_true",
                        help="start over, discarding an unfinished run in --out (default: resume it)")
    parser.add_argument("--address", help="a Ray cluster to run the ensembles' chunks on (with --set run.workers=N)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gandyn", description="Dynamics of adversarial training.")
    sub = parser.add_subparsers(dest="command", required=True)
    _run_options(sub.add_parser("run", help=f"the default experiment ({DEFAULT_EXPERIMENT})"))
    sub.add_parser("list", help="the experiment catalog")
    rep = sub.add_parser("reproduce", help="run one catalog entry")
    rep.add_argument("name", metavar="NAME")
    _run_options(rep)
    tune = sub.add_parser("tune", help="recommend a learning-rate schedule and validate it on discrete training")
    tune.add_argument("--game", required=True, help="the game (game.name), e.g. gaussian; mixture or digits for --method ray")
    tune.add_argument("--budget", required=True, type=int, metavar="STEPS", help="training iterations")
    tune.add_argument("--method", default="moments", help="moments (default), surrogate, fdr or ray")
    tune.add_argument("--runs", type=int, default=1000, help="runs per schedule (default 1000)")
    tune.add_argument("--samples", type=int, default=8, help="trials of a ray sweep (default 8)")
    _run_options(tune)
    gallery = sub.add_parser("gallery", help="the README's gallery: one small image per catalog entry")
    gallery.add_argument("names", nargs="*", metavar="NAME", help="entries (default: every one)")
    _run_options(gallery)
    return parser


def overrides_of(args) -> dict:
    """The configuration keys of --config, --set, --device and --seed."""
    overrides = load_toml(args.config) if args.config else {}
    overrides.update(parse_overrides(args.overrides))
    if args.device:
        overrides["run.device"] = args.device
    if args.seed is not None:
        overrides["run.seed"] = args.seed
    return overrides


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            for name, e in catalog.catalog().items():
                print(f"{name:16s} {e.title}")
        elif args.command == "tune":
            from .tune import tune

            tune(args, overrides_of(args))
        elif args.command == "gallery":
            from .gallery import DEFAULT_OUT, make_gallery

            for path in make_gallery(args.names, args.out or DEFAULT_OUT, args.quick, overrides_of(args), args.quiet):
                print(path)
        else:
            reproduce(DEFAULT_EXPERIMENT if args.command == "run" else args.name, args.quick, args.out,
                      overrides_of(args), args.quiet, args.fresh, args.address)
    except (ConfigError, MissingExtra) as e:  # not other ImportErrors: those are bugs, with their traceback
        print(f"gandyn: error: {e}", file=sys.stderr)
        return 2
    except (MemoryError, torch.OutOfMemoryError) as e:
        print(f"gandyn: error: out of memory: {str(e).splitlines()[0] if str(e) else 'an allocation failed'}; "
              "try a smaller run.paths", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
