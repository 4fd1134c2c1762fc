"""What `import fastnn` costs: fastnn's own share of ``python -X importtime -c "import fastnn"``.

Each run is a fresh interpreter; the trees given (checkouts of fastnn, built in place; default: this one) take
turns, run after run. Reported per tree: the medians of fastnn's cumulative import time, of numpy's (which
fastnn imports first thing) and of fastnn's own share (fastnn minus numpy, the median of per-run differences).
``--bytecode`` lets Python cache compiled modules (a per-tree cache folder, warmed first); without it the
environment decides (PYTHONDONTWRITEBYTECODE=1 compiles every module on every import). Run::

    python bench/import_time.py [--runs 11] [--bytecode] [TREE ...]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_times(tree, cache):
    """(fastnn, numpy) cumulative import times in ms of one fresh `import fastnn` from `tree`."""
    env = dict(os.environ, PYTHONPATH=tree)
    if cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import fastnn"], env=env,
                            cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True)
    cumulative = {}
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            _, total, name = line[len("import time:"):].split("|")
            cumulative.setdefault(name.strip(), int(total) / 1e3)
    return cumulative["fastnn"], cumulative.get("numpy", 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", default=[HERE])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--bytecode", action="store_true", help="with bytecode caches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as caches:
        cache = {tree: os.path.join(caches, str(i)) if args.bytecode else None for i, tree in enumerate(args.trees)}
        for tree in args.trees:
            import_times(tree, cache[tree])  # warms the page cache (and the bytecode cache)
        runs = {tree: [] for tree in args.trees}
        for _ in range(args.runs):
            for tree in args.trees:
                runs[tree].append(import_times(tree, cache[tree]))
    print(f"{'with' if args.bytecode else 'without'} bytecode caches, medians of {args.runs} runs (ms)")
    for tree, times in runs.items():
        own = statistics.median(f - n for f, n in times)
        print(f"{tree}: fastnn {statistics.median(f for f, _ in times):.1f}, numpy "
              f"{statistics.median(n for _, n in times):.1f}, fastnn's own {own:.1f}")


if __name__ == "__main__":
    main()
