"""Reading token files (`.npy`, ``[8, T]``; SimpleTuner also accepts ``[T, 8]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NUM_CODEBOOKS = 8


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the file."""


def read_token_file(path: str | Path, codebook_size: int | None = None, allow_empty: bool = False) -> np.ndarray:
    """A token ``.npy`` -> int64 ``[8, T]``.

    ``[8, T]`` is the contract; ``[T, 8]`` is accepted and transposed. An ``8 x 8`` array is read
    as ``[8, T]`` since the two layouts cannot be told apart. With ``codebook_size`` the codes
    must lie in ``[0, codebook_size)``.
    """
    path = Path(path)
    if not path.is_file():
        raise TokenFileError(f"{path}: token file not found")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise TokenFileError(f"{path}: not a readable .npy token file ({err})") from err
    if array.ndim != 2 or NUM_CODEBOOKS not in array.shape:
        raise TokenFileError(f"{path}: expected tokens shaped [8, T] or [T, 8], got {list(array.shape)}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TokenFileError(f"{path}: expected integer codes, got dtype {array.dtype}")
    if array.shape[0] != NUM_CODEBOOKS:
        array = array.T
    if array.shape[1] == 0 and not allow_empty:
        raise TokenFileError(f"{path}: the token file holds no frames")
    tokens = array.astype(np.int64)
    if codebook_size is not None and tokens.size and (tokens.min() < 0 or tokens.max() >= codebook_size):
        raise TokenFileError(
            f"{path}: codes must lie in [0, {codebook_size}), got [{int(tokens.min())}, {int(tokens.max())}]"
        )
    return tokens
