"""Activation functions by Keras name: what each layer passes to the fused C kernels."""

# name -> (kernel code, default negative slope); softmax is row-wise and handled by its own kernels.
_ELEMENTWISE = {
    "linear": 0,
    "relu": 1,
    "leaky_relu": 2,
    "sigmoid": 3,
    "tanh": 4,
    "gelu": 5,
}
SOFTMAX = -1
NAMES = tuple(sorted(list(_ELEMENTWISE) + ["softmax"]))
LEAKY_RELU_SLOPE = 0.2  # Keras 3's default negative_slope


def code(name):
    """The kernel code for an activation name (None means linear); SOFTMAX for softmax."""
    if name is None:
        return 0
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name (one of {', '.join(NAMES)}), got {name!r}")
    key = name.lower()
    if key == "softmax":
        return SOFTMAX
    if key not in _ELEMENTWISE:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(NAMES)}")
    return _ELEMENTWISE[key]


def needs_preactivation(act):
    """gelu's derivative needs its input; the others are computed from the output."""
    return act == _ELEMENTWISE["gelu"]
