"""The digits GAN and its sample-quality metric (fdd, coverage)."""
import math

import pytest
import torch

from analysis import digits as quality
from games import SGA, make_game
from games.digits import CLASSES, TRAIN, DigitsGAN, digits
from games.errors import ConfigError
from games.random import Streams


@pytest.fixture(autouse=True)
def classifier_cache(tmp_path_factory, monkeypatch):
    """One classifier cache for the module's tests (trained once, then read back)."""
    monkeypatch.setenv("GANDYN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize("loss", ["gan", "ns-gan", "wgan-gp"])
def test_ensemble_equals_single_runs_exactly(loss):
    game = DigitsGAN(loss=loss, latent=4, hidden=(16,))
    sga = SGA(game, lr=0.05, batch_size=8, update="alt-d")
    ens = sga.run(6, K=3, seed=2, record_every=3, dtype=torch.float32)
    for k, seed in enumerate(ens.metadata["seeds"]):
        single = sga.run(6, streams=Streams([seed], dtype=torch.float32), record_every=3)
        assert torch.equal(single.states[:, 0], ens.states[:, k])


def test_default_sizes_data_and_shapes():
    game = make_game("digits")
    assert 10**4 <= game.d <= 10**5
    assert game.p == (16 * 128 + 128) + (128 * 128 + 128) + (128 * 64 + 64)
    images, labels = digits("train")
    assert images.shape == (TRAIN, 64) and images.min() == -1 and images.max() == 1
    assert sorted(labels.unique().tolist()) == list(range(CLASSES))
    assert len(digits("test")[0]) + TRAIN == len(digits("all")[0]) == 1797
    streams = Streams.from_seed(0, 2, dtype=torch.float32)
    x = game.init(2, streams)
    real, z = game.sample(2, 5, streams)
    assert real.shape == (2, 5, 64) and z.shape == (2, 5, 16)
    fake = game.generate(x, z)
    assert fake.shape == (2, 5, 64) and fake.abs().max() <= 1  # tanh output, in the data's cube


def test_bad_options_name_their_key():
    with pytest.raises(ConfigError, match="game.latent"):
        make_game("digits", latent=0)
    with pytest.raises(ConfigError, match="game.hidden"):
        make_game("digits", hidden="wide")
    assert make_game("digits", latent=8, hidden=[32]).describe()["latent"] == 8


def test_classifier_is_accurate_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GANDYN_CACHE", str(tmp_path))
    quality.classifier.cache_clear()
    first = quality.classifier(0)
    assert first.accuracy >= quality.MIN_ACCURACY
    saved = list(tmp_path.glob("digits-classifier-*.pt"))
    assert len(saved) == 1
    quality.classifier.cache_clear()
    again = quality.classifier(0)  # read back from the cache
    for a, b in zip(first.module.parameters(), again.module.parameters()):
        assert torch.equal(a, b)
    quality.classifier.cache_clear()


def test_frechet_distance_against_closed_form_for_commuting_covariances():
    """Samples μ + Σ_i s_i h_i e_i with h_i orthogonal ±1 columns summing to 0 have mean μ and covariance
    diag(s_i² N/(N − 1)) exactly, so the distance is |Δμ|² + (N/(N − 1)) Σ (s_i − t_i)²."""
    H = torch.tensor([[1.0]], dtype=torch.float64)
    for _ in range(3):
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)  # 8×8 Hadamard
    columns = H[:, 1:5]  # orthogonal, each summing to 0
    s, t = torch.tensor([1.0, 0.5, 2.0, 0.1]), torch.tensor([0.3, 0.5, 1.0, 0.0])
    mu, nu = torch.tensor([0.0, 1.0, -1.0, 2.0]), torch.tensor([0.5, 1.0, 0.0, 2.0])
    x, y = mu + columns * s, nu + columns * t
    expected = (mu - nu).square().sum() + 8 / 7 * (s - t).square().sum()
    torch.testing.assert_close(quality.frechet_distance(x.double(), y.double()), expected.double(), rtol=1e-9, atol=1e-9)


def test_real_against_real_is_at_the_split_noise_floor():
    """Two disjoint halves of the held-out digits: the split's fdd lies within the spread of re-split
    halves, and the mean-term of re-splits has its closed form E|μ̂_A − μ̂_B|² = 4 tr Σ / (2n − 1)
    (sampling without replacement, Σ the population covariance of the features)."""
    images = digits("test")[0]
    n = len(images) // 2
    features = quality.classifier(0).features(images)[: 2 * n]
    g = torch.Generator().manual_seed(0)
    splits = [torch.randperm(2 * n, generator=g) for _ in range(200)]
    resplit = torch.stack([quality.fdd(images[p[:n]], images[p[n:2 * n]]) for p in splits[:20]])
    value = quality.fdd(images[:n], images[n:2 * n])
    assert abs(value - resplit.mean()) < 3 * resplit.std()
    gaps = torch.stack([(features[p[:n]].mean(0) - features[p[n:]].mean(0)).square().sum() for p in splits])
    population = features.var(0, unbiased=False).sum()
    expected = 4 * population / (2 * n - 1)
    assert abs(gaps.mean() - expected) < 3 * gaps.std() / math.sqrt(len(gaps))
    noisy = quality.fdd(images[:n] + torch.randn(n, 64, generator=g, dtype=images.dtype), images[n:2 * n])
    assert noisy > resplit.mean() + 5 * resplit.std()  # the floor is far below a visible defect


def test_fdd_grows_monotonically_with_noise():
    images = digits("train")[0]
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(1), dtype=images.dtype)
    values = [float(quality.fdd(images + s * noise)) for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_coverage_counts_the_classes_hit():
    images = digits("test")[0]
    predicted = quality.classifier(0).predict(images)
    assert int(quality.coverage(images)) == CLASSES
    assert int(quality.coverage(images[predicted == 3])) == 1
    three = images[(predicted == 1) | (predicted == 4) | (predicted == 7)]
    assert int(quality.coverage(three)) == 3
    few = torch.cat([images[predicted == 3][:50], images[predicted == 5][:1]])  # 1 of 51 < a quarter share
    assert int(quality.coverage(few)) == 1
    batched = quality.coverage(torch.stack([images[:200], images[predicted == 3][:1].expand(200, -1)]))
    assert batched.tolist() == [CLASSES, 1]


def test_a_damaged_cache_is_trained_again(tmp_path, monkeypatch):
    monkeypatch.setenv("GANDYN_CACHE", str(tmp_path))
    quality.classifier.cache_clear()
    first = quality.classifier(0)
    (path,) = tmp_path.glob("digits-classifier-*.pt")
    path.write_bytes(b"not a checkpoint")
    quality.classifier.cache_clear()
    again = quality.classifier(0)
    assert again.accuracy == first.accuracy and path.stat().st_size > 100
    quality.classifier.cache_clear()
