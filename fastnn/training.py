"""The training side of a model: compile, the train/test/predict steps, and the fit/evaluate/predict loops."""

import math

import numpy as np

from . import _dense_plan, _fused_step, _kernels, _threads, _validation, losses, metrics as metrics_mod, optimizers
from ._batch_inputs import BatchInputsMixin
from ._callback_base import CallbackList
from .progress import Progress, resolve_verbose

DEFAULT_BATCH_SIZE = 32
# A training step whose largest kernel call has fewer multiply-adds than this (batch x the largest
# `Layer.call_work`) runs on one thread: there a second core costs more than it saves, in waking it and in moving
# the data it touches between the two cores' caches. Measured on the workloads (2 threads over 1, largest call):
# mlp batch 1 (0.2 M) 1.50x, lenet batch 2 (0.7 M) 1.01x, lstm batch 1 (1.05 M, the input projection) 1.09x
# slower; lenet batch 4 (1.4 M) 0.91x, mlp batch 8 (1.6 M) 0.96x, lstm batch 2 (2.1 M) 0.87x, cnn32 batch 1
# (9.5 M) 0.59x. At batch 1, giving only the first layer's forward GEMV and fused update (784x256) to 2 threads
# loses too: with fixed column ownership each 1 KB weight row is split across the cores and they pull each
# other's lines; with rows owned in the update the forward then reads the half the other core holds.
SERIAL_STEP_WORK = 1_200_000


class NonFiniteLossError(FloatingPointError):
    """A batch's loss was NaN or infinite (`loss` holds it); the step was not applied, so the weights are those
    of the last good step."""

    def __init__(self, loss):
        super().__init__(f"the loss became {loss}; the weights were left as they were before this step")
        self.loss = loss


class TrainingMixin(BatchInputsMixin):
    """compile / fit / evaluate / predict for `Sequential` (which provides the layers and the arena)."""

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.stop_training = False
        self._metric_ids = []
        self._metrics = None
        self._fused_layer = None
        self._steps, self._steps_arena = {}, None  # forward plans by (training, keep) and "backward", for one arena
        self._logits = False
        self._grad_buffers = {}
        self._fused_step = None
        self._dense_train = self._dense_forward = None

    # ---- configuration -----------------------------------------------------------------------------------
    def compile(self, optimizer="sgd", loss=None, metrics=None):
        """Configure training.

        Parameters
        ----------
        optimizer : str or Optimizer
            "sgd" or an object such as ``fastnn.optimizers.SGD(0.01, momentum=0.9)``.
        loss : str or Loss
            "sparse_categorical_crossentropy", "categorical_crossentropy", "mse", "binary_crossentropy", or
            an object (e.g. ``losses.SparseCategoricalCrossentropy(from_logits=True)``).
        metrics : list of str, optional
            e.g. ["accuracy"].
        """
        if loss is None:
            raise ValueError(f"compile() needs a loss; valid names: {', '.join(sorted(losses._BY_NAME))}")
        optimizer, loss = optimizers.get(optimizer), losses.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, metrics_mod.Metric)):
            metrics = [metrics]
        for m in metrics:
            if isinstance(m, str) and m.lower() not in metrics_mod.VALID_NAMES:
                raise ValueError(f"unknown metric {m!r}; valid names: {', '.join(metrics_mod.VALID_NAMES)}")
            if not isinstance(m, (str, metrics_mod.Metric)):
                raise TypeError(f"a metric must be a name or a Metric, got {m!r}")
        self.optimizer, self.loss = optimizer, loss
        self._metric_ids = list(metrics)
        self._metrics = None
        self._configure_fusion()

    def _on_structure_change(self):
        self._metrics = None
        self._grad_buffers = {}
        self._fused_step = None
        self._dense_train = self._dense_forward = None
        if self.loss is not None:
            self._configure_fusion()

    def _configure_fusion(self):
        if self._fused_layer is not None:
            self._fused_layer.emit_logits = False
        last = self._layers[-1] if self._layers else None
        wanted = self.loss.fused_activation
        fuse = (wanted is not None and not self.loss.from_logits and last is not None
                and getattr(last, "activation", None) == wanted)
        self._fused_layer = last if fuse else None
        self._logits = fuse or (self.loss.from_logits and wanted is not None)

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}() needs a compiled model: call model.compile(optimizer=..., loss=...) first")

    def _get_metrics(self):
        if self._metrics is None:
            out_shape = self._layers[-1].output_shape
            self._metrics = [metrics_mod.get(m, self.loss, out_shape) for m in self._metric_ids]
        return self._metrics

    # ---- one batch ---------------------------------------------------------------------------------------------
    def _forward(self, x, training, for_loss):
        fused = self._fused_layer
        if fused is not None:
            fused.emit_logits = for_loss
        # small Conv2D + MaxPool2D pairs run as one call, keeping what backward needs unless nothing will run it
        keep = training or for_loss
        steps = self._layer_steps((training, keep), self._forward_steps, training, keep)
        for step, arg in steps:
            x = step(x, arg)
        return x

    def _forward_steps(self, layers, training, keep):
        from .layers.pooling import forward_steps  # the step planners: imported when a plan is first made
        steps = forward_steps(layers, training, keep)
        return steps if training or keep else _dense_plan.with_dense_tail(self, steps)

    def _layer_steps(self, key, build, *args):
        """The steps `build(layers, *args)` planned for this model's layers, kept per key until the arena (and so
        the layers) changes."""
        if self._steps_arena is not self._arena:
            self._steps, self._steps_arena = {}, self._arena
        steps = self._steps.get(key)
        if steps is None:
            steps = self._steps[key] = build(self._layers, *args)
        return steps

    def _grad_buffer(self, shape):
        buf = self._grad_buffers.get(shape)
        if buf is None:
            if len(self._grad_buffers) > 8:
                self._grad_buffers.clear()
            buf = self._grad_buffers[shape] = np.empty(shape, np.float32)
        return buf

    def _compute_gradients(self, x, t, w, metrics):
        """Forward and backward on one batch: fills the gradient arena, returns the loss; no update."""
        out = self._forward(x, True, True)
        grad = self._grad_buffer(out.shape)
        loss = self.loss.compute(out, t, w, grad, self._logits)
        if not math.isfinite(loss):
            raise NonFiniteLossError(loss)
        for m in metrics:
            m.update(out, t, self._logits, w)
        dy = grad
        for step, need_dx in self._layer_steps("backward", _backward_steps):
            dy = step(dy, need_dx)
        return loss

    @staticmethod
    def _maybe_serial(small, fn, *args):
        """fn(*args), on one thread when the work is `small` (over before a second thread pays for waking it)
        or when other processes want the CPUs (`_threads.contended`)."""
        threads = _kernels.omp_max_threads()
        if threads > 1 and (small or _threads.contended()):
            _kernels.omp_set_threads(1)
            try:
                return fn(*args)
            finally:
                _kernels.omp_set_threads(threads)
        return fn(*args)

    def _train_step(self, x, t, w, metrics):
        small = len(x) * self._arena.call_work < SERIAL_STEP_WORK
        plan = self._dense_train = _dense_plan.train_plan_for(self, self._dense_train)
        if plan is not None:
            return plan.run(self, x, t, w, metrics, small)
        return self._maybe_serial(small, self._update_step, x, t, w, metrics)

    def _update_step(self, x, t, w, metrics):
        fused = self._fused_step = _fused_step.plan_for(self, self._fused_step)
        if fused is not None:
            return fused.run(self, x, t, w, metrics)
        loss = self._compute_gradients(x, t, w, metrics)
        self.optimizer.apply(self._arena.params, self._arena.grads, self._arena.segments)
        return loss

    def _test_step(self, x, t, w, metrics):
        out = self._maybe_serial(False, self._forward, x, False, True)
        loss = self.loss.compute(out, t, w, None, self._logits)
        for m in metrics:
            m.update(out, t, self._logits, w)
        return loss

    def _results(self, loss, metrics, return_dict):
        if return_dict:
            return {"loss": loss, **{m.name: m.result() for m in metrics}}
        return [loss] + [m.result() for m in metrics] if metrics else loss

    def _on_batch(self, what, step, x, y, sample_weight, return_dict):
        self._require_compiled(what)
        x = self._prepare_x(x)
        t = self._prepare_targets(y, len(x))
        w = self._prepare_weights(sample_weight, len(x))
        metrics = self._get_metrics()
        for m in metrics:
            m.reset()
        return self._results(step(x, t, w, metrics), metrics, return_dict)

    def train_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """One optimizer step on one batch. Returns the loss (a list [loss, *metrics] when metrics are set)."""
        return self._on_batch("train_on_batch", self._train_step, x, y, sample_weight, return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """The loss (and metrics) on one batch, in inference mode."""
        return self._on_batch("test_on_batch", self._test_step, x, y, sample_weight, return_dict)

    def _infer(self, x):
        """The model's output for a validated batch in inference mode (a buffer reused by the next call)."""
        plan = self._dense_forward = _dense_plan.forward_plan_for(self, self._dense_forward)
        if type(plan) is _dense_plan.ForwardPlan:
            return plan.run(x)
        return self._maybe_serial(False, self._forward, x, False, False)

    def predict_on_batch(self, x):
        """The model's output for one batch (inference mode), as a new array."""
        return self._infer(self._prepare_x(x)).copy()

    def __call__(self, x, training=None):
        """Run the model on a batch; `training` defaults to the mode set by `train()` / `eval()`."""
        x = self._prepare_x(x)
        return self._forward(x, self.training if training is None else bool(training), False).copy()

    # ---- whole data sets ---------------------------------------------------------------------------------
    def predict(self, x, batch_size=None, verbose="auto", callbacks=None):
        """The model's outputs for all samples of x, computed batch by batch in inference mode.

        Parameters
        ----------
        x : array of shape (n, *input_shape)
        batch_size : int, default 32
        verbose : {"auto", 0, 1, 2}, default "auto"
            1 a progress bar then a summary line, 2 only the line, 0 nothing; "auto" is 1 on a terminal, else 0.
        callbacks : list of Callback, optional
            Their on_predict_* hooks are called.

        Returns
        -------
        array of shape (n, *output_shape), float32
        """
        x = self._prepare_x(x)
        batch_size = _validation.as_positive_int(DEFAULT_BATCH_SIZE if batch_size is None else batch_size, "batch_size")
        verbose = resolve_verbose(verbose, off_terminal=0)
        cbs = CallbackList(callbacks, self, {"steps": -(-len(x) // batch_size), "verbose": verbose})
        begin, end = cbs.hooks["on_predict_batch_begin"], cbs.hooks["on_predict_batch_end"]
        out = np.empty((len(x),) + tuple(self._layers[-1].output_shape), np.float32)
        cbs.call("on_predict_begin", {})
        with Progress(verbose, len(x), "predict") as progress:
            for step, start in enumerate(range(0, len(x), batch_size)):
                stop = min(start + batch_size, len(x))
                for hook in begin:
                    hook(step, {})
                out[start:stop] = self._infer(x[start:stop])
                for hook in end:
                    hook(step, {"outputs": out[start:stop]})
                progress.update(stop)
            progress.finish(len(x), {})
        cbs.call("on_predict_end", {})
        return out

    def evaluate(self, x, y, batch_size=None, verbose="auto", sample_weight=None, callbacks=None, return_dict=False):
        """Loss (and metrics) over a whole data set, in inference mode.

        Parameters
        ----------
        x : array of shape (n, *input_shape)
        y : targets for the compiled loss
        batch_size : int, default 32
        verbose : {"auto", 0, 1, 2}, default "auto"
            1 a progress bar then a summary line, 2 only the line, 0 nothing; "auto" is 1 on a terminal, else 0.
        sample_weight : array of shape (n,), optional
        callbacks : list of Callback, optional
            Their on_test_* hooks are called.
        return_dict : bool, default False

        Returns
        -------
        The loss, or [loss, *metrics] when metrics were compiled, or a dict with `return_dict=True`.
        """
        self._require_compiled("evaluate")
        x = self._prepare_x(x)
        t = self._prepare_targets(y, len(x))
        w = self._prepare_weights(sample_weight, len(x))
        batch_size = _validation.as_positive_int(DEFAULT_BATCH_SIZE if batch_size is None else batch_size, "batch_size")
        verbose = resolve_verbose(verbose, off_terminal=0)
        cbs = CallbackList(callbacks, self, {"steps": -(-len(x) // batch_size), "verbose": verbose})
        metrics = self._get_metrics()
        cbs.call("on_test_begin", {})
        with Progress(verbose, len(x), "evaluate") as progress:
            loss = self._evaluate_prepared(x, t, w, batch_size, metrics, cbs, progress)
            logs = self._results(loss, metrics, True)
            progress.finish(len(x), logs)
        result = logs if return_dict else self._results(loss, metrics, False)
        cbs.call("on_test_end", logs)
        return result

    def _evaluate_prepared(self, x, t, w, batch_size, metrics, cbs=None, progress=None):
        """The mean loss over validated data (metrics accumulate in `metrics`), calling the on_test_batch hooks."""
        begin = end = ()
        if cbs is not None:
            begin, end = cbs.hooks["on_test_batch_begin"], cbs.hooks["on_test_batch_end"]
        for m in metrics:
            m.reset()
        total = 0.0
        for step, start in enumerate(range(0, len(x), batch_size)):
            stop = min(start + batch_size, len(x))
            wb = None if w is None else w[start:stop]
            for hook in begin:
                hook(step, {})
            total += self._test_step(x[start:stop], t[start:stop], wb, metrics) * (stop - start)
            if end:
                logs = self._results(total / stop, metrics, True)
                for hook in end:
                    hook(step, logs)
            if progress is not None:
                progress.update(stop, total / stop, metrics)
        return total / len(x)

    def fit(self, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0):
        """Train for a number of epochs of mini-batches.

        Parameters
        ----------
        x : array of shape (n, *input_shape)
        y : targets for the compiled loss (class indices, one-hot rows, values)
        batch_size : int, default 32
        epochs : int, default 1
            The index of the last epoch (training runs epochs `initial_epoch` .. `epochs - 1`).
        verbose : {"auto", 0, 1, 2}, default "auto"
            1 a tqdm bar during each epoch (samples/s, running loss and metrics), then the epoch's line; 2 only
            one line per epoch (time, samples/s, all logs); 0 nothing. "auto" is 1 on a terminal, 2 otherwise.
        callbacks : list of Callback, optional
            E.g. ``[fastnn.callbacks.EarlyStopping(patience=3)]``; see `fastnn.callbacks`.
        validation_split : float in [0, 1), default 0
            Hold out this fraction of the samples (the last ones, before shuffling) for validation.
        validation_data : tuple (x_val, y_val) or (x_val, y_val, sample_weight_val), optional
            Overrides `validation_split`.
        shuffle : bool, default True
            Shuffle the training samples each epoch (from fastnn's seeded generator).
        class_weight : dict {class index: weight}, optional
            Weigh each training sample by its class (missing classes weigh 1); multiplies `sample_weight`.
        sample_weight : array of shape (n,), optional
        initial_epoch : int, default 0
            The epoch to start from (to resume a run).

        Returns
        -------
        History
            ``history.history`` maps "loss", the metrics and their "val_" twins to per-epoch lists.

        Raises
        ------
        FloatingPointError
            When a batch's loss is NaN or infinite (unless a callback such as `TerminateOnNaN` stops training);
            the message names the epoch and batch, and the model keeps the weights of the last good step.
        """
        from .fit_loop import fit_loop
        return fit_loop(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                        shuffle, class_weight, sample_weight, initial_epoch)


def _backward_steps(layers):
    from .layers.pooling import backward_steps
    return backward_steps(layers)
