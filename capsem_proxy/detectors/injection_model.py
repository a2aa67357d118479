"""The learned part of the injection detector: a linear model over hashed character n-grams.

Why this model: it reads every language the same way (character 3- to 5-grams of the normalised
words, so "ignorez les instructions" and "игнорируй инструкции" are features like any English
phrase), it is small (one signed byte per hash bucket: 2 x 256 KiB), it needs no download, and
scoring a 2 KB prompt is a few vector operations (hashing, a gather, a cumulative sum) taking a
fraction of a millisecond on one CPU core.

Two weight vectors share the features: `prompts` (text a caller wrote) and `documents` (tool
results, fetched pages, e-mails: indirect injection, instructions addressed to an assistant inside
data), each with its own bias, scale and threshold. A long text is scored over windows (the
strongest one counts), so an instruction planted in a long document is not diluted by the rest.

A model may also carry a hidden layer (`HiddenLayer`: a few ReLU units over the same n-grams, hashed
into fewer buckets) whose logit is averaged with the linear one's, in the window the linear model
scores highest. The shipped models have none (scripts/train_injection_model.py, HIDDEN_UNITS: for
documents it found more planted instructions held out by source, and flagged more look-alikes;
eval/README.md).

The weights are built by `scripts/train_injection_model.py` from public corpora, reproducibly (the
same bytes on every run); `capsem_proxy/detectors/data/injection_model.bin` is its output. File
layout: magic `CAPSEMIM`, a little-endian u32 header length, a JSON header (bucket bits, n-gram
sizes, window, per-model bias/scale/threshold and hidden layer), then the int8 weights of each
model in order, then the int8 table of each hidden layer in the same order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MODEL_FILE", "HiddenLayer", "InjectionModel", "LinearWeights", "hashed_ngrams", "load_model", "write_model"]

MAGIC = b"CAPSEMIM"
MODEL_FILE = "injection_model.bin"
DEFAULT_BITS = 18
DEFAULT_NGRAMS = (3, 4, 5)
DEFAULT_WINDOW = 1024
# Fixed odd 64-bit multipliers: one per position inside an n-gram, one per n-gram size.
_POSITION_KEYS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD],
    dtype=np.uint64,
)
_SIZE_KEYS = {n: np.uint64((0x94D049BB133111EB * (n + 1)) % (1 << 64) | 1) for n in range(1, 8)}
_MIX = np.uint64(0xBF58476D1CE4E5B9)
# `* _MIX * size key` as one multiplication (the product taken modulo 2**64 is the same).
_MIX_BY_SIZE = {n: np.uint64((0xBF58476D1CE4E5B9 * int(key)) % (1 << 64)) for n, key in _SIZE_KEYS.items()}
_SHIFT_29 = np.uint64(29)
# The same constants as 0-d arrays, for `hashed_ngrams`: an array operation with a 0-d array costs a
# third of one with a numpy scalar (no scalar conversion), with the same result.
_MIX_BY_SIZE_0D = {n: np.array(key, dtype=np.uint64) for n, key in _MIX_BY_SIZE.items()}
_SHIFT_29_0D = np.array(29, dtype=np.uint64)
_BUCKET_SHIFTS_0D = {bits: np.array(64 - bits, dtype=np.uint64) for bits in range(1, 33)}


def hashed_ngrams(
    text: str, bits: int = DEFAULT_BITS, sizes: tuple[int, ...] = DEFAULT_NGRAMS
) -> npt.NDArray[np.uint32]:
    """The bucket of every character n-gram of `text` (n in `sizes`), n-gram by n-gram, ordered by
    size then position. `text` should already be normalised (lowercase words, single spaces)."""
    return _buckets(text, bits, sizes).astype(np.uint32)


def _buckets(text: str, bits: int, sizes: tuple[int, ...]) -> npt.NDArray[np.uint64]:
    """`hashed_ngrams` as uint64, in a dozen array operations whatever the text's length: on a
    prompt of a few words the per-operation cost of numpy is most of the cost.

    The positional sum of an n-gram extends that of its (n-1)-gram prefix (uint64 arithmetic wraps
    modulo 2**64, so the order of the additions does not change a bit): every code times every
    position key is one outer product, and each size adds one row of it to the size before. Array
    (never scalar) uint64 arithmetic wraps silently, so no error state is needed."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    length = len(codes)
    present = [n for n in sizes if n <= length]
    if not present:
        return np.zeros(0, dtype=np.uint64)
    top = max(present)
    products: npt.NDArray[np.uint64] = np.multiply.outer(_POSITION_KEYS[:top], codes)
    partial = products[0]
    by_size = {1: partial}
    for offset in range(1, top):
        partial = partial[: length - offset] + products[offset, offset:]
        by_size[offset + 1] = partial
    joined = by_size[present[0]] if len(present) == 1 else np.concatenate([by_size[n] for n in present])
    mixed: npt.NDArray[np.uint64] = joined ^ (joined >> _SHIFT_29_0D)
    start = 0
    for n in present:
        stop = start + length - n + 1
        segment = mixed[start:stop]
        np.multiply(segment, _MIX_BY_SIZE_0D[n], out=segment)
        start = stop
    shift = _BUCKET_SHIFTS_0D.get(bits)
    mixed >>= np.uint64(64 - bits) if shift is None else shift
    return mixed


# `_ShortTexts` keeps its multipliers for this many text lengths (at most 6 KB each).
_MIXERS_KEPT = 32
# The longest text `_ShortTexts` reads: numpy's matrix product of integers is a plain loop, some
# 200 instructions per character for three sizes, where `_buckets` spends a third of that per
# character on top of its fixed cost; the two cost the same at some 400 characters.
_SHORT_MAX_CHARS = 256


class _ShortTexts:
    """The buckets of the n-grams of a text up to `longest` characters, in half the array operations
    of `_buckets`: on a text of a few hundred characters numpy's cost
    per call is most of the model's, and prompts and answers are often that short. The buckets are
    `_buckets`' own (tests/detectors/test_injection_model.py compares them on random and real texts).

    For consecutive n-gram sizes up to the number of position keys (the shipped 3, 4, 5):

    - The codes, followed by `top - 1` zeros, read as a `top` x length view with both strides one
      element (no copy): row k at column i is the code at i + k. One uint64 matrix product with
      `keys` (row r: the position keys of size n_r, zeros after) gives the positional sum of every
      n-gram of each size at its start (uint64 products and sums wrap modulo 2**64 as in `_buckets`,
      and the order of the additions does not change a bit). The last n_r - 1 columns of row r run
      into the zeros: not n-grams of the text.
    - `mixers` holds, in its row r, `_MIX_BY_SIZE[n_r]` up to a column common to every row and zeros
      after. A view of it whose rows start one column further each time, and whose first row starts
      where the text's length puts the text's last n-gram at that column, multiplies each n-gram by
      its size's mix and every cell past the text by 0: such a cell hashes to bucket 0, and
      `InjectionModel.probability` takes its weight (as many times as there are such cells, `outside`)
      back from the sum. Sums of small integers as float64 are exact in any order."""

    __slots__ = ("_by_length", "keys", "longest", "mixers", "outside", "rows", "top")

    def __init__(self, sizes: tuple[int, ...], window: int) -> None:
        # Within one window (a longer text is scored window by window, by `_buckets`).
        self.longest = longest = min(window, _SHORT_MAX_CHARS)
        self.top = sizes[-1]
        self.rows = rows = len(sizes)
        # Cells past the text's end: n - 1 of each size.
        self.outside = sum(n - 1 for n in sizes)
        keys = [int(key) for key in _POSITION_KEYS]
        self.keys = np.array([[keys[k] if k < n else 0 for k in range(self.top)] for n in sizes], dtype=np.uint64)
        self.mixers = np.zeros((rows, longest + rows), dtype=np.uint64)
        for row, n in enumerate(sizes):
            self.mixers[row, : longest - sizes[0] + 1] = int(_MIX_BY_SIZE[n])
        # The view of `mixers` for each length lately read, copied (at most `_MIXERS_KEPT` of them).
        self._by_length: dict[int, npt.NDArray[np.uint64]] = {}

    @staticmethod
    def applies(sizes: tuple[int, ...]) -> bool:
        return (bool(sizes) and sizes[0] >= 1 and sizes == tuple(range(sizes[0], sizes[-1] + 1))
                and sizes[-1] <= len(_POSITION_KEYS))

    def reads(self, length: int) -> bool:
        """Whether a text of `length` characters is read here."""
        return self.top <= length <= self.longest

    def cells(self, text: str, bits: int) -> npt.NDArray[np.int64]:
        """The bucket of every n-gram of `text` (`reads(len(text))`), size by size, each size's row
        followed by its n - 1 cells past the text's end, which hash to bucket 0 (`outside` of them)."""
        top = self.top
        length = len(text)
        codes = np.frombuffer((text + "\x00" * (top - 1)).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        sums = np.matmul(self.keys, np.ndarray((top, length), np.uint64, codes, 0, (8, 8)))
        mixed = sums >> _SHIFT_29_0D
        mixed ^= sums
        rows = self.rows
        mixers = self._by_length.get(length)
        if mixers is None:
            if len(self._by_length) >= _MIXERS_KEPT:
                self._by_length.clear()
            # A contiguous copy: multiplying by the strided view itself costs twice as much.
            mixers = self._by_length[length] = np.ndarray(
                (rows, length), np.uint64, self.mixers, 8 * (self.longest - length), (8 * (self.longest + rows + 1), 8)
            ).copy()
        mixed *= mixers
        mixed >>= _BUCKET_SHIFTS_0D[bits]
        cells: npt.NDArray[np.int64] = mixed.view(np.int64).reshape(-1)
        return cells


def _positions(length: int, sizes: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """The start position of each n-gram `hashed_ngrams` returns, in the same order."""
    return np.concatenate([np.arange(max(0, length - n + 1), dtype=np.int64) for n in sizes] or [np.zeros(0, np.int64)])


@dataclass(frozen=True, slots=True)
class HiddenLayer:
    """ReLU units over the n-grams hashed into `2**bits` buckets (a bucket's top `bits` bits):
    unit u = max(0, biases[u] + scale * sum(table[bucket, u]) / sqrt(n-grams)); logit =
    outputs . units + output_bias."""

    table: npt.NDArray[np.int8]  # (2**bits, units)
    bits: int
    scale: float
    biases: npt.NDArray[np.float64]
    outputs: npt.NDArray[np.float64]
    output_bias: float

    def logit(self, buckets: npt.NDArray[np.int64], outside: int = 0) -> float:
        """The layer's logit for a text whose n-grams fall in `buckets` (below 2**bits), of which
        the first bucket's row counted `outside` times too many (cells past a short text's end)."""
        units = self.table.shape[1]
        # Each bucket's row is gathered as one element of `units` bytes (a gather of int8 rows costs
        # ten times as much), then summed by a product with ones. The sums are of at most 3 x window
        # integers below 128: exact in float32 in any order (below 2**24), so the same on every BLAS.
        rows = self.table.view(f"V{units}").reshape(-1)[buckets].view(np.int8).reshape(len(buckets), units)
        exact = np.float32 if len(buckets) * 128 < 1 << 24 else np.float64
        sums = (np.ones(len(buckets), dtype=exact) @ rows.astype(exact)).astype(np.float64)
        if outside:
            sums -= outside * self.table[0].astype(np.float64)
        active = np.maximum(self.biases + self.scale * sums / math.sqrt(len(buckets) - outside), 0.0)
        # Multiplied and summed along the units, not a dot product: the same bits on every CPU.
        return float(np.add.reduce(active * self.outputs)) + self.output_bias


@dataclass(frozen=True, slots=True)
class LinearWeights:
    """One model: score = bias + scale * sum(weights[bucket]) / sqrt(n-grams), flagged at `threshold`;
    with a `hidden` layer, the mean of that score and the layer's logit."""

    weights: npt.NDArray[np.int8]
    bias: float
    scale: float
    threshold: float
    hidden: HiddenLayer | None = None


class InjectionModel:
    """Scores normalised text with the `prompts` or the `documents` model."""

    def __init__(self, header: dict[str, Any], models: dict[str, LinearWeights]) -> None:
        self.bits = int(header["bits"])
        self.sizes = tuple(int(n) for n in header["ngrams"])
        self.window = int(header["window"])
        self._short = _ShortTexts(self.sizes, self.window) if _ShortTexts.applies(self.sizes) else None
        self.models = models
        self.header = header

    def probability(self, words: str, model: str) -> float:
        """The probability that the normalised text `words` (see capsem_proxy.detectors.normalize)
        is an injection, by the model named `model`, read over windows of `window` characters. With
        a hidden layer, from the mean of its logit and the linear model's, both read in the window
        the linear model scores highest."""
        if not words:
            return 0.0
        linear = self.models[model]
        padded = f" {words} "
        short = self._short
        outside = 0  # cells past a short text's end, each hashed to bucket 0
        if short is not None and short.reads(len(padded)):
            buckets = short.cells(padded, self.bits)
            outside = short.outside
        else:
            buckets = _buckets(padded, self.bits, self.sizes).view(np.int64)
            if not len(buckets):
                return 0.0
        # Gathered from the int8 weights themselves (a quarter of the cache lines of a float copy)
        # and summed as float64: sums of small integers, exact in any order.
        values = linear.weights[buckets]
        if len(padded) <= self.window:
            total = float(np.add.reduce(values, dtype=np.float64)) - outside * float(linear.weights[0])
            raw = total / math.sqrt(len(values) - outside)
        else:
            raw, inside = self._best_window(values, len(padded))
            buckets = buckets[inside]
        logit = linear.bias + linear.scale * raw
        hidden = linear.hidden
        if hidden is not None:
            logit = (logit + hidden.logit(buckets >> (self.bits - hidden.bits), outside)) / 2.0
        return 1.0 / (1.0 + math.exp(-logit))

    def _best_window(self, values: npt.NDArray[np.int8], length: int) -> tuple[float, npt.NDArray[np.int64]]:
        """The highest normalised sum over windows of `window` characters, half a window apart, and
        the indices (into `values`) of that window's n-grams."""
        starts = _positions(length, self.sizes)
        order = np.argsort(starts, kind="stable")
        ordered_starts = starts[order]
        step = self.window // 2
        window_starts = np.arange(0, max(1, length - self.window + step), step)
        lows = np.searchsorted(ordered_starts, window_starts, side="left")
        highs = np.searchsorted(ordered_starts, window_starts + self.window, side="left")
        cumulative = np.concatenate(([0.0], np.cumsum(values[order], dtype=np.float64)))
        counts = highs - lows
        usable = counts > 0
        if not usable.any():
            return 0.0, np.zeros(0, dtype=np.int64)
        lows, highs = lows[usable], highs[usable]
        normalised = (cumulative[highs] - cumulative[lows]) / np.sqrt(counts[usable])
        best = int(np.argmax(normalised))
        return float(normalised[best]), order[lows[best] : highs[best]]

    def threshold(self, model: str) -> float:
        return self.models[model].threshold


def write_model(path: Path, header: dict[str, Any], models: dict[str, LinearWeights]) -> bytes:
    """Write the model file (deterministic bytes for the same weights); returns what was written."""
    header = {**header, "models": {name: _model_spec(model) for name, model in models.items()}}
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    payload = MAGIC + struct.pack("<I", len(encoded)) + encoded
    payload += b"".join(models[name].weights.astype(np.int8).tobytes() for name in sorted(models))
    payload += b"".join(hidden.table.astype(np.int8).tobytes() for name in sorted(models)
                        if (hidden := models[name].hidden) is not None)
    path.write_bytes(payload)
    return payload


def _model_spec(model: LinearWeights) -> dict[str, Any]:
    spec: dict[str, Any] = {"bias": model.bias, "scale": model.scale, "threshold": model.threshold}
    if model.hidden is not None:
        hidden = model.hidden
        spec["hidden"] = {"bits": hidden.bits, "units": int(hidden.table.shape[1]), "scale": hidden.scale,
                          "biases": [float(v) for v in hidden.biases], "outputs": [float(v) for v in hidden.outputs],
                          "output_bias": hidden.output_bias}
    return spec


def read_model(payload: bytes) -> InjectionModel:
    if payload[: len(MAGIC)] != MAGIC:
        raise ValueError("not an injection model file")
    (length,) = struct.unpack_from("<I", payload, len(MAGIC))
    start = len(MAGIC) + 4
    header = json.loads(payload[start : start + length])
    size = 1 << int(header["bits"])
    offset = start + length
    models = {}
    for name in sorted(header["models"]):
        spec = header["models"][name]
        weights = np.frombuffer(payload, dtype=np.int8, count=size, offset=offset)
        offset += size
        models[name] = LinearWeights(weights, float(spec["bias"]), float(spec["scale"]), float(spec["threshold"]))
    for name in sorted(header["models"]):
        layer = header["models"][name].get("hidden")
        if layer is None:
            continue
        bits, units = int(layer["bits"]), int(layer["units"])
        shaped = len(layer["biases"]) == len(layer["outputs"]) == units >= 1
        if not shaped or not 1 <= bits <= int(header["bits"]):
            raise ValueError("injection model file has a malformed hidden layer")
        count = (1 << bits) * units
        table = np.frombuffer(payload, dtype=np.int8, count=count, offset=offset).reshape(1 << bits, units)
        offset += count
        hidden = HiddenLayer(table, bits, float(layer["scale"]), np.array(layer["biases"], dtype=np.float64),
                             np.array(layer["outputs"], dtype=np.float64), float(layer["output_bias"]))
        models[name] = dataclasses.replace(models[name], hidden=hidden)
    if offset != len(payload):
        raise ValueError("injection model file has trailing or missing bytes")
    return InjectionModel(header, models)


def load_model(path: str | None = None) -> InjectionModel:
    """The model in `path`, or the one shipped with the package (one copy per file in a process)."""
    return _load_model(path)


@lru_cache(maxsize=4)
def _load_model(path: str | None) -> InjectionModel:
    if path is None:
        payload = (files("capsem_proxy.detectors") / "data" / MODEL_FILE).read_bytes()
    else:
        payload = Path(path).read_bytes()
    return read_model(payload)
