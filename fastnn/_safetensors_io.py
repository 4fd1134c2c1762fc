"""Checked reading and atomic writing of safetensors files (the container of fastnn's model files).

Reading validates the whole header before any tensor byte is used: an 8-byte little-endian length within a fixed
bound, strict UTF-8 JSON (no NaN, no duplicate keys, bounded nesting), float32 tensors whose shapes match their byte
spans, and offsets that tile the data exactly, without gaps, overlaps or bytes past the end. Only then are the
bytes handed to the safetensors package. Problems raise `Invalid` with a message saying what is wrong.
"""
import contextlib
import json
import math
import os
import re
import secrets
import socket

import safetensors.numpy

MAX_HEADER_BYTES = 16 * 2**20   # fastnn headers are a few KB; this bounds what a hostile file can make us parse
MAX_JSON_DEPTH = 32
MAX_NDIM = 8
_FLOAT32_BYTES = 4


class Invalid(Exception):
    """A problem found inside the file; turned into a ModelFileError naming the file at the public boundary."""


@contextlib.contextmanager
def wrapped(what):
    """Report any error raised while `what` runs on data from the file as a problem of the file."""
    try:
        yield
    except Invalid:
        raise
    except Exception as exc:  # constructors fed untrusted values may raise anything; all of it is a bad file
        detail = str(exc)
        detail = detail if len(detail) <= 300 else detail[:300] + "..."
        raise Invalid(f"{what}: {type(exc).__name__}: {detail}") from exc


def short(value, limit=200):
    """repr(value), cut to `limit` characters: messages quote values from files that may be huge."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ---- reading ---------------------------------------------------------------------------------------------------
def is_int(value):
    return type(value) is int  # not bool, not float


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed")


def _unique_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {short(key)}")
        result[key] = value
    return result


def parse_json(raw, what):
    """Strict JSON (no NaN/Infinity, no duplicate keys, bounded nesting) from bytes or str."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise Invalid(f"{what} is nested too deeply") from None
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise Invalid(f"{what} is not valid UTF-8 JSON: {exc}") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise Invalid(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return value


def _tensor_table(header, data_len):
    """Check each tensor entry and that the tensors tile the data exactly; return name -> shape."""
    table = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise Invalid(f"tensor {short(name)}: entry must have exactly dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype != "F32":
            raise Invalid(f"tensor {short(name)} has dtype {short(dtype)}; fastnn files hold float32 (F32) "
                          f"tensors only")
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(is_int(d) and 0 <= d < 2**63 for d in shape)):
            raise Invalid(f"tensor {short(name)} has shape {short(shape)}; expected a list of at most {MAX_NDIM} "
                          f"non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(is_int(o) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise Invalid(f"tensor {short(name)} has data_offsets {short(offsets)}; expected [begin, end] with "
                          f"0 <= begin <= end")
        needed = math.prod(shape) * _FLOAT32_BYTES
        if offsets[1] - offsets[0] != needed:
            raise Invalid(f"tensor {short(name)} of shape {short(shape)} needs {needed} bytes but its "
                          f"data_offsets {short(offsets)} span {offsets[1] - offsets[0]}")
        table[name] = (tuple(shape), offsets[0], offsets[1])
    position = 0
    for name, (_, begin, end) in sorted(table.items(), key=lambda item: item[1][1:]):
        if begin != position:
            raise Invalid(f"tensor {short(name)} starts at data byte {begin}, expected {position}: tensors must be "
                          f"contiguous and must not overlap")
        position = end
    if position != data_len:
        raise Invalid(f"the tensors cover {position} bytes but the file holds {data_len} bytes of tensor data")
    return {name: shape for name, (shape, _, _) in table.items()}


def read_container(path):
    """The file's metadata (dict of str), tensor shapes and tensors, after checking the whole header."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise Invalid(f"only {len(prefix)} bytes long: too short to be a safetensors file (is it truncated?)")
        n = int.from_bytes(prefix, "little")
        if n > MAX_HEADER_BYTES:
            raise Invalid(f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit: not a fastnn model "
                          f"file, or a corrupted one")
        if n > size - 8:
            raise Invalid(f"header length {n} runs past the end of the {size}-byte file (is it truncated?)")
        raw_header = f.read(n)
        header = parse_json(raw_header, "safetensors header")
        if not isinstance(header, dict):
            raise Invalid("safetensors header is not a JSON object")
        metadata = header.get("__metadata__", {})
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise Invalid("safetensors __metadata__ must map strings to strings")
        shapes = _tensor_table(header, size - 8 - n)
        rest = f.read()
    if len(rest) != size - 8 - n:
        raise Invalid("the file changed while it was being read")
    with wrapped("safetensors rejected the file"):
        tensors = safetensors.numpy.load(prefix + raw_header + rest)
    if set(tensors) != set(shapes):
        raise Invalid("safetensors read a different set of tensors than the header lists")
    return metadata, shapes, tensors


# ---- writing ---------------------------------------------------------------------------------------------------
def _temp_pattern(base):
    return re.compile(re.escape(f".{base}.") + r"(.+)\.([0-9]+)\.[0-9a-f]{16}\.tmp")


def _remove_stale_temps(folder, base):
    """Remove temporary files left by saves to this path from processes on this host that died mid-write."""
    if os.name != "posix":
        return
    pattern, host = _temp_pattern(base), socket.gethostname()
    for entry in os.listdir(folder):
        match = pattern.fullmatch(entry)
        if match is None or match.group(1) != host or int(match.group(2)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(2)), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, entry))
        except (OSError, OverflowError):
            pass  # alive under another user, or not a pid we can ask about: leave it


def write_atomically(path, payload):
    """Write to a temporary file in the same folder, flush and fsync it, then rename it over `path`: a save that
    is interrupted leaves the previous file intact."""
    path = os.fsdecode(path)
    folder, base = os.path.split(os.path.abspath(path))
    while True:
        temp = os.path.join(folder, f".{base}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        try:  # mode 0o666 lets the umask decide, as for any new file
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if os.name == "posix":  # make the rename itself durable
        with contextlib.suppress(OSError):
            folder_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(folder_fd)
            finally:
                os.close(folder_fd)
    _remove_stale_temps(folder, base)
