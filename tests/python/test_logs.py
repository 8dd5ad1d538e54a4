#!/usr/bin/python3
"""optower_client.read_logs_csv / read_items_csv: arrays, and the C++ readers' messages
(core/base/csv_io.cc) word for word. The expected messages below were produced by the C++ reader
(`optower train --logs FILE`) on the same inputs.

    /usr/bin/python3 tests/python/test_logs.py --gen-dir build/client/python/gen
"""

import argparse
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np

LOGS_HEADER = "x0,...,x{D-1},action,reward,pscore"

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
]


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


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--gen-dir", required=True, help="<build>/client/python/gen")
    parser.add_argument("--client-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "client", "python"))
    args, rest = parser.parse_known_args()
    sys.path[:0] = [os.path.abspath(args.gen_dir), os.path.abspath(args.client_dir)]
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
