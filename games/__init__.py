"""The discrete side of gandyn: games, their training by stochastic gradients, and the Trajectory."""
import inspect

from .base import Game
from .bilinear import BilinearGame
from .custom import Custom
from .digits import DigitsGAN
from .dirac import DiracGAN
from .errors import ConfigError
from .gaussian import GaussianGame
from .mixture import MixtureGAN
from .onelayer import OneLayerGAN
from .random import Streams
from .sga import SGA, Player, train
from .trajectory import Trajectory

GAMES = {g.name: g for g in (GaussianGame, DiracGAN, BilinearGame, OneLayerGAN, MixtureGAN, DigitsGAN)}


def make_game(name: str, **options) -> Game:
    """The catalog game ``name`` built with ``options``; ConfigError names a bad name or option.

    Args:
        name: a key of ``GAMES`` ("gaussian", "dirac", "bilinear", "onelayer", "mixture", "digits").
        **options: the game's constructor options.

    Returns:
        The game.
    """
    if name not in GAMES:
        raise ConfigError("game.name", f"unknown game {name!r}; expected one of {', '.join(GAMES)}")
    accepted = inspect.signature(GAMES[name]).parameters
    for key in options:
        if key not in accepted:
            raise ConfigError(f"game.{key}", f"unknown option for game {name!r}; accepted: "
                                             f"{', '.join(accepted)}")
    return GAMES[name](**options)


__all__ = ["Game", "GaussianGame", "DiracGAN", "BilinearGame", "OneLayerGAN", "MixtureGAN", "DigitsGAN", "Custom",
           "SGA", "Player", "train", "Trajectory", "Streams", "ConfigError", "GAMES", "make_game"]
