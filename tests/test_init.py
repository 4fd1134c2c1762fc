"""`import fastnn`: it loads only what building and training a model needs; the rest loads on first access."""
import json
import operator
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastnn

REPO_ROOT = Path(__file__).resolve().parent.parent

# Submodules (and what they alone pull in) that `import fastnn` must leave for later.
LAZY = ["fastnn.callbacks", "fastnn.datasets", "fastnn.files", "fastnn.ops", "fastnn.text", "fastnn.unsupervised",
        "fastnn.visualize", "fastnn._safetensors_io", "fastnn._rbm", "fastnn._dbn", "fastnn._gradient_passes",
        "fastnn.fit_loop", "fastnn.layers.conv", "fastnn.layers.pooling", "fastnn.layers.conv_transpose",
        "fastnn.layers.upsampling", "fastnn.layers.normalization", "fastnn.layers.embedding", "fastnn.layers.recurrent",
        "fastnn.layers.bidirectional", "safetensors", "numpy.random", "json", "csv", "gzip", "socket", "tqdm"]
# What the first training step of any model loads: the initializers' generator, and the step planners (which know
# the fused Conv2D + MaxPool2D pairs).
FIRST_STEP = {"numpy.random", "fastnn.layers.pooling", "fastnn.layers.conv"}


def fresh_modules(code):
    """The modules loaded in a new interpreter (run outside the repository, this checkout importable) after `code`,
    minus those loaded before it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    script = textwrap.dedent(f"""
        import json, sys
        before = set(sys.modules)
        {code}
        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT.parent, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_leaves_the_optional_modules_unloaded():
    loaded = fresh_modules("import fastnn")
    assert "fastnn.model" in loaded and "fastnn.layers" in loaded  # the check itself sees what it should
    assert sorted(loaded & set(LAZY)) == []


def test_building_and_training_an_mlp_loads_none_of_them():
    loaded = fresh_modules("""
        import numpy as np, fastnn
        model = fastnn.Sequential([fastnn.layers.Input((4,)), fastnn.layers.Dense(3, activation="relu"),
                                   fastnn.layers.Dense(2, activation="softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.train_on_batch(np.ones((2, 4), np.float32), np.array([0, 1]))
        model.predict(np.ones((2, 4), np.float32))
    """)
    assert sorted(loaded & set(LAZY) - FIRST_STEP) == []


@pytest.mark.parametrize("name", ["callbacks", "datasets", "files", "ops", "unsupervised", "visualize", "text",
                                  "layers.recurrent", "layers.conv_transpose"])
def test_lazy_submodules_load_on_first_access(name):
    loaded = fresh_modules(f"import fastnn; fastnn.{name}")
    assert f"fastnn.{name}" in loaded
    assert operator.attrgetter(name)(fastnn) is sys.modules[f"fastnn.{name}"]


def test_lazy_names_resolve_like_eager_ones():
    from fastnn import load_model, ops  # from-imports go through the module's __getattr__
    from fastnn.files import load_model as defined
    assert load_model is defined and ops is fastnn.ops
    assert fastnn.History is fastnn.callbacks.History
    assert set(fastnn.__all__) <= set(dir(fastnn))
    assert all(hasattr(fastnn, name) for name in fastnn.__all__)


def test_lazy_layers_resolve_like_eager_ones():
    from fastnn.layers import LSTM, MaxPooling2D
    from fastnn.layers.pooling import MaxPool2D
    assert MaxPooling2D is MaxPool2D and LSTM is sys.modules["fastnn.layers.recurrent"].LSTM
    assert set(fastnn.layers.__all__) <= set(dir(fastnn.layers))
    for name in fastnn.layers.__all__:
        assert callable(getattr(fastnn.layers, name)), name
    with pytest.raises(AttributeError, match="no attribute 'Conv3D'"):
        fastnn.layers.Conv3D  # noqa: B018


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        fastnn.nonexistent  # noqa: B018
    assert not hasattr(fastnn, "files_")
