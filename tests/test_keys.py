"""Counter-based uniforms keyed by (seed, epoch, index)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pe_utils.data.datasets import sample_seed
from pe_utils.data.keys import key_roots, key_uniforms


def test_roots_equal_sample_seed():
    keys = torch.tensor([[0, 0, 0], [7, 3, 12], [2**40, 5, 2**33], [-1, 0, 4]])
    assert key_roots(keys).tolist() == [sample_seed(*k) for k in keys.tolist()]


def test_uniforms_keyed_per_row_and_stream():
    keys = torch.tensor([[1, 2, i] for i in range(2000)])
    u = key_uniforms(keys, 3)
    assert u.shape == (2000, 3) and u.dtype == torch.float32
    assert float(u.min()) >= 0 and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.02
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.1  # neighbours unrelated
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.1     # parameters unrelated
    assert torch.equal(key_uniforms(keys[[5, 1]], 3), u[[5, 1]])  # a row alone: the same
    assert not torch.equal(key_uniforms(keys, 3, stream=1), u)


@pytest.mark.parametrize("bad", [torch.zeros(3, 2, dtype=torch.int64), torch.zeros(3, dtype=torch.int64)])
def test_bad_keys_raise(bad):
    with pytest.raises(ValueError):
        key_uniforms(bad, 2)
