"""Pretrained weights: registry, download into the cache by hash, and `lqm download`.

A tiny ReActNet-18's weights are served from a local HTTP server on 127.0.0.1, the mirror
that `LQM_WEIGHTS_URL` names; `LQM_CACHE_DIR` points at an empty folder per test.
"""

import functools
import http.server
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from cli.main import lqm
from larq_methods.method import Method
from tests.helpers import perturb
from zoo import pretrained

MODEL = "reactnet-18"
FILE = "reactnet-18-fashion_mnist.h5"


class Server:
    """A static-file HTTP server on 127.0.0.1 in a thread; records the paths asked for."""

    def __init__(self, folder):
        requests = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                requests.append(self.path)

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder holding a tiny model's weights file, and those weights."""
    folder = tmp_path_factory.mktemp("mirror")
    model = perturb(zoo.create_model(MODEL, input_shape=(28, 28, 1), alpha=0.125, num_classes=10))
    model.save_weights(folder / FILE)
    return folder, [w.numpy() for w in model.weights]


def entry(folder, **changes):
    return {
        "model": MODEL, "dataset": "fashion_mnist", "file": FILE,
        "sha256": pretrained.sha256(folder / FILE), "accuracy": 0.5,
        "recipe": {"epochs": 1, "method": Method().as_dict()}, "date": "2025-01-01",
        "alpha": 0.125, "input_shape": [28, 28, 1], "num_classes": 10, **changes,
    }  # fmt: skip


@pytest.fixture
def registry(tmp_path, monkeypatch, trained):
    """Registers the tiny weights; returns a function that rewrites their entry."""
    path = tmp_path / "registry.json"
    monkeypatch.setattr(pretrained, "REGISTRY_FILE", path)
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))

    def write(**changes):
        path.write_text(json.dumps([entry(trained[0], **changes)]))

    write()
    return write


@pytest.fixture
def server(trained, monkeypatch):
    server = Server(trained[0])
    monkeypatch.setenv(pretrained.URL_ENV, server.url)
    yield server
    server.stop()


@pytest.fixture
def closed_port_url(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    monkeypatch.setenv(pretrained.URL_ENV, url)
    return url


def cached_files(tmp_path):
    cache = tmp_path / "cache"
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_into_empty_cache_then_load_from_cache_with_the_server_stopped(registry, server, trained, tmp_path):
    assert cached_files(tmp_path) == []
    path = pretrained.fetch(MODEL, "fashion_mnist")
    assert path == tmp_path / "cache" / FILE
    assert path.read_bytes() == (trained[0] / FILE).read_bytes()
    assert server.requests == [f"/{FILE}"]

    server.stop()
    assert pretrained.fetch(MODEL, "fashion_mnist") == path
    # shape, classes, width and method default to the entry's
    model = zoo.create_model(MODEL, weights="fashion_mnist")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    for loaded, saved in zip(model.weights, trained[1], strict=True):
        np.testing.assert_array_equal(loaded.numpy(), saved)
    assert server.requests == [f"/{FILE}"]


def test_wrong_hash_is_removed_and_reported(registry, server, trained, tmp_path):
    registry(sha256="0" * 64)
    actual = pretrained.sha256(trained[0] / FILE)
    with pytest.raises(zoo.WeightsError, match=f"has sha256 {actual}, not the registered {'0' * 64}"):
        pretrained.fetch(MODEL, "fashion_mnist")
    assert cached_files(tmp_path) == []


def test_a_changed_cached_file_is_downloaded_again(registry, server, trained, tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / FILE).write_bytes(b"truncated")
    path = pretrained.fetch(MODEL, "fashion_mnist")
    assert path.read_bytes() == (trained[0] / FILE).read_bytes()
    assert server.requests == [f"/{FILE}"]


def test_unreachable_server_is_one_clear_error(registry, closed_port_url, tmp_path):
    with pytest.raises(zoo.WeightsError, match=rf"cannot download {closed_port_url}{FILE} \(the mirror in \$LQM_WEIGHTS_URL\): .*refused"):
        pretrained.fetch(MODEL, "fashion_mnist")
    assert cached_files(tmp_path) == []


def test_unknown_names_are_one_clear_error(registry, tmp_path):
    with pytest.raises(zoo.WeightsError, match="no pretrained weights for 'reactnet-a'; did you mean 'reactnet-18'"):
        pretrained.get("reactnet-a", "fashion_mnist")
    with pytest.raises(zoo.WeightsError, match="no 'fashion-mnist' weights for reactnet-18; did you mean 'fashion_mnist'"):
        zoo.create_model(MODEL, weights="fashion-mnist")
    with pytest.raises(zoo.UnknownModelError, match="did you mean 'reactnet-18'"):
        zoo.create_model("reactnet18", weights="fashion_mnist")
    with pytest.raises(ValueError, match="the path to a weights file; '.*absent.h5' is neither"):
        zoo.create_model(MODEL, weights=str(tmp_path / "absent.h5"))


def test_arguments_the_weights_do_not_fit_are_refused(registry):
    with pytest.raises(zoo.WeightsError, match="trained with num_classes=10, not 5"):
        zoo.create_model(MODEL, weights="fashion_mnist", num_classes=5)
    with pytest.raises(zoo.WeightsError, match="trained with method="):
        zoo.create_model(MODEL, weights="fashion_mnist", method=Method(groups=2))


def test_the_default_source_is_a_folder_read_through_file_urls(registry, trained, monkeypatch):
    monkeypatch.delenv(pretrained.URL_ENV, raising=False)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", trained[0])
    assert pretrained.get(MODEL, "fashion_mnist").url == (trained[0] / FILE).as_uri()
    assert pretrained.fetch(MODEL, "fashion_mnist").read_bytes() == (trained[0] / FILE).read_bytes()
    monkeypatch.setenv(pretrained.URL_ENV, str(trained[0]))  # a folder works as a mirror too
    assert pretrained.base_url() == trained[0].as_uri() + "/"


def test_the_shipped_registry_lists_files_that_ship_with_their_hash():
    for weights in pretrained.entries():
        zoo.get_entry(weights.model)
        path = pretrained.WEIGHTS_DIR / weights.file
        assert path.is_file(), f"{weights.file} is registered but not in {pretrained.WEIGHTS_DIR}"
        assert pretrained.sha256(path) == weights.sha256, weights.file
        assert 0 <= weights.accuracy <= 1 and len(weights.input_shape) == 3
        Method(**weights.recipe.get("method", {}))


def run(*args):
    return CliRunner().invoke(lqm, [str(a) for a in args], catch_exceptions=False)


def assert_one_error(result, *fragments):
    """Exit code 1, nothing on stdout, and one `Error:` line, the last on stderr (after
    any download progress)."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("Error: ")] == lines[-1:], result.stderr
    for fragment in fragments:
        assert fragment in lines[-1]


def test_cli_download(registry, server, tmp_path):
    result = run("download", MODEL)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{MODEL} fashion_mnist: top-1 accuracy 0.5000 (2025-01-01) {tmp_path / 'cache' / FILE}\n"
    assert run("download", "--all").stdout == result.stdout
    assert server.requests == [f"/{FILE}"]  # the second came from the cache


def test_cli_download_errors(registry, server, trained, tmp_path, monkeypatch):
    assert_one_error(run("download", "reactnet-19"), "unknown model 'reactnet-19'; did you mean 'reactnet-18'")
    assert_one_error(run("download", "reactnet-a"), "no pretrained weights for 'reactnet-a'")
    assert_one_error(run("download", MODEL, "--dataset", "cifar10"), "no 'cifar10' weights for reactnet-18")
    assert run("download").exit_code == 2  # neither a MODEL nor --all
    registry(sha256="0" * 64)
    assert_one_error(run("download", MODEL), "has sha256", "removed")
    server.stop()
    registry()
    assert_one_error(run("download", MODEL), "cannot download", "refused")
    assert cached_files(tmp_path) == []


# -- packed weights -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reactnet-18", "rebnn-resnet18", "insta-quicknet"])
def test_packed_weights_keep_every_binary_kernel(name, tmp_path):
    import tensorflow as tf

    from larq_methods import costs

    kwargs = dict(input_shape=(28, 28, 1), alpha=0.125, num_classes=10)
    model = perturb(zoo.create_model(name, **kwargs))
    pretrained.save_packed(model, tmp_path / "w.npz")
    copy = zoo.create_model(name, weights=str(tmp_path / "w.npz"), **kwargs)
    checked = 0
    for layer, twin in zip(costs.flat_layers(model), costs.flat_layers(copy)):
        if hasattr(layer, "kernel") and costs.has_binary_kernel(layer):
            w, w2 = layer.kernel.numpy(), twin.kernel.numpy()
            np.testing.assert_array_equal(w >= 0, w2 >= 0)  # the same signs
            # the same mean |w| per output channel: larq's magnitude-aware scale
            np.testing.assert_allclose(np.abs(w2).mean((0, 1, 2)), np.abs(w).mean((0, 1, 2)), rtol=1e-5)
            assert np.unique(np.abs(w2[..., 0])).size == 1  # one magnitude per channel
            quantize = tf.keras.layers.Lambda(lambda k, q=layer.kernel_quantizer: q(k))
            np.testing.assert_allclose(quantize(w2).numpy(), quantize(w).numpy(), rtol=1e-5, atol=1e-7)
            checked += 1
        else:
            for a, b in zip(layer.weights, twin.weights):
                np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    assert checked > 0
    assert (tmp_path / "w.npz").stat().st_size < sum(w.numpy().nbytes for w in model.weights) / 5


def test_packed_weights_of_another_model_are_refused(tmp_path):
    kwargs = dict(input_shape=(28, 28, 1), num_classes=10)
    pretrained.save_packed(zoo.create_model("reactnet-18", alpha=0.125, **kwargs), tmp_path / "w.npz")
    with pytest.raises(pretrained.WeightsError, match="holds .* weights; the model has"):
        zoo.create_model("insta-resnet18", alpha=0.125, weights=str(tmp_path / "w.npz"), **kwargs)
    with pytest.raises(pretrained.WeightsError, match="has shape"):
        zoo.create_model("reactnet-18", alpha=0.25, weights=str(tmp_path / "w.npz"), **kwargs)


def test_evaluate_a_model_name_uses_its_pretrained_weights(registry, server, tiny_fashion_mnist):
    result = run("evaluate", MODEL, "--data-dir", str(tiny_fashion_mnist))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["examples"] == 20
    assert server.requests == [f"/{FILE}"]
    assert_one_error(run("evaluate", "no-such-model", "--data-dir", str(tiny_fashion_mnist)), "unknown model")


# -- the shipped weights ------------------------------------------------------------------


def test_a_registry_not_written_yet_has_no_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "REGISTRY_FILE", tmp_path / "registry.json")
    assert pretrained.entries() == []
    with pytest.raises(pretrained.WeightsError, match="none are registered yet"):
        pretrained.get(MODEL)


ROOT = Path(__file__).resolve().parent.parent


def test_every_shipped_file_is_a_finished_study_run():
    """No one-epoch weights remain: each shipped file is the packed weights of one finished
    (model, seed) of the earlier studies (kept under benchmarks/results/, the study or a longer
    one), byte for byte, registered with that run's recipe; or of an `lqm compare` run
    (`test_a_shipped_compare_run_is_its_models_selected_run`)."""
    shipped = pretrained.entries()
    assert {"reactnet-18", "reactnet-a", "float-resnet18", "float-mobilenet"} <= {w.model for w in shipped}
    for weights in shipped:
        run = ROOT / weights.recipe["run"]
        if "compare" in weights.recipe:
            continue
        assert run.parent.parent == ROOT / "benchmarks" / "results" and run.name == f"{weights.model}-s{weights.recipe['seed']}"
        record = json.loads((run / "results.json").read_text())
        assert pretrained.sha256(run / "model.npz") == weights.sha256, weights.model
        assert (weights.recipe["recipe"], weights.recipe["epochs"], weights.recipe["code"]) == ("paper", record["epochs_per_step"], record.get("code", "?"))
        assert weights.recipe["method"] == record["method"]
        assert abs(weights.accuracy - record["accuracy"]) <= 0.002  # packed: what inference uses


COMPARED = [w.model for w in pretrained.entries() if "compare" in w.recipe]


@pytest.mark.parametrize("name", COMPARED)
def test_a_shipped_compare_run_is_its_models_selected_run(name, tmp_path):
    """Weights published from an `lqm compare` folder: its model's selected run (the best
    validation accuracy of its seeds, as the report says), packed from that run's model.h5,
    registered with the run's recipe and its test figure (measured once, by compare)."""
    from larq_methods import saving
    from zoo.compare import select_run

    weights = pretrained.get(name)
    folder, run = ROOT / weights.recipe["compare"], ROOT / weights.recipe["run"]
    assert run.parent == folder and folder.parent == ROOT / "benchmarks" / "results" / "compare"
    report = json.loads((folder / "report.json").read_text())
    best = select_run([r for r in report["runs"] if r["model"] == name])
    assert run.name == best["run"] == next(m["selected_run"] for m in report["models"] if m["model"] == name)
    assert weights.recipe["chosen_by"].startswith("best validation accuracy of seeds 0-")
    config = json.loads((run / "config.json").read_text())
    assert (weights.recipe["seed"], weights.recipe["epochs"]) == (config["seed"], config["recipe"]["epochs"])
    assert weights.recipe["method"] == config["method"] and weights.alpha == config["alpha"]
    assert weights.recipe["validation_accuracy"] == json.loads((run / "results.json").read_text())["eval_accuracy"]
    assert abs(weights.accuracy - json.loads((run / "test.json").read_text())["accuracy"]) <= 0.002  # packed
    pretrained.save_packed(saving.load_model(run / "model.h5"), tmp_path / "w.npz")
    shipped, packed = np.load(pretrained.WEIGHTS_DIR / weights.file), np.load(tmp_path / "w.npz")
    assert shipped.files == packed.files
    for key in shipped.files:
        np.testing.assert_array_equal(shipped[key], packed[key], err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reactnet-18", "reactnet-a", "insta-resnet18", "insta-plus-resnet18", "float-mobilenet"])
def test_shipped_weights_reproduce_their_accuracy(name, real_fashion_mnist, tmp_path, monkeypatch):
    """`lqm evaluate NAME` fetches the shipped file (the default source) into an empty cache
    and measures the accuracy registered for it, within 0.1 point."""
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(pretrained.URL_ENV, raising=False)
    result = run("evaluate", name, "--data-dir", real_fashion_mnist)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["examples"] == 10_000
    assert abs(report["accuracy"] - pretrained.get(name).accuracy) <= 0.001
