"""Offline helpers: optower's CSV files into numpy arrays, validated like the C++ readers.

    logs = read_logs_csv("data/logs.csv")            # LogData(contexts, actions, rewards, pscores)
    logs.contexts.shape                              # (n, D) float32
    ids, features = read_items_csv("data/items.csv") # (N,) int64, (N, E) float32

Formats (core/base/csv_io.h; comma-separated, header on line 1, no quoting):
    logs.csv:   x0,...,x{D-1},action,reward,pscore    D >= 1; action = an item id; 0 < pscore <= 1
    items.csv:  item,f0,...,f{E-1}                    E >= 0; unique integer ids

Accepted: LF or CRLF, a UTF-8 BOM, spaces/tabs around fields, blank lines at the very end. Anything
else raises CsvError (a ValueError) whose message is the C++ reader's, "<path>:<line>: <what>"
(line 1 = the header), naming the column and the bad value, e.g.
    logs.csv:7: pscore=1.5: must be in (0, 1]
A file that cannot be opened raises the usual OSError (FileNotFoundError, ...).
"""

import re
from collections import namedtuple

import numpy as np

LogData = namedtuple("LogData", ["contexts", "actions", "rewards", "pscores"])
LogData.__doc__ = """contexts [n, D] float32, actions [n] int64 item ids, rewards [n] float32,
pscores [n] float32 (the logging policy's propensity of each action)."""

_MAX_SHOWN = 40
# Values at or above this magnitude round to infinity as a float32 (FLT_MAX + half an ulp).
_FLOAT_OVERFLOW = 2.0**128 - 2.0**103
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# std::from_chars (general format): optional '-', no '+', no hex, no surrounding spaces.
_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONFINITE = re.compile(r"-?(?:inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)", re.IGNORECASE)
_NUMBER_PREFIX = re.compile(r"-?(?:inf|nan|[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+)",
                            re.IGNORECASE)
_INTEGER = re.compile(r"-?[0-9]+")


class CsvError(ValueError):
    """A malformed CSV file: str(e) is "<path>:<line>: <what is wrong>"."""


def _shown(value):
    if not value:
        return "(empty)"
    return value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "..."


def _trim(s):
    return s.lstrip(" \t").rstrip(" \t\r")


class _Reader:
    """The lines of one file with 1-based numbers, and the parsed header (for messages)."""

    def __init__(self, path):
        self.path = str(path)
        with open(path, "rb") as f:
            text = f.read()
        if text.startswith(b"\xef\xbb\xbf"):
            text = text[3:]
        self.lines = text.decode("utf-8", errors="replace").split("\n")
        self.line = 0  # number of the line last returned
        self.rows = 0
        self.header = []
        self.fields = []

    def error(self, what, line=None):
        return CsvError(f"{self.path}:{self.line if line is None else line}: {what}")

    def _next(self):
        """The next non-blank line, or None at the end. A blank line followed by more is an
        error."""
        while self.line < len(self.lines):
            raw = self.lines[self.line]
            self.line += 1
            if _trim(raw):
                return raw
            if any(_trim(rest) for rest in self.lines[self.line:]):
                raise self.error("blank line (blank lines are only allowed at the end of the file)")
            self.line = len(self.lines)
        return None

    def read_header(self, head, prefix, min_prefix, tail, fmt):
        line = self._next()
        if line is None or self.line != 1:
            raise self.error(f"empty file; expected the header {fmt}", line=1)
        self.header = [_trim(f) for f in line.split(",")]
        first = self.header[0]
        if first and _NUMBER_PREFIX.match(first):
            raise self.error(f"missing header: line 1 starts with the value {_shown(first)}; "
                             f"expected the header {fmt}")

        def mismatch(col, expected):
            if col >= len(self.header):
                return self.error(f"header ends after column {len(self.header)}, '{expected}' is "
                                  f"missing; expected the header {fmt}")
            return self.error(f"header column {col + 1} is '{_shown(self.header[col])}' where "
                              f"'{expected}' was expected; expected the header {fmt}")

        for k, name in enumerate(head):
            if k >= len(self.header) or self.header[k] != name:
                raise mismatch(k, name)
        n = 0
        while len(head) + n < len(self.header) and self.header[len(head) + n] == f"{prefix}{n}":
            n += 1
        if n < min_prefix:
            raise mismatch(len(head) + n, f"{prefix}{n}")
        tail_start = len(head) + n
        for k, name in enumerate(tail):
            col = tail_start + k
            if col >= len(self.header) or self.header[col] != name:
                raise mismatch(col, f"{prefix}{n}' or '{tail[0]}" if k == 0 else name)
        expected = tail_start + len(tail)
        if len(self.header) != expected:
            raise self.error(f"header has an extra column {expected + 1} "
                             f"'{_shown(self.header[expected])}'; expected the header {fmt}")
        return n

    def next_row(self):
        line = self._next()
        if line is None:
            if self.rows == 0:
                raise self.error("no data rows after the header", line=2)
            return False
        self.fields = [_trim(f) for f in line.split(",")]
        if len(self.fields) != len(self.header):
            raise self.error(f"expected {len(self.header)} columns as in the header, "
                             f"found {len(self.fields)}")
        self.rows += 1
        return True

    def number(self, col):
        """Column `col` of the current row as a finite float32-range value."""
        s = self.fields[col]
        name = self.header[col]
        if _NONFINITE.fullmatch(s):
            raise self.error(f"{name}={_shown(s)}: must be finite")
        if not _DECIMAL.fullmatch(s):
            raise self.error(f"{name}={_shown(s)}: not a number")
        v = float(s)
        if abs(v) >= _FLOAT_OVERFLOW:
            raise self.error(f"{name}={_shown(s)}: outside the float range")
        return v

    def integer(self, col):
        s = self.fields[col]
        if not _INTEGER.fullmatch(s) or not _INT64_MIN <= int(s) <= _INT64_MAX:
            raise self.error(f"{self.header[col]}={_shown(s)}: not an integer item id")
        return int(s)


def read_logs_csv(path, items=None, items_name="the item catalog"):
    """Reads logs.csv into LogData. `items` (optional): the catalog's item ids; then every action
    must be one of them ("action=17 is not an item in <items_name>")."""
    known = None
    if items is not None:
        known = set()
        for item in np.asarray(items).ravel().tolist():
            if item in known:
                raise CsvError(f"item={item}: duplicate item id in {items_name}")
            known.add(item)
    r = _Reader(path)
    dim = r.read_header([], "x", 1, ["action", "reward", "pscore"],
                        "x0,...,x{D-1},action,reward,pscore")
    contexts, actions, rewards, pscores = [], [], [], []
    while r.next_row():
        contexts.append([r.number(j) for j in range(dim)])
        action = r.integer(dim)
        if known is not None and action not in known:
            raise r.error(f"action={action} is not an item in {items_name}")
        reward = r.number(dim + 1)
        pscore = np.float32(r.number(dim + 2))
        if not (0.0 < pscore <= 1.0):
            raise r.error(f"pscore={_shown(r.fields[dim + 2])}: must be in (0, 1]")
        actions.append(action)
        rewards.append(reward)
        pscores.append(pscore)
    return LogData(contexts=np.asarray(contexts, dtype=np.float32).reshape(-1, dim),
                   actions=np.asarray(actions, dtype=np.int64),
                   rewards=np.asarray(rewards, dtype=np.float32),
                   pscores=np.asarray(pscores, dtype=np.float32))


def read_items_csv(path):
    """Reads items.csv: (ids [N] int64, features [N, E] float32)."""
    r = _Reader(path)
    dim = r.read_header(["item"], "f", 0, [], "item,f0,...,f{E-1}")
    ids, features, first_line = [], [], {}
    while r.next_row():
        item = r.integer(0)
        if item in first_line:
            raise r.error(f"item={item}: duplicate item id (first on line {first_line[item]})")
        first_line[item] = r.line
        ids.append(item)
        features.append([r.number(j + 1) for j in range(dim)])
    return (np.asarray(ids, dtype=np.int64),
            np.asarray(features, dtype=np.float32).reshape(len(ids), dim))
