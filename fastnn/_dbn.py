"""The deep belief network of fastnn.unsupervised: a stack of RBMs pre-trained greedily, layer by layer."""
import numpy as np

from . import _random, initializers, layers
from ._rbm import RBM, check_data
from ._validation import as_positive_int
from .model import Sequential


class DBN:
    """Deep belief network: a stack of RBMs, each trained on the hidden probabilities of the one below.

    Parameters
    ----------
    hidden_sizes : sequence of int >= 1
        Hidden units of each RBM, bottom first (e.g. ``(500, 500, 2000)``); at least one.
    seed : int, optional
        Seeds every RBM (each gets its own stream derived from it) and the output layer of `to_sequential`;
        the same seed reproduces the whole pre-training. None draws from fastnn's global stream.
    visible : {"bernoulli", "gaussian"}
        Visible units of the bottom RBM (the upper ones see probabilities, so they are Bernoulli).
    learning_rate : float > 0, or a sequence of them (one per RBM)
        Wide RBMs want smaller rates: with many hidden units a large step can switch all of them off for good
        (784-500-500-2000 on MNIST trains well with 0.1, 0.1, 0.02). A Gaussian bottom RBM wants one 10-100
        times smaller than a Bernoulli one.
    k, persistent, momentum, final_momentum, momentum_switch, weight_decay
        Passed to every RBM (see `RBM`).

    Attributes
    ----------
    rbms : list of RBM
        Bottom first.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn.unsupervised import DBN
    >>> x = (np.random.default_rng(0).random((100, 16)) > 0.5).astype(np.float32)
    >>> dbn = DBN([8, 4], seed=0)
    >>> _ = dbn.fit(x, epochs=1, batch_size=20, verbose=0)
    >>> dbn.transform(x).shape
    (100, 4)
    >>> model = dbn.to_sequential(3)
    >>> [layer.units for layer in model.layers]
    [8, 4, 3]
    """

    def __init__(self, hidden_sizes, seed=None, visible="bernoulli", k=1, persistent=False, learning_rate=0.1,
                 momentum=0.5, final_momentum=0.9, momentum_switch=5, weight_decay=0.0002):
        if isinstance(hidden_sizes, (int, np.integer)) or not hasattr(hidden_sizes, "__iter__"):
            raise TypeError(f"hidden_sizes must be a sequence of layer sizes, got {hidden_sizes!r}")
        sizes = [as_positive_int(n, f"hidden_sizes[{i}]") for i, n in enumerate(hidden_sizes)]
        if not sizes:
            raise ValueError("a DBN needs at least one layer: hidden_sizes is empty")
        if seed is not None:
            seed = as_positive_int(seed, "seed", minimum=0)
        self.seed = seed
        seeds = np.random.SeedSequence(seed).generate_state(len(sizes) + 1) if seed is not None else None
        self._output_seed = None if seeds is None else int(seeds[-1])
        if isinstance(learning_rate, (list, tuple, np.ndarray)):
            rates = list(learning_rate)
            if len(rates) != len(sizes):
                raise ValueError(f"learning_rate must be one number or one per RBM ({len(sizes)}), got {len(rates)}")
        else:
            rates = [learning_rate] * len(sizes)
        self.rbms = [RBM(n, visible=visible if i == 0 else "bernoulli", k=k, persistent=persistent,
                         learning_rate=rates[i], momentum=momentum, final_momentum=final_momentum,
                         momentum_switch=momentum_switch, weight_decay=weight_decay,
                         seed=None if seeds is None else int(seeds[i]))
                     for i, n in enumerate(sizes)]
        self.visible = visible

    @property
    def hidden_sizes(self):
        return [rbm.n_hidden for rbm in self.rbms]

    @property
    def n_visible(self):
        return self.rbms[0].n_visible

    def fit(self, x, epochs=10, batch_size=100, verbose=1, shuffle=True):
        """Greedy layer-wise pre-training: train each RBM in turn on the previous one's hidden probabilities.

        Parameters
        ----------
        x : array_like, shape (n_samples, n_visible)
            In [0, 1] for Bernoulli visibles (standardised for Gaussian ones); finite.
        epochs : int >= 1, or a sequence of them (one per RBM)
        batch_size : int >= 1
        verbose : int
            1 prints one line per epoch.
        shuffle : bool

        Returns
        -------
        list of History
            One per RBM, bottom first (see `RBM.fit`).
        """
        x = check_data(x, "x", self.n_visible, self.visible)
        if isinstance(epochs, (int, np.integer)) and not isinstance(epochs, bool):
            epochs = [epochs] * len(self.rbms)
        epochs = list(epochs)
        if len(epochs) != len(self.rbms):
            raise ValueError(f"epochs must be one int or one per RBM ({len(self.rbms)}), got {len(epochs)} values")
        epochs = [as_positive_int(e, f"epochs[{i}]") for i, e in enumerate(epochs)]
        batch_size = as_positive_int(batch_size, "batch_size")
        histories = []
        data = x
        for i, (rbm, n_epochs) in enumerate(zip(self.rbms, epochs)):
            histories.append(rbm.fit(data, epochs=n_epochs, batch_size=batch_size, verbose=verbose, shuffle=shuffle))
            if i < len(self.rbms) - 1:
                data = rbm.transform(data)
        return histories

    def _require_fitted(self, what):
        for i, rbm in enumerate(self.rbms):
            if rbm.weights is None:
                raise RuntimeError(f"{what}: RBM {i} of this DBN has no weights yet; call fit() first")

    def transform(self, x):
        """The top RBM's hidden probabilities, propagated up the stack: shape (n_samples, hidden_sizes[-1])."""
        self._require_fitted("transform")
        for rbm in self.rbms:
            x = rbm.transform(x)
        return x

    def to_sequential(self, n_classes, output_activation="softmax"):
        """A feed-forward classifier initialised from the pre-trained stack, ready to compile and fine-tune.

        Parameters
        ----------
        n_classes : int >= 1
            Units of the new output layer.
        output_activation : str
            Its activation (softmax by default; pair it with a cross-entropy loss).

        Returns
        -------
        Sequential
            ``Input((n_visible,))``, one ``Dense(n_hidden, activation="sigmoid")`` per RBM with kernel = its
            weights and bias = its hidden biases, then ``Dense(n_classes, output_activation)`` with Glorot-uniform
            kernel (seeded from the DBN's seed) and zero bias. The weights are copies: fine-tuning leaves the RBMs
            untouched.
        """
        self._require_fitted("to_sequential")
        n_classes = as_positive_int(n_classes, "n_classes")
        seed = self._output_seed if self._output_seed is not None else int(_random.generator().integers(2**31))
        stack = [layers.Input((self.n_visible,))]
        stack += [layers.Dense(rbm.n_hidden, activation="sigmoid") for rbm in self.rbms]
        stack.append(layers.Dense(n_classes, activation=output_activation,
                                  kernel_initializer=initializers.GlorotUniform(seed=seed)))
        model = Sequential(stack)
        if not model.built:
            model.build()
        for layer, rbm in zip(model.layers, self.rbms):
            layer.weights[0][...] = rbm.weights
            layer.weights[1][...] = rbm.hidden_bias
        return model

    def __repr__(self):
        sizes = "-".join(str(n) for n in [self.n_visible or "?"] + self.hidden_sizes)
        return f"DBN({sizes}, visible={self.visible!r})"
