"""Peak memory of training steps, for fastnn or PyTorch, each measured in a fresh process.

Method: a new Python process imports the engine, creates the batch (and, for PyTorch, its NCHW copy), then
records its resident set size (RSS, /proc/self/statm). It then builds the model (parameters, gradients,
optimizer state) and runs `steps` training steps while a thread samples the RSS every millisecond. The result is
the growth of the peak over the RSS before the model was built: the larger of the sampled peak's growth and the
growth of ``getrusage().ru_maxrss`` (the kernel's high-water mark, which sees peaks between samples but not
those below the high-water mark left by the imports). It counts everything a training run of that batch needs
beyond the engine and the data: weights, gradients, optimizer state, activations, workspaces and allocator
slack. Linux only (it reads /proc).

Usage: ``python -m fastnn.benchmarks.memory [--engine fastnn|torch] [--workload cnn32] [--batch 256]``; from
Python, `measure` runs that command in a new process and returns its result.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class _Sampler(threading.Thread):
    """Samples the RSS every `interval` seconds until stopped; `peak` is the largest sample."""

    def __init__(self, interval=0.001):
        super().__init__(daemon=True)
        self.interval, self.peak, self._done = interval, _rss_bytes(), threading.Event()

    def run(self):
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def stop(self):
        self._done.set()
        self.join()
        self.peak = max(self.peak, _rss_bytes())


def _train_step(engine, name, x, y, threads):
    """A callable building the model on first use (so that is measured too) and running one train step."""
    from . import peers, workloads

    if engine == "fastnn":
        import fastnn

        fastnn.set_num_threads(threads)
        state = {}

        def step():
            if "cell" not in state:
                state["cell"] = workloads.fastnn_cell(workloads.build_model(name), x, y)
            return state["cell"].train_step()
        return step
    # The weights come from a fastnn model built before the baseline, so fastnn's memory is not counted.
    weights = workloads.build_model(name).get_weights()
    peers._import("torch").set_num_threads(threads)
    state = {}

    def step():
        if "cell" not in state:
            state["cell"] = peers.torch_cell(name, weights, x, y, threads)
        return state["cell"].train_step()
    return step


def measure_here(engine, name, batch, steps, threads):
    """Peak memory growth of building workload `name` and `steps` train steps in this process (see module)."""
    from . import workloads

    x, y = workloads.make_batch(name, batch)
    step = _train_step(engine, name, x, y, threads)
    before_rss, before_max = _rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sampler = _Sampler()
    sampler.start()
    for _ in range(steps):
        step()
    sampler.stop()
    after_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    growth = max(sampler.peak - before_rss, after_max - max(before_max, before_rss))
    return {"engine": engine, "workload": name, "batch": batch, "steps": steps, "threads": threads,
            "rss_before_mb": before_rss / 2**20, "sampled_peak_growth_mb": (sampler.peak - before_rss) / 2**20,
            "maxrss_growth_mb": (after_max - before_max) / 2**20, "peak_growth_mb": growth / 2**20}


def measure(engine="fastnn", name="cnn32", batch=256, steps=3, threads=2, python=None, timeout=600):
    """`measure_here` in a new process of `python` (default: this interpreter); returns its result dict."""
    command = [python or sys.executable, "-m", "fastnn.benchmarks.memory", "--engine", engine, "--workload", name,
               "--batch", str(batch), "--steps", str(steps), "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("fastnn", "torch"), default="fastnn")
    parser.add_argument("--workload", default="cnn32")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(measure_here(args.engine, args.workload, args.batch, args.steps, args.threads)))


if __name__ == "__main__":
    main()
