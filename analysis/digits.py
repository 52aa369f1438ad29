"""Sample quality on the 8×8 digits: the Fréchet digits distance (fdd) and class coverage.

fdd is the digits' analogue of FID (Heusel et al. 2017): the squared Fréchet (W₂) distance between
Gaussian fits of features,

    fdd = |μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2(Σ₂^½ Σ₁ Σ₂^½)^½),

the features being the last hidden layer of a small classifier trained on the digits inside gandyn
(``Classifier``), and the reference the held-out images (``games.digits``' "test" split). Coverage is the
number of the 10 classes that the classifier assigns at least ``COVERAGE_SHARE`` of a run's samples.

The classifier is trained deterministically from a seed (full-batch Adam on the training split, float64)
and cached on disk by the hash of everything that determines it, in ``$GANDYN_CACHE`` (default
``~/.cache/gandyn``); its held-out accuracy is checked to be at least ``MIN_ACCURACY``.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
from pathlib import Path

import torch
from torch import nn

from games.digits import CLASSES, PIXELS, digits
from games.maths.wasserstein import gaussian_fit
from games.trajectory import atomic_write

from .metrics import w2_gaussian

FEATURES = 32  # the classifier's last hidden layer: the space fdd compares in
HIDDEN = 128
ITERATIONS = 400
LEARNING_RATE = 0.01
MIN_ACCURACY = 0.95
COVERAGE_SHARE = 1 / (4 * CLASSES)  # a class counts as covered with a quarter of its uniform share


def classifier_module() -> nn.Sequential:
    """64 → 128 → 32 (the features) → 10, tanh between layers, float64."""
    return nn.Sequential(nn.Linear(PIXELS, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, FEATURES), nn.Tanh(),
                         nn.Linear(FEATURES, CLASSES)).double()


class Classifier:
    """A trained digits classifier: ``features`` (the last hidden layer), ``predict`` and its held-out
    ``accuracy``."""

    def __init__(self, module: nn.Sequential):
        self.module = module.eval().requires_grad_(False)
        images, labels = digits("test")
        self.accuracy = float((self.predict(images) == labels).double().mean())

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[..., 64] → [..., FEATURES]."""
        return self.module[:-1](images.to(torch.float64).cpu())

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The most likely class [...] of images [..., 64]."""
        return self.module(images.to(torch.float64).cpu()).argmax(-1)


def train_classifier(seed: int = 0) -> nn.Sequential:
    """The classifier trained from ``seed``: cross-entropy on the training split, ``ITERATIONS`` full-batch
    Adam steps at ``LEARNING_RATE``, one thread (the same bits on every run of a machine)."""
    images, labels = digits("train")
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = classifier_module()
        optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
        for _ in range(ITERATIONS):
            optimizer.zero_grad()
            nn.functional.cross_entropy(module(images), labels).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(torch_threads)
    return module


def _cache_key(seed: int) -> str:
    """The hash of the data, the architecture, the training and the seed."""
    images, labels = digits("all")
    h = hashlib.sha256()
    h.update(images.numpy().tobytes())
    h.update(labels.numpy().tobytes())
    h.update(repr((str(classifier_module()), ITERATIONS, LEARNING_RATE, seed, torch.__version__)).encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("GANDYN_CACHE", Path.home() / ".cache" / "gandyn"))


@functools.lru_cache(maxsize=4)
def classifier(seed: int = 0) -> Classifier:
    """The classifier of ``seed``: from the cache if it holds it, else trained and cached (a cache that
    cannot be written is skipped). Raises RuntimeError below ``MIN_ACCURACY``."""
    path = cache_dir() / f"digits-classifier-{_cache_key(seed)}.pt"
    module = classifier_module()
    try:
        module.load_state_dict(torch.load(path, weights_only=True))
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):  # absent or unreadable: train it again
        module = train_classifier(seed)
        buffer = io.BytesIO()
        torch.save(module.state_dict(), buffer)
        try:
            atomic_write(path, lambda f: f.write(buffer.getvalue()))
        except OSError:
            pass
    result = Classifier(module)
    if result.accuracy < MIN_ACCURACY:
        raise RuntimeError(f"the digits classifier (seed {seed}) reaches {result.accuracy:.3f} held-out accuracy, "
                           f"below {MIN_ACCURACY}")
    return result


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|μ_x − μ_y|² + tr(Σ_x + Σ_y − 2(Σ_y^½ Σ_x Σ_y^½)^½) between Gaussian fits of features x [..., N, F]
    and y [..., M, F] (Fréchet 1957; Dowson & Landau 1982) → [...].

    Args:
        x: the first set of features [..., N, F].
        y: the second set of features [..., M, F].

    Returns:
        The squared Fréchet distance [...].
    """
    return w2_gaussian(*gaussian_fit(x, unbiased=True), *gaussian_fit(y, unbiased=True)).square()


def fdd(images: torch.Tensor, reference: torch.Tensor = None, seed: int = 0) -> torch.Tensor:
    """The Fréchet digits distance of images [..., N, 64] to ``reference`` [M, 64] (default: the held-out
    digits) in the features of ``classifier(seed)`` → [...].

    Args:
        images: the images [..., N, 64], pixels as in ``games.digits``.
        reference: the reference images [M, 64]; None for the held-out split.
        seed: the seed of the classifier whose features are compared.

    Returns:
        The Fréchet digits distance [...].
    """
    net = classifier(seed)
    reference = digits("test")[0] if reference is None else reference
    return frechet_distance(net.features(images), net.features(reference))


def coverage(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The number of classes [...] that receive at least ``COVERAGE_SHARE`` of the images [..., N, 64].

    Args:
        images: the images [..., N, 64].
        seed: the seed of the classifier that labels them.

    Returns:
        The number of covered classes [...], an integer tensor in 0..10.
    """
    predicted = classifier(seed).predict(images)
    counts = nn.functional.one_hot(predicted, CLASSES).sum(-2)
    return (counts >= COVERAGE_SHARE * images.shape[-2]).sum(-1)


def generator_quality(game, states: torch.Tensor, latents: torch.Tensor, seed: int = 0):
    """(fdd [K], coverage [K]) of the generators of ``game`` (a ``games.DigitsGAN``) at states [K, d], each
    on its own latents [K, N, latent].

    Args:
        game: the ``games.DigitsGAN`` whose generator maps states and latents to images.
        states: the runs' states [K, d].
        latents: each run's latent draws [K, N, latent].
        seed: the seed of the classifier behind fdd and coverage.

    Returns:
        (fdd [K], coverage [K]).
    """
    with torch.no_grad():
        images = game.generate(states.to(latents), latents)
    return fdd(images, seed=seed), coverage(images, seed=seed)
