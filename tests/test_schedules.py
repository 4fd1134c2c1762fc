"""Learning-rate schedules: Keras 3's formulas at and around their boundaries, bad input, serialization, and how
optimizers evaluate them (at `iterations`, before each step)."""
import math

import numpy as np
import pytest

from fastnn import optimizers as O, schedules as S


def test_constant():
    assert [S.Constant(0.3)(s) for s in (0, 1, 10**9)] == [0.3, 0.3, 0.3]


def test_piecewise_constant_switches_after_each_boundary():
    s = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    steps = [0, 9, 10, 11, 20, 21, 10**6]
    assert [s(t) for t in steps] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.1, 0.1]  # step <= boundary keeps the earlier value
    assert S.PiecewiseConstantDecay([], [0.2])(5) == 0.2


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    s = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=staircase)
    for step in (0, 1, 9, 10, 11, 25, 1000):
        p = step // 10 if staircase else step / 10
        assert s(step) == pytest.approx(0.1 * 0.5 ** p, rel=1e-15)
    assert s(10) == pytest.approx(0.05)
    assert s(9) == 0.1 if staircase else 0.05 < s(9) < 0.1  # the staircase holds until the boundary


def test_cosine_decay_without_warmup():
    s = S.CosineDecay(0.2, decay_steps=100, alpha=0.1)
    assert s(0) == pytest.approx(0.2)
    assert s(50) == pytest.approx(0.2 * (0.9 * 0.5 + 0.1))
    assert s(100) == pytest.approx(0.02) and s(1000) == pytest.approx(0.02)  # held at alpha * initial
    step = 37
    assert s(step) == pytest.approx(0.2 * (0.9 * 0.5 * (1 + math.cos(math.pi * step / 100)) + 0.1), rel=1e-15)


def test_cosine_decay_with_linear_warmup():
    s = S.CosineDecay(0.0, decay_steps=100, warmup_target=0.1, warmup_steps=10)
    assert [s(t) for t in (0, 5, 9)] == pytest.approx([0.0, 0.05, 0.09])
    assert s(10) == pytest.approx(0.1)  # warm-up ends: the cosine starts from warmup_target
    assert s(60) == pytest.approx(0.05)
    assert s(110) == pytest.approx(0.0, abs=1e-18) and s(500) == pytest.approx(0.0, abs=1e-18)
    assert S.CosineDecay(0.5, 10, warmup_target=1.0, warmup_steps=0)(0) == 1.0  # no warm-up steps: decay at once


@pytest.mark.parametrize("make, error, match", [
    (lambda: S.Constant(-0.1), ValueError, "learning_rate must be >= 0"),
    (lambda: S.ExponentialDecay(0.1, 0, 0.5), ValueError, "decay_steps must be > 0"),
    (lambda: S.ExponentialDecay(0.1, 10, 0.0), ValueError, "decay_rate must be > 0"),
    (lambda: S.ExponentialDecay(float("nan"), 10, 0.5), ValueError, "initial_learning_rate must be finite"),
    (lambda: S.ExponentialDecay(0.1, "10", 0.5), TypeError, "decay_steps"),
    (lambda: S.PiecewiseConstantDecay([10, 20], [0.1, 0.2]), ValueError, "one more entry than boundaries"),
    (lambda: S.PiecewiseConstantDecay([20, 10], [0.1, 0.2, 0.3]), ValueError, "strictly increasing"),
    (lambda: S.PiecewiseConstantDecay([10], [0.1, -0.2]), ValueError, r"values\[1\] must be >= 0"),
    (lambda: S.CosineDecay(0.1, 100, alpha=1.5), ValueError, "alpha must be <= 1"),
    (lambda: S.CosineDecay(0.1, 100, warmup_target=-1.0), ValueError, "warmup_target"),
    (lambda: S.CosineDecay(0.1, 100, warmup_steps=-5), ValueError, "warmup_steps must be >= 0"),
])
def test_bad_arguments_are_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


SCHEDULES = [S.Constant(0.01), S.PiecewiseConstantDecay([3, 7], [0.1, 0.05, 0.01]),
             S.ExponentialDecay(0.1, 4, 0.8, staircase=True),
             S.CosineDecay(0.0, 20, alpha=0.05, warmup_target=0.1, warmup_steps=5)]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_serialize_round_trip(schedule):
    again = S.deserialize(S.serialize(schedule))
    assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
    assert [again(t) for t in range(30)] == [schedule(t) for t in range(30)]


def test_deserialize_accepts_only_fastnn_classes():
    with pytest.raises(ValueError, match="unknown schedule class 'LambdaSchedule'"):
        S.deserialize({"class_name": "LambdaSchedule", "config": {}})
    with pytest.raises(ValueError, match="invalid config for CosineDecay"):
        S.deserialize({"class_name": "CosineDecay", "config": {"initial_learning_rate": 0.1}})
    with pytest.raises(ValueError, match="'class_name' and 'config'"):
        S.deserialize(["ExponentialDecay"])
    with pytest.raises(TypeError, match="only fastnn's own schedules"):
        S.serialize(lambda step: 0.1)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_optimizer_evaluates_the_schedule_at_iterations_before_each_step(schedule):
    """Plain SGD moves each weight by -lr * g: with g = 1 the step sizes are the schedule's values."""
    opt = O.SGD(learning_rate=schedule)
    p = np.zeros(4, np.float32)
    for step in range(12):
        assert opt.learning_rate == schedule(step)
        before = p.copy()
        opt.apply(p, np.ones(4, np.float32))
        np.testing.assert_allclose(before - p, np.float32(schedule(step)), rtol=1e-6, atol=1e-12)
    assert opt.iterations == 12


def test_setting_a_float_replaces_the_schedule_and_back():
    opt = O.Adam(learning_rate=S.ExponentialDecay(0.1, 1, 0.5))
    opt.iterations = 3
    assert opt.learning_rate == pytest.approx(0.0125)
    opt.learning_rate = 0.002
    assert opt.learning_rate == 0.002 and opt.get_config()["learning_rate"] == 0.002
    opt.learning_rate = S.Constant(0.3)
    assert opt.learning_rate == 0.3
    assert O.deserialize(O.serialize(opt)).learning_rate == 0.3


@pytest.mark.parametrize("bad, match", [(float("nan"), "returned nan at step 3"), (-0.5, "returned -0.5 at step 3"),
                                        (float("inf"), "returned inf at step 3")])
def test_a_schedule_returning_a_bad_rate_is_an_error_naming_the_step(bad, match):
    opt = O.Adagrad(learning_rate=lambda step: 0.1 if step < 3 else bad)
    p, g = np.zeros(3, np.float32), np.ones(3, np.float32)
    for _ in range(3):
        opt.apply(p, g)
    kept = p.copy()
    with pytest.raises(ValueError, match=match):
        opt.apply(p, g)
    assert np.array_equal(p, kept) and opt.iterations == 3  # the failed step changed nothing


def test_a_schedule_returning_a_non_number_is_a_type_error():
    with pytest.raises(TypeError, match="returned 'fast' at step 0"):
        O.SGD(learning_rate=lambda step: "fast").apply(np.zeros(2, np.float32), np.zeros(2, np.float32))


def test_a_zero_rate_from_a_schedule_is_a_no_op_step():
    opt = O.Adam(learning_rate=S.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=2))
    p = np.ones(5, np.float32)
    opt.apply(p, np.ones(5, np.float32))
    assert np.array_equal(p, np.ones(5, np.float32)) and opt.iterations == 1
    opt.apply(p, np.ones(5, np.float32))
    assert (p < 1).all()
