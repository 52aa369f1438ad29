"""The digits GAN: MLP players (``games.networks``) on scikit-learn's bundled 8×8 handwritten digits.

The data are the 1,797 images of ``sklearn.datasets.load_digits`` (Alpaydin & Kaynak 1998), shipped
with scikit-learn, so nothing is downloaded. Pixels 0…16 are mapped to [−1, 1], and the generator ends
in tanh, so that its samples live in the same cube. The images are split once, by a seed-0 permutation,
into ``TRAIN`` images the GAN (and ``analysis.digits``' classifier) learn from and the rest, held out
for the classifier's accuracy and the reference features of the sample-quality metric.
"""
from __future__ import annotations

import functools

import torch

from .errors import ConfigError, check_choice, check_int
from .networks import NetworkGAN
from .random import Streams

PIXELS = 64  # 8 × 8
CLASSES = 10
TRAIN = 1200  # images in the training split; the other 597 are held out
SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=1)
def _load():
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.as_tensor(data.data, dtype=torch.float64) / 8.0 - 1.0  # 0…16 → [−1, 1]
    labels = torch.as_tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    return images[order], labels[order]


def digits(split: str = "train", device="cpu", dtype=torch.float64):
    """(images [N, 64] in [−1, 1], labels [N]) of ``split``: "train" (the first ``TRAIN`` of a seed-0
    permutation), "test" (the rest) or "all".

    Args:
        split: "train", "test" or "all".
        device: the device of the result.
        dtype: the floating dtype of the images.

    Returns:
        (images, labels): the N images of the split, flattened row-major to 64 pixels in [−1, 1], `[N, 64]`,
        and their digits 0…9 [N] (int64).
    """
    images, labels = _load()
    part = {"train": slice(0, TRAIN), "test": slice(TRAIN, None), "all": slice(None)}[
        check_choice("split", split, SPLITS)]
    return images[part].to(device=device, dtype=dtype), labels[part].to(device)


class DigitsGAN(NetworkGAN):
    """GAN of two MLPs on the training split of the 8×8 digits; losses "gan", "ns-gan", "wgan-gp".

    The defaults (latent 16, two hidden layers of 128, tanh) give p = 26,944 generator and q = 24,961
    discriminator parameters.
    """

    name = "digits"
    n = PIXELS
    one_by_one = True  # K runs = K single runs, bit for bit (``games.networks.batched``)

    def __init__(self, loss: str = "ns-gan", latent: int = 16, hidden=(128, 128), activation: str = "tanh",
                 gp_weight: float = 10.0, images: int = 0):
        """The digits GAN.

        Args:
            loss: "gan", "ns-gan" or "wgan-gp" (``games.networks``).
            latent: the latent dimension of G_θ.
            hidden: the hidden layer widths of both MLPs.
            activation: the hidden activation, "tanh" or "relu".
            gp_weight: the WGAN-GP penalty weight λ ≥ 0.
            images: learn from the first ``images`` of the training split only, or 0 for all ``TRAIN``.
        """
        super().__init__(loss, latent, hidden, activation, gp_weight, generator_output="tanh",
                         latent_key="game.latent")
        self.latent = self.z_dim
        self.images = check_int("game.images", images, minimum=0)
        if self.images > TRAIN:
            raise ConfigError("game.images", f"the training split has {TRAIN} images, got {images}")

    def training_images(self, device="cpu", dtype=torch.float64) -> torch.Tensor:
        """The images the GAN learns [N, 64]: the training split, or its first ``images`` (0: all).

        Args:
            device: the device of the result.
            dtype: the floating dtype of the result.

        Returns:
            The N training images `[N, 64]`, pixels in [−1, 1].
        """
        images = digits("train", device, dtype)[0]
        return images[: self.images] if self.images else images

    def real_samples(self, B: int, generator: Streams) -> torch.Tensor:
        """B training images per run, drawn uniformly with replacement, [K, B, 64].

        Args:
            B: the images per run.
            generator: the K runs' random streams.

        Returns:
            The images [K, B, 64].
        """
        images = self.training_images(generator.device, generator.dtype)
        return images[generator.randint(len(images), B)]
