"""The shared finite-difference gradient checker for layers and whole models.

Every layer test calls `check_layer_gradients` in a line or two: it builds the layer alone, projects its output
on a fixed random tensor r (loss = sum(out * r)), and compares the layer's backward pass (input gradient and
parameter gradients) with central differences. Entries whose left and right differences disagree (a kink such
as relu's crossed by the step) are skipped, and at most `max_entries` entries per tensor are probed.
"""
import numpy as np

import fastnn
from fastnn._arena import Arena


def _central(f, arr, idx, h):
    old = arr[idx]
    arr[idx] = old + h
    fp = f()
    arr[idx] = old - h
    fm = f()
    arr[idx] = old
    f0 = f()
    return (fp - fm) / (2 * h), abs((fp - f0) - (f0 - fm))


def _compare(name, analytic, f, arr, rng, max_entries, h, rtol, atol):
    flat_idx = rng.choice(arr.size, size=min(arr.size, max_entries), replace=False)
    checked = 0
    for flat in flat_idx:
        idx = np.unravel_index(flat, arr.shape)
        numeric, curvature = _central(f, arr, idx, h)
        if curvature > 20 * h * h:  # a kink between x - h and x + h: no derivative to compare with
            continue
        a = float(analytic[idx])
        assert abs(a - numeric) <= atol + rtol * max(abs(a), abs(numeric)), (
            f"{name}{tuple(int(i) for i in idx)}: backward gives {a:.6g}, finite differences {numeric:.6g}")
        checked += 1
    assert checked >= min(arr.size, max_entries) // 2, f"{name}: too few smooth entries to check ({checked})"


def check_layer_gradients(layer, input_shape, batch=3, seed=0, h=1e-2, rtol=2e-2, atol=2e-3, max_entries=24,
                          x=None, training=False):
    """Check `layer`'s backward against central differences for a random input of per-sample `input_shape`."""
    rng = np.random.default_rng(seed)
    fastnn.set_seed(seed)  # the layer's initial weights, whatever ran before
    layer.build(tuple(input_shape))
    Arena([layer])
    if x is None:
        x = rng.standard_normal((batch,) + tuple(input_shape)).astype(np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = layer.forward(x, training)
    r = rng.standard_normal(out.shape).astype(np.float32)

    def loss():
        return float(np.sum(layer.forward(x, training).astype(np.float64) * r))

    layer.forward(x, training)
    dx = layer.backward(r.copy(), need_dx=True, accumulate=False)
    dx = None if dx is None else dx.copy()
    grads = [g.copy() for g in layer.grads]
    assert dx is not None and dx.shape == x.shape
    _compare("dx", dx, loss, x, rng, max_entries, h, rtol, atol)
    trainable = [w for w, spec in zip(layer.weights, layer.param_specs()) if spec.trainable]
    for spec_name, w, g in zip([s.name for s in layer.param_specs() if s.trainable], trainable, grads):
        assert g.shape == w.shape
        _compare(spec_name, g, loss, w, rng, max_entries, h, rtol, atol)
    return dx, grads


def model_gradients(model, x, y, sample_weight=None):
    """The gradient of the model's loss with respect to its trainable parameters (flat, as the arena holds
    them), from a forward and backward pass in training mode, without an optimizer step."""
    x = model._prepare_x(x)
    t = model._prepare_targets(y, len(x))
    w = model._prepare_weights(sample_weight, len(x))
    model._compute_gradients(x, t, w, [])
    return model._arena.grads.copy()


def check_model_gradients(model, x, y, seed=0, h=1e-2, rtol=3e-2, atol=2e-3, max_entries=40, sample_weight=None):
    """Compare a compiled model's parameter gradients (one train step, undone) with central differences of
    `test_on_batch`'s loss. The model must have no dropout active at test time (it has none at inference)."""
    rng = np.random.default_rng(seed)
    grads = model_gradients(model, x, y, sample_weight)
    params = model._arena.params

    def loss():
        value = model.test_on_batch(x, y, sample_weight=sample_weight)
        return float(value[0] if isinstance(value, list) else value)

    _compare("params", grads, loss, params, rng, max_entries, h, rtol, atol)
