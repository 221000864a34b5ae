"""CheckpointError: the one error a damaged, truncated or crafted checkpoint file raises."""

from __future__ import annotations

__all__ = ["CheckpointError"]


class CheckpointError(ValueError):
    """A file that is not an intact optxform checkpoint.

    Raised by :func:`optxform.load_state` for every malformed file: truncated, a flipped
    byte anywhere, another format (a pickle, a ``torch.save`` file), a compressed or
    encrypted zip member, sizes that disagree with the described shapes and dtypes, an
    unsupported dtype (``object``) or format version. The message names the file and, where
    it can, the damaged array's key. A subclass of ``ValueError``, so ``except ValueError``
    also catches it. A checkpoint that is intact but does not fit the template (another
    optimizer, other params) raises a plain ``ValueError`` instead; a missing or unreadable
    path raises the usual ``OSError``.

    Equivalent: torch's ``torch.load`` raises ``pickle.UnpicklingError`` or
    ``RuntimeError`` for damaged files; optax has no checkpoint format of its own.

    Example::

        >>> import jax.numpy as jnp, optxform
        >>> with open("bad.ckpt", "wb") as f:  # any bytes that are not a checkpoint
        ...     _ = f.write(b"not a checkpoint")
        >>> try:
        ...     optxform.load_state("bad.ckpt", optxform.adam(0.1).init({"w": jnp.ones(2)}))
        ... except optxform.CheckpointError as error:
        ...     print(error)
        load_state: 'bad.ckpt' is not an optxform checkpoint, or is truncated: it is too short
    """
