"""fastnn.text: the character vocabulary, windowed datasets, and generation that carries recurrent state."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, text

CORPUS = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


# ---- CharVocabulary ----------------------------------------------------------------------------------------

def test_vocabulary_is_the_sorted_unique_characters():
    vocab = text.CharVocabulary(CORPUS)
    assert vocab.chars == "".join(sorted(set(CORPUS)))
    assert vocab.size == len(vocab) == len(set(CORPUS))
    ids = vocab.encode(CORPUS)
    assert ids.dtype == np.int64 and ids.shape == (len(CORPUS),)
    assert [vocab.chars[i] for i in ids] == list(CORPUS)
    assert vocab.decode(ids) == CORPUS
    assert vocab.decode(ids.astype(np.uint8)) == CORPUS
    assert vocab.decode([]) == "" and vocab.encode("").shape == (0,)
    assert "S" in vocab and "Z" not in vocab and "Sp" not in vocab


def test_vocabulary_beyond_ascii_round_trips():
    sample = "naïve café — 日本語 🙂\n"
    vocab = text.CharVocabulary(sample)
    assert vocab.decode(vocab.encode(sample[::-1])) == sample[::-1]
    assert list(vocab.encode("\n🙂")) == [0, vocab.size - 1]


def test_vocabulary_config_and_file_round_trip(tmp_path):
    vocab = text.CharVocabulary(CORPUS)
    again = text.CharVocabulary.from_config(vocab.get_config())
    assert again == vocab and hash(again) == hash(vocab)
    assert list(again.encode("hear me")) == list(vocab.encode("hear me"))
    vocab.save(tmp_path / "vocab.json")
    assert text.CharVocabulary.load(tmp_path / "vocab.json") == vocab
    assert "size=" in repr(vocab)
    with pytest.raises(ValueError, match="unique characters sorted by code point"):
        text.CharVocabulary.from_config({"chars": "ba"})
    with pytest.raises(ValueError, match="needs 'chars'"):
        text.CharVocabulary.from_config({"characters": "ab"})


def test_vocabulary_errors_name_the_characters_and_positions():
    vocab = text.CharVocabulary("abc")
    with pytest.raises(ValueError, match=r"2 character\(s\) not in the vocabulary of 3: 'x' \(first at position "
                                         r"1\), 'Q' \(first at position 3\)"):
        vocab.encode("axbQ")
    with pytest.raises(ValueError, match=r"id 3 at position 1 is out of range.*\[0, 2\]"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match=r"id -1 at position 0"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="whole-number ids"):
        vocab.decode([0.5])
    with pytest.raises(ValueError, match="1-D sequence"):
        vocab.decode([[0, 1]])
    with pytest.raises(TypeError, match="must be a str"):
        vocab.encode(b"abc")
    with pytest.raises(ValueError, match="non-empty text"):
        text.CharVocabulary("")
    with pytest.raises(TypeError, match="needs a str"):
        text.CharVocabulary(["a", "b"])


# ---- sequence_dataset -----------------------------------------------------------------------------------------

def test_windows_and_next_character_targets():
    ids = np.arange(23)
    x, y = text.sequence_dataset(ids, window=5)
    assert x.shape == y.shape == (4, 5) and x.dtype == y.dtype == np.int64  # (23 - 5 - 1) // 5 + 1
    np.testing.assert_array_equal(x[2], [10, 11, 12, 13, 14])
    np.testing.assert_array_equal(y, x + 1)
    x, y = text.sequence_dataset(ids, window=5, stride=2)
    assert x.shape == (9, 5)
    np.testing.assert_array_equal(x[:, 0], np.arange(0, 18, 2))
    np.testing.assert_array_equal(y, x + 1)
    x, y = text.sequence_dataset(ids, window=4, stride=1, targets="last")
    assert x.shape == (19, 4) and y.shape == (19,)
    np.testing.assert_array_equal(y, x[:, -1] + 1)
    x, y = text.sequence_dataset(ids[:6], window=5)  # exactly one window and its next character
    assert x.shape == (1, 5) and y.tolist() == [[1, 2, 3, 4, 5]]
    assert x.flags.c_contiguous and y.flags.c_contiguous and x.base is not ids


def test_windows_of_encoded_text():
    vocab = text.CharVocabulary(CORPUS)
    x, y = text.sequence_dataset(vocab.encode(CORPUS), window=10)
    assert vocab.decode(x[1]) == CORPUS[10:20] and vocab.decode(y[1]) == CORPUS[11:21]


def test_dataset_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 6"):
        text.sequence_dataset(np.arange(5), window=5)
    with pytest.raises(ValueError, match="window must be >= 1"):
        text.sequence_dataset(np.arange(5), window=0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        text.sequence_dataset(np.arange(5), window=2, stride=0)
    with pytest.raises(ValueError, match="targets must be 'sequence' or 'last'"):
        text.sequence_dataset(np.arange(5), window=2, targets="next")
    with pytest.raises(TypeError, match="must be integers"):
        text.sequence_dataset(np.zeros(5), window=2)
    with pytest.raises(ValueError, match="1-D"):
        text.sequence_dataset(np.zeros((2, 5), np.int64), window=2)
    with pytest.raises(ValueError, match="non-negative, got -1 at position 3"):
        text.sequence_dataset(np.array([0, 1, 2, -1, 3]), window=2)


# ---- generate -------------------------------------------------------------------------------------------------

VOCAB = text.CharVocabulary("abcdefghij .\n")


def char_model(window=8, recurrent=None, one_hot=False, activation="softmax", seed=0):
    """A small random character model: Embedding (or one-hot input) -> recurrent layer(s) -> Dense."""
    fastnn.set_seed(seed)
    stack = [layers.Input((window, VOCAB.size))] if one_hot else [layers.Input((window,)),
                                                                  layers.Embedding(VOCAB.size, 5)]
    stack += recurrent() if recurrent else [layers.LSTM(9, return_sequences=True)]
    model = fastnn.Sequential(stack + [layers.Dense(VOCAB.size, activation=activation)])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def same_network(model, window):
    """The model's layers and weights, for inputs of another length (the whole prefix at once)."""
    twin = fastnn.Sequential([layers.Input((window,) + tuple(model.input_shape[2:]))]
                             + [type(layer).from_config(layer.get_config()) for layer in model.layers])
    twin.set_weights(model.get_weights())
    return twin


def sample_like_generate(p, temperature, rng):
    """The documented rule: draw from softmax(log p / temperature) by inverting its CDF at rng.random()."""
    z = np.log(p.astype(np.float64)) / temperature
    q = np.exp(z - z.max())
    cdf = np.cumsum(q)
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(q) - 1)


def test_same_seed_same_text_other_seeds_other_text():
    model = char_model()
    first = text.generate(model, VOCAB, "abc", 60, seed=5)
    assert len(first) == 60 and set(first) <= set(VOCAB.chars)
    assert text.generate(model, VOCAB, "abc", 60, seed=5) == first
    assert text.generate(model, VOCAB, "abc", 60, seed=6) != first
    fastnn.set_seed(9)
    global_one = text.generate(model, VOCAB, "abc", 40)
    fastnn.set_seed(9)
    assert text.generate(model, VOCAB, "abc", 40) == global_one
    assert text.generate(model, VOCAB, "abc", 0, seed=1) == ""


RECURRENT = {
    "lstm": lambda: [layers.LSTM(9, return_sequences=True)],
    "gru": lambda: [layers.GRU(7, return_sequences=True)],
    "simple_rnn": lambda: [layers.SimpleRNN(6, return_sequences=True)],
    "stacked": lambda: [layers.LSTM(8, return_sequences=True), layers.GRU(6, return_sequences=True)],
}


@pytest.mark.parametrize("kind", sorted(RECURRENT))
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_reusing_the_state_equals_rerunning_the_whole_prefix(kind, temperature):
    """Each generated character is what sampling the whole-prefix distribution with the same draws gives,
    and the distributions after feeding one character at a time match the whole-prefix run."""
    model = char_model(recurrent=RECURRENT[kind])
    prompt, length, seed = "ab cd", 25, 3
    generated = text.generate(model, VOCAB, prompt, length, temperature=temperature, seed=seed)
    full = prompt + generated
    twin = same_network(model, len(full) - 1)
    probs = twin.predict(VOCAB.encode(full[:-1])[None])[0]  # (positions, vocab): after each prefix
    with text._Stream(model, VOCAB) as stream:
        stepwise = [stream.feed(VOCAB.encode(prompt))]
        stepwise += [stream.feed(VOCAB.encode(ch)) for ch in generated[:-1]]
    np.testing.assert_allclose(np.array(stepwise), probs[len(prompt) - 1:], rtol=1e-5, atol=1e-7)
    rng = np.random.default_rng(seed)
    redrawn = [sample_like_generate(probs[len(prompt) - 1 + k], temperature, rng) for k in range(length)]
    assert VOCAB.decode(redrawn) == generated


def test_model_ending_with_the_last_state_only():
    """A recurrent layer with return_sequences=False: the output (batch, vocab) is the next character's."""
    model = char_model(recurrent=lambda: [layers.LSTM(9)])
    prompt = "hij."
    with text._Stream(model, VOCAB) as stream:
        stepwise = [stream.feed(VOCAB.encode(prompt[:1]))] + [stream.feed(VOCAB.encode(ch)) for ch in prompt[1:]]
    for k in range(1, len(prompt) + 1):
        whole = same_network(model, k).predict(VOCAB.encode(prompt[:k])[None])[0]
        np.testing.assert_allclose(stepwise[k - 1], whole, rtol=1e-5, atol=1e-7)
    assert len(text.generate(model, VOCAB, prompt, 10, seed=0)) == 10


def test_one_hot_input_and_logit_output_models():
    model = char_model(one_hot=True)
    assert text.generate(model, VOCAB, "abc", 20, seed=2) == text.generate(model, VOCAB, "abc", 20, seed=2)
    logits = char_model(activation=None)
    logits.compile("adam", fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    probabilities = char_model()  # the same weights (same seed), with the softmax inside the model
    assert text.generate(logits, VOCAB, "abc", 30, seed=4) == text.generate(probabilities, VOCAB, "abc", 30, seed=4)


def test_low_temperature_picks_the_most_likely_character():
    model = char_model()
    generated = text.generate(model, VOCAB, "a", 12, temperature=1e-6, seed=0)
    twin = same_network(model, len(generated))
    probs = twin.predict(VOCAB.encode("a" + generated[:-1])[None])[0]
    chosen = probs[np.arange(len(generated)), VOCAB.encode(generated)]
    # the most likely character, or one within float rounding of it (a random model has near-ties)
    np.testing.assert_array_less(probs.max(axis=-1) * (1 - 1e-5), chosen)


def test_flags_states_and_predictions_are_restored():
    model = char_model()
    x = np.random.default_rng(0).integers(0, VOCAB.size, (3, 8))
    before = model.predict(x).copy()
    text.generate(model, VOCAB, "abc", 10, seed=0)
    lstm = model.layers[1]
    assert lstm.stateful is False and lstm.states is None
    np.testing.assert_array_equal(model.predict(x), before)
    model.train_on_batch(x, x)  # training still works after the T=1 steps

    stateful = char_model(recurrent=lambda: [layers.LSTM(9, return_sequences=True, stateful=True)])
    stateful.predict(x[:2], batch_size=2)
    carried = [s.copy() for s in stateful.layers[1].states]
    assert all(s.shape == (2, 9) and s.any() for s in carried)
    text.generate(stateful, VOCAB, "abc", 10, seed=0)
    assert stateful.layers[1].stateful is True
    for s, saved in zip(stateful.layers[1].states, carried):
        np.testing.assert_array_equal(s, saved)
    stateful.predict(x[:2], batch_size=2)  # the next batch continues from the carried states


def test_generate_rejects_bad_input():
    model = char_model()
    for temperature in (0, -1.0):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            text.generate(model, VOCAB, "abc", 5, temperature=temperature)
    with pytest.raises(ValueError, match="temperature must be finite"):
        text.generate(model, VOCAB, "abc", 5, temperature=float("nan"))
    with pytest.raises(ValueError, match=r"seed_text has 2 character\(s\) not in the vocabulary.*'X' \(first at "
                                         r"position 1\), 'Y'"):
        text.generate(model, VOCAB, "aXcY", 5)
    with pytest.raises(ValueError, match="seed_text is empty"):
        text.generate(model, VOCAB, "", 5)
    with pytest.raises(ValueError, match="length must be >= 0"):
        text.generate(model, VOCAB, "abc", -1)
    with pytest.raises(TypeError, match="vocab must be a CharVocabulary"):
        text.generate(model, VOCAB.chars, "abc", 5)
    with pytest.raises(TypeError, match="fastnn Sequential"):
        text.generate(object(), VOCAB, "abc", 5)
    feedforward = fastnn.Sequential([layers.Input((8,)), layers.Embedding(VOCAB.size, 4), layers.Flatten(),
                                     layers.Dense(VOCAB.size, activation="softmax")])
    with pytest.raises(ValueError, match="needs a model with a recurrent layer.*Embedding, Flatten, Dense"):
        text.generate(feedforward, VOCAB, "abc", 5)
    wrong_size = fastnn.Sequential([layers.Input((8,)), layers.Embedding(VOCAB.size, 4), layers.LSTM(5),
                                    layers.Dense(VOCAB.size + 1, activation="softmax")])
    with pytest.raises(ValueError, match=rf"distribution over the {VOCAB.size} characters.*\(None, 14\)"):
        text.generate(wrong_size, VOCAB, "abc", 5)
    with pytest.raises(ValueError, match="end it with a softmax.*activation 'linear'"):
        text.generate(char_model(activation=None), VOCAB, "abc", 5)
    with pytest.raises(ValueError, match="end it with a softmax.*activation 'relu'"):
        text.generate(char_model(activation="relu"), VOCAB, "abc", 5)


def test_module_example_runs():
    import doctest
    assert doctest.testmod(text, optionflags=doctest.ELLIPSIS).failed == 0


def test_small_char_model_learns_shakespeare(shared_data_file):
    """A fixed slice of the corpus, a few seconds of training: the next-character loss falls well below
    chance (log 58 = 4.06 nats) and below what character frequencies alone give (about 3.3 nats)."""
    corpus = shared_data_file("tinyshakespeare/input.txt").read_text(encoding="utf-8")[:30000]
    vocab = text.CharVocabulary(corpus)
    ids = vocab.encode(corpus)
    x, y = text.sequence_dataset(ids[:27000], 50, stride=10)
    x_val, y_val = text.sequence_dataset(ids[27000:], 50)
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input((50,)), layers.Embedding(vocab.size, 16),
                               layers.LSTM(96, return_sequences=True),
                               layers.Dense(vocab.size, activation="softmax")])
    model.compile(fastnn.optimizers.Adam(1e-2, global_clipnorm=5.0), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=4, verbose=0, validation_data=(x_val, y_val))
    val_loss = history.history["val_loss"]
    assert val_loss[-1] < 2.1 and val_loss[-1] < val_loss[0], val_loss
    assert history.history["val_accuracy"][-1] > 0.38, history.history
    sample = text.generate(model, vocab, "ROMEO:\n", 200, temperature=0.5, seed=0)
    assert len(sample) == 200 and " " in sample
