"""LearningRateScheduler and ReduceLROnPlateau: the rates they set, their settings and their errors."""
import pytest

from fastnn import callbacks as C

from callback_support import Scripted, fit as _fit, model_for as _model, same_weights as _same_weights


def test_learning_rate_scheduler_sets_the_rate_used_by_each_epoch():
    model = _model(lr=0.05)
    history = _fit(model, [C.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else 0.2)], 4)
    assert history.history["learning_rate"] == [0.2, 0.1, 0.05, 0.025] and model.optimizer.learning_rate == 0.025
    # the scheduled rate is the one the optimizer uses: same weights as a model compiled with it
    one_arg, fixed = _model(lr=0.05), _model(lr=0.3)
    _fit(one_arg, [C.LearningRateScheduler(lambda epoch: 0.3)], 1, shuffle=False)
    _fit(fixed, [], 1, shuffle=False)
    assert _same_weights(one_arg.get_weights(), fixed.get_weights())


def test_learning_rate_scheduler_errors():
    with pytest.raises(TypeError, match="schedule must be a function"):
        C.LearningRateScheduler(0.1)
    with pytest.raises(TypeError, match="must return a number, got 'x' at epoch 0"):
        _fit(_model(), [C.LearningRateScheduler(lambda e, lr: "x")], 1)
    with pytest.raises(ValueError, match="LearningRateScheduler could not set the learning rate to -1.0"):
        _fit(_model(), [C.LearningRateScheduler(lambda e, lr: -1.0)], 1)
    scheduled = _model()
    scheduled.optimizer.learning_rate = lambda step: 0.1 / (1 + step)  # an optimizer-level schedule
    for cb in (C.LearningRateScheduler(lambda e, lr: lr), C.ReduceLROnPlateau()):
        with pytest.raises(TypeError, match=f"{type(cb).__name__} sets the optimizer's learning rate, but that "
                                            f"is driven by a schedule"):
            _fit(scheduled, [cb], 1)


def test_reduce_lr_on_plateau_follows_patience_cooldown_and_min_lr():
    cb = C.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.01)
    model = _model(lr=0.1)
    history = _fit(model, [Scripted([1.0] * 8 + [0.5] * 3), cb], 11)
    # logged: the rate each epoch trained with. Patience 1 reduces after epoch 1; the cooldown then skips one
    # epoch before counting again; min_lr caps the 4th reduction (0.0125 -> 0.01) and stops further ones
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.01, 0.01, 0.01]
    assert model.optimizer.learning_rate == 0.01
    # an improvement resets the wait: no reduction until `patience` epochs without one
    history = _fit(_model(lr=0.1), [Scripted([1.0, 1.0, 0.5, 0.5, 0.5, 0.5]), C.ReduceLROnPlateau(patience=2)], 6)
    assert history.history["learning_rate"] == [0.1] * 5 + [pytest.approx(0.01)]


def test_reduce_lr_on_plateau_min_delta_and_errors():
    model = _model(lr=0.1)
    history = _fit(model, [Scripted([1.0, 0.99995, 0.9999]), C.ReduceLROnPlateau(patience=1, min_delta=1e-4)], 3)
    assert history.history["learning_rate"] == [0.1, 0.1, pytest.approx(0.01)]
    for bad in (1.0, 0.0, -0.5):
        with pytest.raises(ValueError, match=r"factor must be in \(0, 1\)"):
            C.ReduceLROnPlateau(factor=bad)
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        C.ReduceLROnPlateau(mode="up")
