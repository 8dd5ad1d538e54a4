"""Offline helpers: optower's CSV files into numpy arrays, validated like the C++ readers.

    logs = read_logs_csv("data/logs.csv")            # LogData(contexts, actions, rewards, pscores,
    logs.contexts.shape                              #         categorical, positions)
    logs.categorical["user"][i]                      # row i's ids of column c:user (list of int)
    ids, features = read_items_csv("data/items.csv") # (N,) int64, (N, E) float32
    items = read_items_table("data/items.csv")       # ItemTable(ids, features, categorical)

Formats (core/base/csv_io.h; comma-separated, header on line 1, no quoting):
    logs.csv:   x0,...,x{D-1}[,c:<u>...],action,reward,pscore[,position]
                D >= 1, or D = 0 with at least one c: column; action = an item id;
                0 < pscore <= 1; position (optional) = the row's 0-based slot, an integer >= 0
    items.csv:  item,f0,...,f{E-1}[,c:<a>...]         E >= 0; unique integer ids

Categorical columns (core/base/csv_categorical.h): a header column `c:<name>` (after the dense
columns; name = 1..64 of [A-Za-z0-9_.-], unique) holds the raw ids of field <name>. A cell is ids
separated by '|' ("12|-3|red"): integer text is the id, any other non-empty text becomes its
FNV-1a-64 hash as an int64 (categorical_id_from_text, = the C++ CategoricalIdFromText); an empty
cell = no ids in that row. They come back as a dict name -> one list of int ids per row, in header
order ({} for a file without c: columns). read_items_csv validates an items file's c: columns but
returns only (ids, features); read_items_table returns them too.

Accepted: LF or CRLF, a UTF-8 BOM, spaces/tabs around fields and ids, blank lines at the very end.
Anything else raises CsvError (a ValueError) whose message is the C++ reader's, "<path>:<line>:
<what>" (line 1 = the header), naming the column and the bad value, e.g.
    logs.csv:7: pscore=1.5: must be in (0, 1]
    logs.csv:3: column 'c:user': value '1||2': empty id (ids are separated by single '|')
A file that cannot be opened raises the usual OSError (FileNotFoundError, ...).
(Values longer than 40 characters are cut in messages after 40 characters here, after 40 bytes in
C++: the messages differ only for such non-ASCII values.)
"""

import re
from collections import namedtuple

import numpy as np


_LOG_FIELDS = ["contexts", "actions", "rewards", "pscores", "categorical", "positions"]


class LogData(namedtuple("LogData", _LOG_FIELDS)):
    """contexts [n, D] float32 (D may be 0), actions [n] int64 item ids, rewards [n] float32,
    pscores [n] float32 (the logging policy's propensity of each action), categorical: dict
    field name -> [n] lists of int ids ({} without c: columns), positions [n] int32 or None (no
    position column). The last two default to {} and None, so LogData(contexts, actions, rewards,
    pscores) still works."""

    __slots__ = ()

    def __new__(cls, contexts, actions, rewards, pscores, categorical=None, positions=None):
        return super().__new__(cls, contexts, actions, rewards, pscores,
                               {} if categorical is None else categorical, positions)


ItemTable = namedtuple("ItemTable", ["ids", "features", "categorical"])
ItemTable.__doc__ = """ids [N] int64, features [N, E] float32, categorical: dict field name ->
[N] lists of int ids ({} without c: columns)."""

_MAX_SHOWN = 40
# Values at or above this magnitude round to infinity as a float32 (FLT_MAX + half an ulp).
_FLOAT_OVERFLOW = 2.0**128 - 2.0**103
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_INT32_MAX = (1 << 31) - 1
# std::from_chars (general format): optional '-', no '+', no hex, no surrounding spaces.
_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONFINITE = re.compile(r"-?(?:inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)", re.IGNORECASE)
_NUMBER_PREFIX = re.compile(r"-?(?:inf|nan|[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+)",
                            re.IGNORECASE)
_INTEGER = re.compile(r"-?[0-9]+")
# absl::SimpleAtoi: ASCII whitespace around, one optional sign ('+' too), decimal digits.
_ATOI_BYTES = re.compile(rb"[+-]?[0-9]+")
_ASCII_SPACE = b" \t\n\v\f\r"

_CATEGORICAL_PREFIX = "c:"
_MAX_NAME = 64
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_BAD_POSITION = "not a 0-based position (an integer >= 0)"

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_U64 = (1 << 64) - 1


def categorical_id_from_text(text):
    """The id of one categorical value, as the C++ CategoricalIdFromText: integer text (int64
    range; '+', '-' and surrounding ASCII whitespace allowed) is the id, anything else is the
    FNV-1a-64 hash of its UTF-8 bytes read as an int64. `text` is a str or bytes."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    stripped = raw.strip(_ASCII_SPACE)
    if _ATOI_BYTES.fullmatch(stripped):
        value = int(stripped)
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
    h = _FNV_OFFSET
    for c in raw:
        h = ((h ^ c) * _FNV_PRIME) & _U64
    return h - (1 << 64) if h > _INT64_MAX else h


class CsvError(ValueError):
    """A malformed CSV file: str(e) is "<path>:<line>: <what is wrong>"."""


def _shown(value):
    if not value:
        return "(empty)"
    return value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "..."


def _trim(s):
    return s.lstrip(" \t").rstrip(" \t\r")


def _printable(message):
    # The text is decoded with surrogateescape (so ids hash from their exact bytes); messages show
    # undecodable bytes as U+FFFD.
    return message.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _Header:
    """Where the columns of a checked header are (the C++ HeaderLayout)."""

    def __init__(self):
        self.dense = 0
        self.categorical_begin = 0
        self.categorical = []  # field names without "c:", in header order
        self.tail_begin = 0
        self.has_optional = False


class _Reader:
    """The lines of one file with 1-based numbers, and the parsed header (for messages)."""

    def __init__(self, path):
        self.path = str(path)
        with open(path, "rb") as f:
            text = f.read()
        if text.startswith(b"\xef\xbb\xbf"):
            text = text[3:]
        self.lines = text.decode("utf-8", errors="surrogateescape").split("\n")
        self.line = 0  # number of the line last returned
        self.rows = 0
        self.header = []
        self.fields = []

    def error(self, what, line=None):
        return CsvError(_printable(f"{self.path}:{self.line if line is None else line}: {what}"))

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

    def read_header(self, head, prefix, min_prefix, tail, fmt, categorical=False,
                    optional_last=""):
        """Checks line 1: `head`, `<prefix>0..` (at least min_prefix of them, or fewer with a c:
        column when `categorical`), the c: columns, `tail`, then optionally `optional_last`."""
        line = self._next()
        if line is None or self.line != 1:
            raise self.error(f"empty file; expected the header {fmt}", line=1)
        h = self.header = [_trim(f) for f in line.split(",")]
        first = h[0]
        if first and _NUMBER_PREFIX.match(first):
            raise self.error(f"missing header: line 1 starts with the value {_shown(first)}; "
                             f"expected the header {fmt}")

        def mismatch(col, expected):
            if col >= len(h):
                return self.error(f"header ends after column {len(h)}, '{expected}' is "
                                  f"missing; expected the header {fmt}")
            return self.error(f"header column {col + 1} is '{_shown(h[col])}' where "
                              f"'{expected}' was expected; expected the header {fmt}")

        for k, name in enumerate(head):
            if k >= len(h) or h[k] != name:
                raise mismatch(k, name)
        layout = _Header()
        col = len(head)
        while col < len(h) and h[col] == f"{prefix}{layout.dense}":
            layout.dense += 1
            col += 1
        layout.categorical_begin = col
        while categorical and col < len(h) and h[col].startswith(_CATEGORICAL_PREFIX):
            name = h[col][len(_CATEGORICAL_PREFIX):]
            if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
                raise self.error(f"header column {col + 1}: column '{_shown(h[col])}': "
                                 f"name='{name[:80]}': a field name is 1..{_MAX_NAME} characters "
                                 "of [A-Za-z0-9_.-]")
            if name in layout.categorical:
                raise self.error(f"header column {col + 1} '{h[col]}' repeats an earlier column")
            layout.categorical.append(name)
            col += 1
        if layout.dense < min_prefix and not layout.categorical:
            raise mismatch(col, f"{prefix}{layout.dense}")
        layout.tail_begin = col
        for k, name in enumerate(tail):
            if col < len(h) and h[col] == name:
                col += 1
                continue
            if k > 0:
                raise mismatch(col, name)
            before = (f"{_CATEGORICAL_PREFIX}<name>" if layout.categorical
                      else f"{prefix}{layout.dense}")
            raise mismatch(col, f"{before}' or '{tail[0]}")
        if optional_last and col < len(h) and h[col] == optional_last:
            layout.has_optional = True
            col += 1
        if len(h) != col:
            raise self.error(f"header has an extra column {col + 1} '{_shown(h[col])}'; "
                             f"expected the header {fmt}")
        return layout

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

    def integer(self, col, what="not an integer item id"):
        s = self.fields[col]
        if not _INTEGER.fullmatch(s) or not _INT64_MIN <= int(s) <= _INT64_MAX:
            raise self.error(f"{self.header[col]}={_shown(s)}: {what}")
        return int(s)

    def categorical_cell(self, col):
        """Column `col` of the current row as a categorical cell: its list of ids."""
        cell = self.fields[col]
        if not cell:
            return []
        ids = []
        for text in cell.split("|"):
            text = _trim(text)
            if not text:
                raise self.error(f"column '{self.header[col]}': value '{_shown(cell)}': empty id "
                                 "(ids are separated by single '|')")
            ids.append(categorical_id_from_text(text))
        return ids

    def categorical_cells(self, layout, out):
        for f, name in enumerate(layout.categorical):
            out[name].append(self.categorical_cell(layout.categorical_begin + f))


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
    layout = r.read_header([], "x", 1, ["action", "reward", "pscore"],
                           "x0,...,x{D-1},action,reward,pscore", categorical=True,
                           optional_last="position")
    dim = layout.dense
    act = layout.tail_begin
    contexts, actions, rewards, pscores, positions = [], [], [], [], []
    categorical = {name: [] for name in layout.categorical}
    while r.next_row():
        contexts.append([r.number(j) for j in range(dim)])
        r.categorical_cells(layout, categorical)
        action = r.integer(act)
        if known is not None and action not in known:
            raise r.error(f"action={action} is not an item in {items_name}")
        reward = r.number(act + 1)
        pscore = np.float32(r.number(act + 2))
        if not (0.0 < pscore <= 1.0):
            raise r.error(f"pscore={_shown(r.fields[act + 2])}: must be in (0, 1]")
        if layout.has_optional:
            position = r.integer(act + 3, _BAD_POSITION)
            if not 0 <= position <= _INT32_MAX:
                raise r.error(f"position={position}: {_BAD_POSITION}")
            positions.append(position)
        actions.append(action)
        rewards.append(reward)
        pscores.append(pscore)
    return LogData(contexts=np.asarray(contexts, dtype=np.float32).reshape(len(actions), dim),
                   actions=np.asarray(actions, dtype=np.int64),
                   rewards=np.asarray(rewards, dtype=np.float32),
                   pscores=np.asarray(pscores, dtype=np.float32),
                   categorical=categorical,
                   positions=(np.asarray(positions, dtype=np.int32) if layout.has_optional
                              else None))


def read_items_table(path):
    """Reads items.csv with its categorical columns: ItemTable(ids [N] int64, features [N, E]
    float32, categorical {name: [N] lists of ids})."""
    r = _Reader(path)
    layout = r.read_header(["item"], "f", 0, [], "item,f0,...,f{E-1}", categorical=True)
    dim = layout.dense
    ids, features, first_line = [], [], {}
    categorical = {name: [] for name in layout.categorical}
    while r.next_row():
        item = r.integer(0)
        if item in first_line:
            raise r.error(f"item={item}: duplicate item id (first on line {first_line[item]})")
        first_line[item] = r.line
        ids.append(item)
        features.append([r.number(j + 1) for j in range(dim)])
        r.categorical_cells(layout, categorical)
    return ItemTable(ids=np.asarray(ids, dtype=np.int64),
                     features=np.asarray(features, dtype=np.float32).reshape(len(ids), dim),
                     categorical=categorical)


def read_items_csv(path):
    """Reads items.csv: (ids [N] int64, features [N, E] float32). c: columns are validated but not
    returned (read_items_table returns them)."""
    table = read_items_table(path)
    return table.ids, table.features
