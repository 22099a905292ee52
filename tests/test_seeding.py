import numpy as np
import pytest
import torch

from rmlib import make_generator, seed_everything


def test_seed_everything_makes_global_draws_repeatable():
    seed_everything(11)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(11)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_generators_are_independent_and_repeatable():
    assert torch.equal(torch.rand(4, generator=make_generator(1)), torch.rand(4, generator=make_generator(1)))
    assert not torch.equal(torch.rand(4, generator=make_generator(1)), torch.rand(4, generator=make_generator(2)))


@pytest.mark.parametrize("seed", [1.5, "0", None, True])
def test_bad_seeds_are_rejected(seed):
    with pytest.raises(TypeError, match="seed"):
        make_generator(seed)
