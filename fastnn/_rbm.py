"""The restricted Boltzmann machine of fastnn.unsupervised, trained by contrastive divergence in C kernels."""
import time

import numpy as np

from . import _kernels, _random
from ._callback_base import History
from ._ops_rbm import UNIT_KINDS
from ._threads import effective_threads
from ._validation import as_finite_float, as_float32_array, as_positive_int

_LINEAR, _SIGMOID = 0, 3  # fnn_act codes of the GEMM epilogue
_CHUNK = 4096  # rows per GEMM in transform / reconstruct / free_energy, which bounds their scratch memory


def check_data(x, name, n_visible, visible):
    """x as C-contiguous float32 (n, n_visible): non-empty, finite, and in [0, 1] for Bernoulli visibles."""
    x = as_float32_array(x, name, finite=True)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (samples, features), got shape {x.shape}; flatten images "
                         f"with x.reshape(len(x), -1)")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); at least one sample and one feature are expected")
    if n_visible is not None and x.shape[1] != n_visible:
        raise ValueError(f"{name} has {x.shape[1]} features, but this model has {n_visible} visible units")
    if visible == "bernoulli" and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(f"bernoulli visible units need data in [0, 1] (probabilities or binary values), got {name} "
                         f"in [{x.min():.4g}, {x.max():.4g}]; scale it (e.g. pixels / 255) or use visible='gaussian' "
                         f"on standardised data")
    return x


class RBM:
    """Restricted Boltzmann machine with binary hidden units, trained by contrastive divergence.

    Parameters
    ----------
    n_hidden : int >= 1
        Number of hidden units.
    visible : {"bernoulli", "gaussian"}
        Bernoulli visibles model data in [0, 1]. Gaussian visibles have unit variance: standardise the data
        (zero mean, unit variance per feature) first, and use a learning rate 10-100 times smaller.
    k : int >= 1
        Gibbs steps per update (CD-k).
    persistent : bool
        Persistent CD: the chains' hidden states carry over from batch to batch (one chain per sample of a
        batch) instead of restarting at the data. The chains only track the model while it changes slowly:
        use a smaller learning rate (e.g. 0.05) and no momentum step-up (``final_momentum=None``).
    learning_rate : float > 0
    momentum : float in [0, 1)
        Momentum of the parameter increments for the first `momentum_switch` epochs.
    final_momentum : float in [0, 1), optional
        Momentum afterwards (default 0.9, as Hinton's practical guide suggests); None keeps `momentum`.
    momentum_switch : int >= 0
        Epochs (counted over all `fit` calls) run with `momentum`.
    weight_decay : float >= 0
        L2 penalty on the weights (not the biases), added to their gradient times the learning rate.
    seed : int, optional
        Seeds the initial weights, the shuffling and the Gibbs sampling; the same seed reproduces a whole run
        bit for bit at any thread count. None draws from fastnn's global stream (`fastnn.set_seed`).

    Attributes
    ----------
    weights : ndarray of float32, shape (n_visible, n_hidden)
    visible_bias : ndarray of float32, shape (n_visible,)
    hidden_bias : ndarray of float32, shape (n_hidden,)
        None until the first `fit` or `set_weights`.

    Notes
    -----
    Each update runs this Gibbs chain: hidden probabilities of the data h0, binary hidden states sampled from
    them (or the persistent chains' states), then k times: visible means (Bernoulli probabilities, or the
    linear Gaussian means), sampled except at the last step, and hidden probabilities. The last visible means
    vk and hidden probabilities hk give the negative statistics: the weights move by
    ``learning_rate * ((v0.T @ h0 - vk.T @ hk) / batch - weight_decay * weights)`` plus momentum times the
    previous increment. Initial weights are N(0, 0.01^2), hidden biases 0 and visible biases
    log(p / (1 - p)) of the first data's feature means p (Bernoulli) or those means (Gaussian).

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn.unsupervised import RBM
    >>> x = (np.random.default_rng(0).random((200, 16)) > 0.5).astype(np.float32)
    >>> rbm = RBM(8, seed=0)
    >>> history = rbm.fit(x, epochs=2, batch_size=50, verbose=0)
    >>> rbm.transform(x).shape, len(history.history["reconstruction_error"])
    ((200, 8), 2)
    """

    def __init__(self, n_hidden, visible="bernoulli", k=1, persistent=False, learning_rate=0.1, momentum=0.5,
                 weight_decay=0.0002, seed=None, final_momentum=0.9, momentum_switch=5):
        self.n_hidden = as_positive_int(n_hidden, "n_hidden")
        if visible not in UNIT_KINDS:
            raise ValueError(f"visible must be one of {UNIT_KINDS}, got {visible!r}")
        self.visible = visible
        self.k = as_positive_int(k, "k")
        self.persistent = bool(persistent)
        self.learning_rate = as_finite_float(learning_rate, "learning_rate", positive=True)
        self.momentum = _momentum(momentum, "momentum")
        self.final_momentum = None if final_momentum is None else _momentum(final_momentum, "final_momentum")
        self.momentum_switch = as_positive_int(momentum_switch, "momentum_switch", minimum=0)
        self.weight_decay = as_finite_float(weight_decay, "weight_decay", low=0.0)
        if seed is not None:
            seed = as_positive_int(seed, "seed", minimum=0)
        self.seed = seed
        self._rng = _random.generator(seed)
        self._key = int(self._rng.integers(0, 2**63 - 1, dtype=np.int64))
        self._counter = 0  # advanced by every sampling call, so each draws fresh numbers
        self.epochs_trained = 0
        self.weights = self.visible_bias = self.hidden_bias = None
        self._chain = None

    # ---- parameters ----------------------------------------------------------------------------------
    @property
    def n_visible(self):
        return None if self.weights is None else self.weights.shape[0]

    def get_weights(self):
        """Copies of [weights (n_visible, n_hidden), visible_bias (n_visible,), hidden_bias (n_hidden,)]."""
        self._require_weights("get_weights")
        return [self.weights.copy(), self.visible_bias.copy(), self.hidden_bias.copy()]

    def set_weights(self, weights):
        """Set [weights, visible_bias, hidden_bias]; this also fixes n_visible and resets the training state
        (momentum increments, persistent chains)."""
        weights = list(weights)
        if len(weights) != 3:
            raise ValueError(f"set_weights expects [weights, visible_bias, hidden_bias], got {len(weights)} arrays")
        w = as_float32_array(weights[0], "weights", ndim=2)
        nv = w.shape[0]
        if nv < 1 or w.shape[1] != self.n_hidden:
            raise ValueError(f"weights must have shape (n_visible >= 1, {self.n_hidden}), got {w.shape}")
        if self.n_visible is not None and nv != self.n_visible:
            raise ValueError(f"weights have {nv} visible units, but this RBM has {self.n_visible}")
        b = as_float32_array(weights[1], "visible_bias", ndim=1)
        c = as_float32_array(weights[2], "hidden_bias", ndim=1)
        if b.shape != (nv,) or c.shape != (self.n_hidden,):
            raise ValueError(f"visible_bias must have shape ({nv},) and hidden_bias ({self.n_hidden},), got "
                             f"{b.shape} and {c.shape}")
        self._allocate(nv)
        self.weights[...], self.visible_bias[...], self.hidden_bias[...] = w, b, c

    def _allocate(self, nv):
        nh = self.n_hidden
        self.weights = np.zeros((nv, nh), np.float32)
        self.visible_bias, self.hidden_bias = np.zeros(nv, np.float32), np.zeros(nh, np.float32)
        self._incs = (np.zeros((nv, nh), np.float32), np.zeros(nv, np.float32), np.zeros(nh, np.float32))
        self._work = np.empty(2 * nv * nh, np.float32)
        self._chain = None

    def _initialise(self, x):
        self._allocate(x.shape[1])
        self.weights[...] = self._rng.normal(0.0, 0.01, self.weights.shape)
        p = x.mean(axis=0, dtype=np.float64)
        if self.visible == "bernoulli":
            p = np.clip(p, 1e-3, 1.0 - 1e-3)
            p = np.log(p / (1.0 - p))
        self.visible_bias[...] = p

    def _require_weights(self, what):
        if self.weights is None:
            raise RuntimeError(f"{what}: this RBM has no weights yet; call fit() or set_weights() first")

    # ---- random numbers and unit computations ----------------------------------------------------------
    def _sample(self, mean, out, gaussian=False):
        _kernels.rbm_sample(mean.reshape(-1), out.reshape(-1), gaussian, self._key, self._counter,
                            effective_threads())
        self._counter += 1

    def _hidden(self, v, out):
        """Hidden probabilities sigmoid(v @ W + c), fused in the GEMM epilogue."""
        _kernels.gemm(v, self.weights, out, False, False, False, self.hidden_bias, _SIGMOID, 0.0,
                      effective_threads())

    def _visible(self, h, out):
        """Visible means: sigmoid(h @ W.T + b) for Bernoulli units, h @ W.T + b for Gaussian ones."""
        act = _SIGMOID if self.visible == "bernoulli" else _LINEAR
        _kernels.gemm(h, self.weights, out, False, True, False, self.visible_bias, act, 0.0, effective_threads())

    # ---- training ----------------------------------------------------------------------------------------
    def fit(self, x, epochs=1, batch_size=100, verbose=1, shuffle=True):
        """Train by CD-k (or persistent CD) on x for `epochs` more epochs.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_visible)
            In [0, 1] for Bernoulli visibles, standardised for Gaussian ones; finite.
        epochs : int >= 1
        batch_size : int >= 1
        verbose : int
            1 prints one line per epoch, 0 nothing.
        shuffle : bool
            Visit the samples in a new random order each epoch.

        Returns
        -------
        History
            ``history.history["reconstruction_error"]``: per epoch, the mean over samples and features of the
            squared difference between the data and its one-step reconstruction (the visible means given
            hidden states sampled from the data).
        """
        x = check_data(x, "x", self.n_visible, self.visible)
        epochs = as_positive_int(epochs, "epochs")
        batch_size = as_positive_int(batch_size, "batch_size")
        if self.weights is None:
            self._initialise(x)
        history = History()
        n = len(x)
        for _ in range(epochs):
            start = time.perf_counter()
            order = self._rng.permutation(n) if shuffle else None
            total = 0.0
            for lo in range(0, n, batch_size):
                batch = x[order[lo:lo + batch_size]] if shuffle else x[lo:lo + batch_size]
                total += self._cd_step(batch, batch_size)
            error = total / (n * x.shape[1])
            self.epochs_trained += 1
            history.on_epoch_end(self.epochs_trained - 1, {"reconstruction_error": error})
            if verbose:
                print(f"RBM {x.shape[1]}-{self.n_hidden} epoch {self.epochs_trained}: reconstruction error "
                      f"{error:.5f} ({time.perf_counter() - start:.1f} s)", flush=True)
        return history

    def _current_momentum(self):
        if self.final_momentum is not None and self.epochs_trained >= self.momentum_switch:
            return self.final_momentum
        return self.momentum

    def _cd_step(self, v0, batch_size):
        """One CD-k / PCD update on the batch v0; returns its summed squared reconstruction error."""
        bsz, nv, nh = len(v0), v0.shape[1], self.n_hidden
        gaussian = self.visible == "gaussian"
        h0, hk = np.empty((bsz, nh), np.float32), np.empty((bsz, nh), np.float32)
        vk = np.empty((bsz, nv), np.float32)
        states = np.empty((bsz, nh), np.float32)
        self._hidden(v0, h0)
        self._sample(h0, states)
        self._visible(states, vk)
        error = float(np.square(vk - v0).sum(dtype=np.float64))
        if self.persistent:
            if self._chain is None or len(self._chain) != batch_size:
                self._chain = np.empty((batch_size, nh), np.float32)
                self._chain[:bsz] = states
                self._chain[bsz:] = states[:1]
            states = self._chain[:bsz]
            self._visible(states, vk)
        for step in range(self.k):
            if step > 0:
                self._visible(states, vk)
            if step < self.k - 1:
                self._sample(vk, vk, gaussian)
            self._hidden(vk, hk)
            if step < self.k - 1 or self.persistent:
                self._sample(hk, states)
        w_inc, b_inc, c_inc = self._incs
        _kernels.rbm_update(v0, h0, vk, hk, self.weights, self.visible_bias, self.hidden_bias, w_inc, b_inc, c_inc,
                            self.learning_rate, self._current_momentum(), self.weight_decay, self._work,
                            effective_threads())
        return error

    # ---- inference ---------------------------------------------------------------------------------------
    def _prepared(self, x, what):
        self._require_weights(what)
        return check_data(x, "x", self.n_visible, self.visible)

    def transform(self, x):
        """Hidden probabilities P(h = 1 | x), shape (n_samples, n_hidden), float32."""
        x = self._prepared(x, "transform")
        out = np.empty((len(x), self.n_hidden), np.float32)
        for lo in range(0, len(x), _CHUNK):
            self._hidden(x[lo:lo + _CHUNK], out[lo:lo + _CHUNK])
        return out

    def reconstruct(self, x):
        """Mean-field reconstruction: the visible means given the hidden probabilities of x (no sampling)."""
        x = self._prepared(x, "reconstruct")
        out = np.empty_like(x)
        for lo in range(0, len(x), _CHUNK):
            h = np.empty((len(x[lo:lo + _CHUNK]), self.n_hidden), np.float32)
            self._hidden(x[lo:lo + _CHUNK], h)
            self._visible(h, out[lo:lo + _CHUNK])
        return out

    def free_energy(self, x):
        """Free energy F(v) per sample, float64 of shape (n_samples,), so that P(v) is proportional to exp(-F(v)).

        Bernoulli visibles: F(v) = -v . b - sum_j softplus(c_j + v . W[:, j]);
        Gaussian (unit variance): F(v) = |v - b|^2 / 2 - sum_j softplus(c_j + v . W[:, j]).
        """
        x = self._prepared(x, "free_energy")
        out = np.empty(len(x))
        for lo in range(0, len(x), _CHUNK):
            v = x[lo:lo + _CHUNK]
            z = np.empty((len(v), self.n_hidden), np.float32)
            _kernels.gemm(v, self.weights, z, False, False, False, self.hidden_bias, _LINEAR, 0.0,
                          effective_threads())
            softplus = np.logaddexp(0.0, z.astype(np.float64)).sum(axis=1)
            v64 = v.astype(np.float64)
            if self.visible == "bernoulli":
                visible_term = -(v64 @ self.visible_bias.astype(np.float64))
            else:
                visible_term = 0.5 * np.square(v64 - self.visible_bias).sum(axis=1)
            out[lo:lo + len(v)] = visible_term - softplus
        return out

    def sample(self, initial, n_steps=1000):
        """Run Gibbs chains and return their final visible means.

        Parameters
        ----------
        initial : int or array_like of shape (n_chains, n_visible)
            An int starts that many chains from random visible states (fair coin flips for Bernoulli units,
            standard normals for Gaussian ones); an array starts one chain from each of its rows.
        n_steps : int >= 1
            Gibbs steps v -> h -> v; hidden states are sampled at every step, visible states at all but the
            last, whose means are returned.

        Returns
        -------
        ndarray of float32, shape (n_chains, n_visible)
        """
        self._require_weights("sample")
        n_steps = as_positive_int(n_steps, "n_steps")
        gaussian = self.visible == "gaussian"
        if isinstance(initial, (int, np.integer)) and not isinstance(initial, bool):
            n = as_positive_int(initial, "n_samples")
            v = np.full((n, self.n_visible), 0.0 if gaussian else 0.5, np.float32)
            self._sample(v, v, gaussian)
        else:
            v = check_data(initial, "initial", self.n_visible, self.visible).copy()
        h = np.empty((len(v), self.n_hidden), np.float32)
        for step in range(n_steps):
            self._hidden(v, h)
            self._sample(h, h)
            self._visible(h, v)
            if step < n_steps - 1:
                self._sample(v, v, gaussian)
        return v

    def __repr__(self):
        kind = "PCD" if self.persistent else "CD"
        return (f"RBM(n_visible={self.n_visible}, n_hidden={self.n_hidden}, visible={self.visible!r}, "
                f"{kind}-{self.k}, learning_rate={self.learning_rate})")


def _momentum(value, name):
    value = as_finite_float(value, name, low=0.0)
    if value >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value
