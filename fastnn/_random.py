"""fastnn's random streams.

`set_seed(n)` makes everything random in fastnn reproducible: weight initialisation, dropout masks and the
shuffling in `fit` all draw from one generator seeded here, in a fixed order, so two runs with the same seed
give bit-identical weights at any thread count. Dropout masks are made in C by a counter-based generator whose
key is drawn from this stream, which is what keeps them independent of the thread count.
"""
import numbers

import numpy as np

_generator = None  # made on first use: numpy.random costs ~11 ms of `import fastnn`


def set_seed(seed):
    """Seed every random stream fastnn uses (initializers, dropout, shuffling).

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Examples
    --------
    >>> import fastnn
    >>> fastnn.set_seed(42)
    """
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))


def generator(seed=None):
    """The global generator, or a private one when an explicit `seed` is given."""
    global _generator
    if seed is not None:
        return np.random.default_rng(seed)
    if _generator is None:
        _generator = np.random.default_rng()
    return _generator


def draw_key():
    """A 64-bit key for the C counter-based generators (dropout masks)."""
    return int(generator().integers(0, 2**63 - 1, dtype=np.int64))
