"""Runs `lqm` command lines in one process, for tests/test_bad_inputs.py's fuzzing: a
damaged file may crash its reader (HDF5's C library), which must not take the test session
with it. Reads a JSON list of [id, argv] from the file named by argv[1]; prints one JSON
object per case: id, exit code, stdout, stderr, and the exception if it was not click's
exit. A case that runs more than 120 s is stopped and reported as a hang."""

import json
import signal
import sys

from click.testing import CliRunner

from cli.main import lqm


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("no answer after 120 s")


def main(path):
    signal.signal(signal.SIGALRM, _alarm)
    for case_id, argv in json.load(open(path)):
        signal.alarm(120)
        try:
            result = CliRunner().invoke(lqm, argv, catch_exceptions=True)
        finally:
            signal.alarm(0)
        error = result.exception if not isinstance(result.exception, SystemExit) else None
        print(json.dumps({
            "id": case_id, "exit": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
            "exception": repr(error) if error else None,
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
