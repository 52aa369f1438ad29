import pytest
import torch


@pytest.fixture(autouse=True)
def _float64_and_threads():
    torch.set_num_threads(1)
    yield
