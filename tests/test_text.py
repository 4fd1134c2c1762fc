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
