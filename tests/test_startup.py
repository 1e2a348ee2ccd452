"""Start-up: help, usage errors and the model list answer without importing TensorFlow, from
a catalogue that matches the library."""

import json
import subprocess
import sys

from click.testing import CliRunner

from cli import catalogue

# Each invocation in a fresh interpreter: (arguments, exit code, text its output contains).
INVOCATIONS = [
    ("--help", 0, "Commands:"),
    ("--version", 0, "lqm, version"),
    ("train --help", 0, "[static|insta|insta+|dynamic|none|ste]"),
    ("search-af --help", 0, "[authors|uniform]"),
    ("convert --help", 0, "[raw|scaled]"),
    ("evaluate --help", 0, "--skip-bad-images"),
    ("predict --help", 0, "--top-k"),
    ("benchmark --help", 0, "--indirect-bgemm"),
    ("download --help", 0, "--all"),
    ("compare --help", 0, "--validation-split"),
    ("compare -o cmp", 2, "Missing argument 'MODEL...'"),
    ("models", 0, "reactnet-18"),
    ("models no-such-*", 1, "Error: no model matches"),
    ("train", 2, "missing MODEL"),  # a usage error inside `one_line_errors`
]

CHILD = """
import sys
from click.testing import CliRunner
from cli.main import lqm

args, code, text = sys.argv[1].split(), int(sys.argv[2]), sys.argv[3]
result = CliRunner().invoke(lqm, args)
assert result.exit_code == code, (result.exit_code, result.output, result.exception)
assert text in result.output, result.output
print(sorted(m for m in ("tensorflow", "larq", "larq_methods", "zoo") if m in sys.modules))
"""


def test_help_usage_errors_and_the_model_list_do_not_import_tensorflow():
    for args, code, text in INVOCATIONS:
        proc = subprocess.run([sys.executable, "-c", CHILD, args, str(code), text], capture_output=True, text=True)
        assert proc.returncode == 0, f"lqm {args}: {proc.stderr[-2000:]}"
        assert proc.stdout.split() == ["[]"], f"lqm {args} imported {proc.stdout}"


def test_the_catalogue_is_the_librarys():
    # On failure: `python -m cli.catalogue` rewrites cli/catalogue.json from the library.
    assert json.loads(catalogue.FILE.read_text()) == json.loads(json.dumps(catalogue.build()))
    # `lqm models` reads the library's own weights registry
    from zoo import pretrained

    assert catalogue.REGISTRY == pretrained.REGISTRY_FILE
    assert catalogue.pretrained() == json.loads(pretrained.REGISTRY_FILE.read_text())


def test_library_errors_stay_one_line_errors_once_imported():
    from cli.main import lqm

    result = CliRunner().invoke(lqm, ["train", "no-such-model"])
    assert result.exit_code == 1 and result.output.startswith("Error: unknown model 'no-such-model'")
    assert len(result.output.strip().splitlines()) == 1
