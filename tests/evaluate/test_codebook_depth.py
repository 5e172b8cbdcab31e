"""Decoding from the first k of the 8 residual levels (codebook-depth curves)."""

from __future__ import annotations

import pytest
import torch

from heartcodec_lab.codec import RANDOM_CODEC, load_codec


@pytest.fixture(scope="module")
def codec():
    return load_codec(RANDOM_CODEC)


def _codes(codec, frames=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, codec.config.codebook_size, (1, 8, frames), generator=g)


def test_first_k_levels_sum_only_those_code_vectors(codec):
    fm, rvq = codec.flow_matching, codec.quantizer
    codes = _codes(codec)
    assert torch.equal(fm.condition_from_codes(codes, 8), fm.condition_from_codes(codes))
    for k in (1, 3):
        # by hand: look each level's code vector up in its codebook, sum the first k, project out
        summed = sum(rvq.layers[q]._codebook.embed[0][codes[0, q]] for q in range(k))[None]
        expected = fm.embedding_to_condition(rvq.project_out(summed))
        torch.testing.assert_close(fm.condition_from_codes(codes, k), expected)
    # levels beyond k do not matter; level k-1 does
    changed = codes.clone()
    changed[:, 3:] = (changed[:, 3:] + 1) % codec.config.codebook_size
    assert torch.equal(fm.condition_from_codes(codes, 3), fm.condition_from_codes(changed, 3))
    assert not torch.equal(fm.condition_from_codes(codes, 4), fm.condition_from_codes(changed, 4))
    for bad in (0, 9):
        with pytest.raises(ValueError, match="num_quantizers must be in 1..8"):
            fm.condition_from_codes(codes, bad)


def test_detokenize_with_all_levels_is_the_default(codec):
    codes = _codes(codec, frames=12)[0]
    torch.manual_seed(0)
    full = codec.detokenize(codes, num_steps=1)
    torch.manual_seed(0)
    assert torch.equal(codec.detokenize(codes, num_steps=1, num_quantizers=8), full)
    torch.manual_seed(0)
    coarse = codec.detokenize(codes, num_steps=1, num_quantizers=1)
    assert coarse.shape == full.shape and not torch.equal(coarse, full)
