#!/usr/bin/python3
"""optower_client.read_logs_csv / read_items_csv / read_items_table: arrays, categorical ids, and
the C++ readers' messages (core/base/csv_io.cc) word for word. The expected messages below were
produced by the C++ reader (`optower train --logs FILE --items FILE`) on the same inputs; with
--optower-bin (as ctest runs it) the test also runs that binary on every case and checks that it
still prints them, and that an items file's categorical ids read back from the items.csv `optower
train` writes (ids as integers) equal the Python reader's.

    /usr/bin/python3 tests/python/test_logs.py --gen-dir build/client/python/gen \
        [--optower-bin build/cli/optower]
"""

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

LOGS_HEADER = "x0,...,x{D-1},action,reward,pscore"
ITEMS_HEADER = "item,f0,...,f{E-1}"
NAME_RULE = "a field name is 1..64 characters of [A-Za-z0-9_.-]"
EMPTY_ID = "empty id (ids are separated by single '|')"
BAD_POSITION = "not a 0-based position (an integer >= 0)"
OPTOWER_BIN = None  # --optower-bin

# (file contents, expected message after "<path>:")
BAD_LOGS = [
    ("", f"1: empty file; expected the header {LOGS_HEADER}"),
    ("\nx0,action,reward,pscore\n1,1,1,1\n",
     "1: blank line (blank lines are only allowed at the end of the file)"),
    ("1.5,action,reward,pscore\n",
     f"1: missing header: line 1 starts with the value 1.5; expected the header {LOGS_HEADER}"),
    ("action,reward,pscore\n1,1,1\n",
     f"1: header column 1 is 'action' where 'x0' was expected; expected the header {LOGS_HEADER}"),
    ("x0,x1,act,reward,pscore\n",
     "1: header column 3 is 'act' where 'x2' or 'action' was expected; expected the header "
     + LOGS_HEADER),
    ("x0,action,reward\n",
     f"1: header ends after column 3, 'pscore' is missing; expected the header {LOGS_HEADER}"),
    ("x0,action,reward,pscore,zz\n",
     f"1: header has an extra column 5 'zz'; expected the header {LOGS_HEADER}"),
    ("x0,action,reward,pscore\n", "2: no data rows after the header"),
    ("x0,action,reward,pscore\n1,1,1\n", "2: expected 4 columns as in the header, found 3"),
    ("x0,action,reward,pscore\nnan,1,1,1\n", "2: x0=nan: must be finite"),
    ("x0,action,reward,pscore\n1,1,-inf,1\n", "2: reward=-inf: must be finite"),
    ("x0,action,reward,pscore\n1x,1,1,1\n", "2: x0=1x: not a number"),
    ("x0,action,reward,pscore\n+1,1,1,1\n", "2: x0=+1: not a number"),
    ("x0,action,reward,pscore\n,1,1,1\n", "2: x0=(empty): not a number"),
    ("x0,action,reward,pscore\n1e39,1,1,1\n", "2: x0=1e39: outside the float range"),
    ("x0,action,reward,pscore\n1,1.5,1,1\n", "2: action=1.5: not an integer item id"),
    ("x0,action,reward,pscore\n1,7,1,1\n", "2: action=7 is not an item in items.csv"),
    ("x0,action,reward,pscore\n1,1,1,1.5\n", "2: pscore=1.5: must be in (0, 1]"),
    ("x0,action,reward,pscore\n1,1,1,0\n", "2: pscore=0: must be in (0, 1]"),
    ("x0,action,reward,pscore\n1,1,1,1\n\n1,1,1,1\n",
     "3: blank line (blank lines are only allowed at the end of the file)"),
    ("x0,action,reward,pscore\n" + "9" * 60 + "a,1,1,1\n",
     "2: x0=" + "9" * 40 + "...: not a number"),
    # categorical columns c:<name>
    ("x0,c:u,action,reward,pscore\n1,1||2,1,1,1\n", f"2: column 'c:u': value '1||2': {EMPTY_ID}"),
    ("x0,c:u,action,reward,pscore\n1,|,1,1,1\n", f"2: column 'c:u': value '|': {EMPTY_ID}"),
    ("x0,c:u,action,reward,pscore\n1,3| ,1,1,1\n", f"2: column 'c:u': value '3|': {EMPTY_ID}"),
    ("x0,c:u,action,reward,pscore\n1, |4,1,1,1\n", f"2: column 'c:u': value '|4': {EMPTY_ID}"),
    ("x0,c:u,action,reward,pscore\n1,a|b|" + "z" * 60 + "||,1,1,1\n",
     "2: column 'c:u': value 'a|b|" + "z" * 36 + f"...': {EMPTY_ID}"),
    ("x0,c:u,action,reward,pscore\n1,a,1,1,1\n1,b||,1,1,1\n",
     f"3: column 'c:u': value 'b||': {EMPTY_ID}"),
    ("x0,c:u,action,reward,pscore\nz,1||2,1,1,1\n", "2: x0=z: not a number"),
    ("c:u,action,reward,pscore,position\n1||2,7,1,1,x\n",
     f"2: column 'c:u': value '1||2': {EMPTY_ID}"),
    ("c:u,action,reward,pscore,position\n1,7,1,1,x\n", "2: action=7 is not an item in items.csv"),
    ("c:u,c:v,action,reward,pscore\n1,2,1,1\n", "2: expected 5 columns as in the header, found 4"),
    ("c:u,action,reward,pscore\n1,1,1,1\n\n1,1,1,1\n",
     "3: blank line (blank lines are only allowed at the end of the file)"),
    ("x0,c:a b,action,reward,pscore\n1,1,1,1,1\n",
     f"1: header column 2: column 'c:a b': name='a b': {NAME_RULE}"),
    ("x0,c:,action,reward,pscore\n1,1,1,1,1\n",
     f"1: header column 2: column 'c:': name='': {NAME_RULE}"),
    ("x0,c:" + "n" * 65 + ",action,reward,pscore\n1,1,1,1,1\n",
     "1: header column 2: column 'c:" + "n" * 38 + "...': name='" + "n" * 65 + f"': {NAME_RULE}"),
    ("x0,c:\u00e9,action,reward,pscore\n1,1,1,1,1\n",
     f"1: header column 2: column 'c:\u00e9': name='\u00e9': {NAME_RULE}"),
    ("x0,c:u,c:v,c:u,action,reward,pscore\n1,1,1,1,1,1,1\n",
     "1: header column 4 'c:u' repeats an earlier column"),
    ("x0,c:u,x1,action,reward,pscore\n1,1,1,1,1,1\n",
     "1: header column 3 is 'x1' where 'c:<name>' or 'action' was expected; expected the header "
     + LOGS_HEADER),
    ("c:u,act,reward,pscore\n1,1,1,1\n",
     "1: header column 2 is 'act' where 'c:<name>' or 'action' was expected; expected the header "
     + LOGS_HEADER),
    ("c:u\n1\n",
     "1: header ends after column 1, 'c:<name>' or 'action' is missing; expected the header "
     + LOGS_HEADER),
    ("c:u,action,reward\n1,1,1\n",
     f"1: header ends after column 3, 'pscore' is missing; expected the header {LOGS_HEADER}"),
    ("action,reward,pscore,position\n1,1,1,1\n",
     f"1: header column 1 is 'action' where 'x0' was expected; expected the header {LOGS_HEADER}"),
    # the position column
    ("c:u,action,reward,pscore,pos\n1,1,1,1,1\n",
     f"1: header has an extra column 5 'pos'; expected the header {LOGS_HEADER}"),
    ("c:u,action,reward,pscore,position,zz\n1,1,1,1,1,1\n",
     f"1: header has an extra column 6 'zz'; expected the header {LOGS_HEADER}"),
    ("x0,action,reward,pscore,position,position\n1,1,1,1,1,1\n",
     f"1: header has an extra column 6 'position'; expected the header {LOGS_HEADER}"),
    ("x0,position,action,reward,pscore\n1,1,1,1,1\n",
     "1: header column 2 is 'position' where 'x1' or 'action' was expected; expected the header "
     + LOGS_HEADER),
    ("x0,action,reward,pscore,position\n1,1,1,1,-1\n", f"2: position=-1: {BAD_POSITION}"),
    ("x0,action,reward,pscore,position\n1,1,1,1,1.5\n", f"2: position=1.5: {BAD_POSITION}"),
    ("x0,action,reward,pscore,position\n1,1,1,1,\n", f"2: position=(empty): {BAD_POSITION}"),
    ("x0,action,reward,pscore,position\n1,1,1,1,+1\n", f"2: position=+1: {BAD_POSITION}"),
    ("x0,action,reward,pscore,position\n1,1,1,1,-007\n", f"2: position=-7: {BAD_POSITION}"),
    ("x0,action,reward,pscore,position\n1,1,1,1,2147483648\n",
     f"2: position=2147483648: {BAD_POSITION}"),
    ("x0,action,reward,pscore,position\n1,1,1,1,99999999999999999999\n",
     f"2: position=99999999999999999999: {BAD_POSITION}"),
    ("x0,action,reward,pscore,position\n1,1,1,1,1\n1,1,1,1,x\n", f"3: position=x: {BAD_POSITION}"),
    ("x0,action,reward,pscore,position\n1,1,1,1.5,x\n", "2: pscore=1.5: must be in (0, 1]"),
]

# items.csv cases (read_items_csv and read_items_table give the same message)
BAD_ITEMS = [
    ("item,f0,c:color\n1,0,red||blue\n", f"2: column 'c:color': value 'red||blue': {EMPTY_ID}"),
    ("item,c:a,c:b\n1,x,|\n", f"2: column 'c:b': value '|': {EMPTY_ID}"),
    ("item,c:color,c:color\n1,a,b\n", "1: header column 3 'c:color' repeats an earlier column"),
    ("item,c:bad name\n1,a\n",
     f"1: header column 2: column 'c:bad name': name='bad name': {NAME_RULE}"),
    ("item,c:color,f0\n1,a,0\n",
     f"1: header has an extra column 3 'f0'; expected the header {ITEMS_HEADER}"),
    ("item,f0,c:color,zz\n1,0,a,b\n",
     f"1: header has an extra column 4 'zz'; expected the header {ITEMS_HEADER}"),
    ("item,c:color\n1,red\n1,blue\n", "3: item=1: duplicate item id (first on line 2)"),
    ("item,c:color\n1,a\n2\n", "3: expected 2 columns as in the header, found 1"),
    ("item,c:a\n", "2: no data rows after the header"),
]

# An items file's categorical cells (bytes) and the ids the C++ reader gives them (the ids in the
# items.csv `optower train` writes): integer text is the id (absl::SimpleAtoi: '+', ASCII
# whitespace, int64 range), anything else FNV-1a-64 of the bytes as an int64.
ITEM_CELLS = [
    (b"red|81ce123cbb5bd8ce818f60fb3586bba5", [-8509061004729728484, 1391621094805402735]),
    (b" +5 | -0 ", [5, 0]),
    (b"9223372036854775808|-9223372036854775808", [-590260884831411150, -9223372036854775808]),
    (b"\x0b5|\x0bx", [5, 599337224332750934]),
    (b"\xc3\xa9|\xff", [775207407765167617, -5808391946409677970]),
    (b"", []),
    (b"007|0x10|1e3", [7, -6329571803251521068, 4952624886465500888]),
]


def run_optower(logs, items, out_dir):
    """`optower train` on the files: its error message (without "optower: "), or None on success."""
    p = subprocess.run([OPTOWER_BIN, "train", "--logs", logs, "--items", items, "--out", out_dir,
                        "--overwrite", "--quiet", "--epochs", "1"], capture_output=True, text=True)
    if p.returncode == 0:
        return None
    return p.stderr.strip().splitlines()[-1].removeprefix("optower: ")


class ReadLogsCsvTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="optower_pylogs_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return path

    def test_reads_arrays(self):
        from optower_client import read_logs_csv
        path = self.write("logs.csv", "\ufeffx0 , x1,action,reward,pscore\r\n"
                                      "0.1,0.2,17,1,0.5\r\n -3e-2\t,4,18,0,1\r\n\r\n\n")
        logs = read_logs_csv(path)
        np.testing.assert_array_equal(logs.contexts,
                                      np.array([[0.1, 0.2], [-0.03, 4]], dtype=np.float32))
        self.assertEqual(logs.contexts.dtype, np.float32)
        np.testing.assert_array_equal(logs.actions, [17, 18])
        self.assertEqual(logs.actions.dtype, np.int64)
        np.testing.assert_array_equal(logs.rewards, [1, 0])
        np.testing.assert_array_equal(logs.pscores, np.array([0.5, 1], dtype=np.float32))
        self.assertEqual(read_logs_csv(path, items=[17, 18]).actions.tolist(), [17, 18])

    def test_bad_files_give_the_cpp_messages(self):
        from optower_client import CsvError, read_logs_csv
        for i, (text, expected) in enumerate(BAD_LOGS):
            path = self.write(f"bad{i}.csv", text)
            with self.subTest(text=text[:40]):
                with self.assertRaises(CsvError) as caught:
                    read_logs_csv(path, items=[1, 2, 3], items_name="items.csv")
                self.assertEqual(str(caught.exception), f"{path}:{expected}")
                self.assertIsInstance(caught.exception, ValueError)

    def test_missing_file_is_an_os_error(self):
        from optower_client import read_logs_csv
        with self.assertRaises(FileNotFoundError):
            read_logs_csv(os.path.join(self.dir, "nope.csv"))

    def test_items(self):
        from optower_client import CsvError, read_items_csv
        ids, features = read_items_csv(self.write("items.csv", "item,f0,f1\n5,1,2\n9,3,4\n"))
        self.assertEqual(ids.tolist(), [5, 9])
        self.assertEqual(features.shape, (2, 2))
        ids, features = read_items_csv(self.write("ids.csv", "item\n5\n9\n"))
        self.assertEqual(features.shape, (2, 0))
        path = self.write("dup.csv", "item,f0\n5,1\n6,1\n5,2\n")
        with self.assertRaises(CsvError) as caught:
            read_items_csv(path)
        self.assertEqual(str(caught.exception),
                         f"{path}:4: item=5: duplicate item id (first on line 2)")

    def test_categorical_logs_and_positions(self):
        from optower_client import read_logs_csv
        # D = 0 with a c: column, a text id hashed by FNV-1a-64, an empty cell, positions.
        path = self.write("cat.csv", "c:user,c:tags,action,reward,pscore,position\n"
                                     "81ce123cbb5bd8ce818f60fb3586bba5,1| -2 |+3,17,1,0.5,0\n"
                                     " 42 ,,18,0,1,2\r\n")
        logs = read_logs_csv(path, items=[17, 18])
        self.assertEqual(logs.contexts.shape, (2, 0))
        self.assertEqual(logs.contexts.dtype, np.float32)
        self.assertEqual(list(logs.categorical), ["user", "tags"])
        self.assertEqual(logs.categorical["user"], [[1391621094805402735], [42]])
        self.assertEqual(logs.categorical["tags"], [[1, -2, 3], []])
        np.testing.assert_array_equal(logs.positions, [0, 2])
        self.assertEqual(logs.positions.dtype, np.int32)
        np.testing.assert_array_equal(logs.actions, [17, 18])
        np.testing.assert_array_equal(logs.pscores, np.array([0.5, 1], dtype=np.float32))
        # Dense and categorical columns together, no position column.
        logs = read_logs_csv(self.write("mixed.csv", "x0,x1,c:u,action,reward,pscore\n"
                                                     "0.5,1,red|7,3,1,0.25\n"))
        np.testing.assert_array_equal(logs.contexts, np.array([[0.5, 1]], dtype=np.float32))
        self.assertEqual(logs.categorical, {"u": [[-8509061004729728484, 7]]})
        self.assertIsNone(logs.positions)
        # A dense file: no categorical fields, no positions; the 4-argument LogData still works.
        logs = read_logs_csv(self.write("dense.csv", "x0,action,reward,pscore\n1,1,1,1\n"))
        self.assertEqual(logs.categorical, {})
        self.assertIsNone(logs.positions)
        from optower_client import LogData
        made = LogData(logs.contexts, logs.actions, logs.rewards, logs.pscores)
        self.assertEqual(made.categorical, {})
        self.assertIsNone(made.positions)
        again = LogData(logs.contexts, logs.actions, logs.rewards, logs.pscores)
        self.assertIsNot(made.categorical, again.categorical)  # a fresh {} each time

    def test_categorical_id_from_text(self):
        from optower_client import categorical_id_from_text as cid
        self.assertEqual(cid("81ce123cbb5bd8ce818f60fb3586bba5"), 1391621094805402735)
        self.assertEqual(cid(b"81ce123cbb5bd8ce818f60fb3586bba5"), 1391621094805402735)
        self.assertEqual(cid("-17"), -17)
        self.assertEqual(cid("+17"), 17)
        self.assertEqual(cid("1_000"), cid(b"1_000"))  # not an integer to absl: hashed
        self.assertNotEqual(cid("1_000"), 1000)
        self.assertNotEqual(cid("\u0661"), 1)  # ARABIC-INDIC DIGIT ONE: hashed, not 1

    def test_items_table(self):
        from optower_client import read_items_csv, read_items_table
        path = self.write_bytes("items_cat.csv", self.items_with_cells())
        table = read_items_table(path)
        self.assertEqual(table.ids.tolist(), list(range(1, len(ITEM_CELLS) + 1)))
        self.assertEqual(table.features.shape, (len(ITEM_CELLS), 1))
        self.assertEqual(list(table.categorical), ["color"])
        self.assertEqual(table.categorical["color"], [ids for _, ids in ITEM_CELLS])
        ids, features = read_items_csv(path)  # the c: column is read but not returned
        np.testing.assert_array_equal(ids, table.ids)
        np.testing.assert_array_equal(features, table.features)
        self.assertEqual(read_items_table(self.write("plain.csv", "item\n5\n")).categorical, {})
        only = read_items_table(self.write("only.csv", "item,c:a,c:b\n5,x,\n6,,1|2\n"))
        self.assertEqual(only.features.shape, (2, 0))
        self.assertEqual(only.categorical["b"], [[], [1, 2]])

    def test_bad_items_give_the_cpp_messages(self):
        from optower_client import CsvError, read_items_csv, read_items_table
        for i, (text, expected) in enumerate(BAD_ITEMS):
            path = self.write(f"bad_items{i}.csv", text)
            for read in (read_items_csv, read_items_table):
                with self.subTest(text=text[:40], read=read.__name__):
                    with self.assertRaises(CsvError) as caught:
                        read(path)
                    self.assertEqual(str(caught.exception), f"{path}:{expected}")

    def write_bytes(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    @staticmethod
    def items_with_cells():
        return b"item,f0,c:color\n" + b"".join(
            b"%d,0.5,%s\n" % (i + 1, cell) for i, (cell, _) in enumerate(ITEM_CELLS))

    def logs_for_training(self):
        rows = "".join(f"{i * 0.1},{i % len(ITEM_CELLS) + 1},{i % 2},0.5\n" for i in range(12))
        return self.write("train_logs.csv", "x0,action,reward,pscore\n" + rows)


class CppAgreesTest(unittest.TestCase):
    """Runs the C++ reader (`optower train`) on every case (needs --optower-bin)."""

    def setUp(self):
        if OPTOWER_BIN is None:
            self.skipTest("no --optower-bin")
        self.dir = tempfile.mkdtemp(prefix="optower_pylogs_cpp_")
        self.out = os.path.join(self.dir, "model")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    write = ReadLogsCsvTest.write
    write_bytes = ReadLogsCsvTest.write_bytes

    def test_cpp_logs_messages(self):
        items = self.write("items.csv", "item,f0\n1,0\n2,0\n3,0\n")
        # The CLI names the catalog by its path, the cases by "items.csv".
        cases = [(self.write(f"bad{i}.csv", text), text, expected)
                 for i, (text, expected) in enumerate(BAD_LOGS)
                 if "is not an item in" not in expected]
        self.check_messages(cases, lambda path: run_optower(path, items, path + ".model"))

    def test_cpp_items_messages(self):
        logs = self.write("logs.csv", "x0,action,reward,pscore\n1,1,1,1\n")
        cases = [(self.write(f"bad_items{i}.csv", text), text, expected)
                 for i, (text, expected) in enumerate(BAD_ITEMS)]
        self.check_messages(cases, lambda path: run_optower(logs, path, path + ".model"))

    def check_messages(self, cases, run):
        """`run(path)` for every (path, text, expected) case, 4 at a time (the CLI takes ~0.5 s
        to start), compared with "<path>:<expected>"."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(run, [path for path, _, _ in cases]))
        for (path, text, expected), message in zip(cases, got):
            with self.subTest(text=text[:40]):
                self.assertEqual(message, f"{path}:{expected}")

    def test_cpp_item_ids(self):
        from optower_client import read_items_table
        items = self.write_bytes("items_cat.csv", ReadLogsCsvTest.items_with_cells())
        logs = ReadLogsCsvTest.logs_for_training(self)
        self.assertIsNone(run_optower(logs, items, self.out))
        written = read_items_table(os.path.join(self.out, "items.csv"))  # ids as integers
        self.assertEqual(written.categorical, read_items_table(items).categorical)
        self.assertEqual(written.categorical["color"], [ids for _, ids in ITEM_CELLS])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--gen-dir", required=True, help="<build>/client/python/gen")
    parser.add_argument("--optower-bin", help="the C++ CLI (build/cli/optower): also check that "
                        "it gives the expected messages")
    parser.add_argument("--client-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "client", "python"))
    args, rest = parser.parse_known_args()
    OPTOWER_BIN = args.optower_bin and os.path.abspath(args.optower_bin)
    sys.path[:0] = [os.path.abspath(args.gen_dir), os.path.abspath(args.client_dir)]
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
