"""Thread control: set/get_num_threads, the environment, FASTNN_ISA, threadpoolctl, and fork safety.

Whatever reads the environment at import runs in a fresh interpreter (`run_python`), with a timeout, and with
FASTNN_* / OMP_* cleared except what the test sets, so the settings of the pytest process leak into none of them.
"""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn

TIMEOUT = 120  # seconds; only a hang comes near it


def run_python(code, **env):
    """Run `code` in a new interpreter in its own process group; kill the whole group (forked grandchildren
    included) on timeout, so a hang fails the test instead of blocking it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FASTNN_", "OMP_", "GOMP_"))}
    clean.update(env)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=clean, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {TIMEOUT} s (hang?)\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err


def threads_in_fresh_interpreter(**env):
    rc, out, err = run_python("import fastnn; print(fastnn.get_num_threads())", **env)
    assert rc == 0, err
    return int(out)


@pytest.fixture
def restore_threads():
    old = fastnn.get_num_threads()
    yield old
    fastnn.set_num_threads(old)


# ---- set/get_num_threads -----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, np.int64(2)])
def test_set_get_round_trip(restore_threads, n):
    fastnn.set_num_threads(n)
    assert fastnn.get_num_threads() == int(n)
    assert fastnn.cpu_info()["threads"] == int(n)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError),
                                        (None, TypeError), (True, TypeError)])
def test_set_num_threads_rejects_bad_values(restore_threads, bad, error):
    with pytest.raises(error, match="positive integer"):
        fastnn.set_num_threads(bad)
    assert fastnn.get_num_threads() == restore_threads


# ---- environment -------------------------------------------------------------------------------------
def test_default_is_all_cores():
    assert threads_in_fresh_interpreter() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("var", ["FASTNN_NUM_THREADS", "OMP_NUM_THREADS"])
@pytest.mark.parametrize("n", [1, 3])
def test_environment_sets_threads(var, n):
    assert threads_in_fresh_interpreter(**{var: str(n)}) == n


def test_fastnn_num_threads_wins_over_omp_num_threads():
    assert threads_in_fresh_interpreter(FASTNN_NUM_THREADS="1", OMP_NUM_THREADS="3") == 1


@pytest.mark.parametrize("bad", ["0", "-1", "1.5", "two"])
def test_bad_fastnn_num_threads_is_a_clear_error(bad):
    rc, _, err = run_python("import fastnn", FASTNN_NUM_THREADS=bad)
    assert rc == 1
    assert "FASTNN_NUM_THREADS must be a positive integer" in err and repr(bad) in err


# ---- FASTNN_ISA --------------------------------------------------------------------------------------
@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_fastnn_isa_is_honoured_or_refused(isa):
    rc, out, err = run_python("import fastnn; print(fastnn.cpu_info()['isa'])", FASTNN_ISA=isa)
    if isa in fastnn.cpu_info()["isa_available"]:
        assert rc == 0, err
        assert out.strip() == isa
    else:
        assert rc == 1, err  # a Python exception, not a signal
        assert f"FASTNN_ISA={isa!r}" in err and "does not support" in err


def test_unknown_fastnn_isa_is_a_clear_error():
    rc, _, err = run_python("import fastnn", FASTNN_ISA="sse9")
    assert rc == 1
    assert "FASTNN_ISA='sse9' is not known" in err and "generic, avx2, avx512" in err


# ---- threadpoolctl -----------------------------------------------------------------------------------
def test_threadpoolctl_sees_fastnn_openmp():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    openmp = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"]
    assert openmp, "threadpoolctl finds no OpenMP runtime"
    assert any(p["num_threads"] == fastnn.get_num_threads() for p in openmp)


def test_threadpoolctl_limits_fastnn(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    fastnn.set_num_threads(2)
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastnn.get_num_threads() == 1
    assert fastnn.get_num_threads() == 2


# ---- fork safety -------------------------------------------------------------------------------------
# Each scenario runs a kernel large enough to use both threads in the parent, forks, and runs it again in the
# child (and in the parent afterwards). GNU libgomp's pool hangs such a child unless fastnn releases it before
# fork (fastnn/_threads.py); the timeout of run_python turns a hang into a failure.
KERNELS = {
    "matmul": """
        import fastnn.ops
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((2, 384, 384), dtype=np.float32)
        def kernel():
            np.testing.assert_allclose(fastnn.ops.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)
        """,
    "predict": """
        L = fastnn.layers
        fastnn.set_seed(0)
        model = fastnn.Sequential([L.Input((256,)), L.Dense(512, activation="relu"), L.Dense(10)])
        x = np.random.default_rng(0).standard_normal((256, 256), dtype=np.float32)
        expected = model.predict(x)
        def kernel():
            np.testing.assert_array_equal(model.predict(x), expected)
        """,
}
FORKS = {
    "os.fork": """
        pid = os.fork()
        if pid == 0:
            try:
                assert fastnn.get_num_threads() == 2
                kernel()
            except BaseException as exc:
                print(repr(exc), file=sys.stderr, flush=True)
                os._exit(1)
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0, "child failed"
        """,
    "multiprocessing": """
        import multiprocessing
        def child(_):
            kernel()
            return fastnn.get_num_threads()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            assert pool.map(child, range(4)) == [2] * 4
        """,
}


@pytest.mark.parametrize("fork", FORKS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_child_process_can_use_the_kernels_after_fork(kernel, fork):
    code = ("import os, sys\nimport numpy as np\nimport fastnn\n" + textwrap.dedent(KERNELS[kernel])
            + "kernel()\n" + textwrap.dedent(FORKS[fork]) + "kernel()\nprint('ok')\n")
    rc, out, err = run_python(code, FASTNN_NUM_THREADS="2")
    assert rc == 0 and out.strip() == "ok", err


# ---- one thread under contention ---------------------------------------------------------------------
def _fake_loadavg(running):
    import io
    return lambda path, mode="r": io.BytesIO(f"1.00 1.00 1.00 {running}/300 4242\n".encode())


@pytest.mark.parametrize("running, adaptive, expected", [(1, True, False), (64, True, True), (64, False, False)])
def test_contended_reads_runnable_tasks(monkeypatch, running, adaptive, expected):
    from fastnn import _threads
    monkeypatch.setattr(_threads, "open", _fake_loadavg(running), raising=False)
    monkeypatch.setattr(_threads, "_ADAPTIVE", adaptive)
    monkeypatch.setattr(_threads, "_contention", [float("-inf"), False])
    assert _threads.contended() is expected


def test_adaptive_threads_can_be_turned_off_from_the_environment():
    rc, out, err = run_python("from fastnn import _threads; print(_threads._ADAPTIVE)", FASTNN_ADAPTIVE_THREADS="0")
    assert rc == 0, err
    assert out.strip() == "False"


# ---- the thread count of a training step -------------------------------------------------------------------
def _threads_seen_by_steps(model, batch, monkeypatch):
    """The thread counts the layers' backward passes saw during one train_on_batch on `batch` samples."""
    from fastnn import _kernels

    seen = []
    for layer in model.layers:
        backward = layer.backward
        monkeypatch.setattr(layer, "backward", lambda *a, _b=backward, **k: seen.append(
            _kernels.omp_max_threads()) or _b(*a, **k))
    x = np.random.default_rng(0).standard_normal((batch,) + model.input_shape[1:], dtype=np.float32)
    model.train_on_batch(x, np.zeros(batch, np.int64))
    return set(seen)


@pytest.mark.parametrize("batch, threads", [(1, 1), (64, 2)])
def test_a_step_whose_largest_call_is_small_runs_on_one_thread(restore_threads, monkeypatch, batch, threads):
    from fastnn import _threads, layers as L, training

    fastnn.set_num_threads(2)
    model = fastnn.Sequential([L.Input((6, 6, 2)), L.Conv2D(8, 3, activation="relu"), L.Flatten(), L.Dense(3)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    # the largest call: the convolution, 36 input positions x (3 x 3 x 2 x 8 + 8) parameters
    assert model._arena.call_work == 36 * 152
    monkeypatch.setattr(training, "SERIAL_STEP_WORK", 32 * 36 * 152)
    with _threads.exact_threads():
        assert _threads_seen_by_steps(model, batch, monkeypatch) == {threads}
    assert fastnn.get_num_threads() == 2
