"""`lqm search-af`: the GAAF genetic search from the command line.

Most tests replace the proxy training by a quick stand-in (a real one takes half a minute
per genome on a small CPU); the slow test runs the real one.
"""

import inspect
import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import lqm
from larq_methods import training
from larq_methods.methods import gaaf
from larq_methods.method import Method
from tests.test_cli import assert_one_line_error
from zoo import search as zoo_search


def run(*args):
    return CliRunner().invoke(lqm, ["search-af", *map(str, args)], catch_exceptions=False)


def tiny(data_dir, log, generations, *more):
    """Options of a tiny search: 30 images to train on, 10 to score, 4 genomes kept."""
    return run(
        "--data-dir", data_dir, "--train-split", "train[:30]", "--eval-split", "train[30:]",
        "--population", 4, "--children", 3, "--generations", generations, "--log", log, *more,
    )  # fmt: skip


@pytest.fixture
def evaluated(monkeypatch):
    """Replaces the proxy training by a quick deterministic fitness; the genomes it is
    asked to evaluate collect in the returned list."""
    calls = []
    real = zoo_search.proxy_fitness

    def stand_in(*args, **kwargs):
        inspect.signature(real).bind(*args, **kwargs)  # called as the real one would be

        def fitness(genome):
            calls.append(str(genome))
            return (7 * genome.unary1 + 3 * genome.unary2 + genome.binary) % 23 / 23

        return fitness

    monkeypatch.setattr(zoo_search, "proxy_fitness", stand_in)
    return calls


def records(log):
    """The log's configuration and evaluation records."""
    config, *rest = (json.loads(line) for line in log.read_text().splitlines())
    return config, rest


def table(result):
    """The final table's rows, as (rank, genome, accuracy, generation)."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["rank", "genome", "accuracy", "generation"])
    return [tuple(line.split()) for line in lines[start + 1 : -1]]


def test_two_generations_then_a_resume_that_skips_logged_genomes(tmp_path, tiny_fashion_mnist, evaluated):
    log = tmp_path / "search.jsonl"
    first = tiny(tiny_fashion_mnist, log, 1)
    assert first.exit_code == 0, first.output
    config, logged = records(log)
    assert config["config"]["backbone"] == "reactnet-18" and config["config"]["population"] == 4
    assert [r["genome"] for r in logged] == evaluated and len(set(evaluated)) == len(evaluated)
    assert {r["generation"] for r in logged} == {0, 1}
    done = list(evaluated)

    second = tiny(tiny_fashion_mnist, log, 2)  # one generation more
    assert second.exit_code == 0, second.output
    assert f"resuming {log} ({len(done)} genomes evaluated)" in second.stdout
    new = evaluated[len(done) :]
    assert 0 < len(new) <= 3 and not set(new) & set(done)  # only generation 2's children
    _, logged = records(log)
    assert [r["genome"] for r in logged] == done + new
    assert {r["generation"] for r in logged[len(done) :]} == {2}
    assert f"{len(new)} genomes evaluated now, {len(logged)} in all." in second.stdout

    # The resumed search ends as an uninterrupted one does, and a finished one reruns alone.
    whole = tiny(tiny_fashion_mnist, tmp_path / "whole.jsonl", 2)
    assert table(whole) == table(second) and len(table(second)) == 4
    count = len(evaluated)
    again = tiny(tiny_fashion_mnist, log, 2)
    assert table(again) == table(second) and len(evaluated) == count


def test_ctrl_c_in_a_proxy_training_stops_the_search_with_its_resume_line(tmp_path, tiny_fashion_mnist, monkeypatch):
    """Ctrl-C while a genome trains (its run raises `Interrupted`, checkpointed in a
    temporary folder that is removed): the search stops with the option that resumes it,
    and the genomes scored before are in the log."""
    trained = []

    def stand_in(config, run_dir, **kwargs):
        trained.append(config.method.gaaf)
        if len(trained) == 3:
            raise training.Interrupted(f"interrupted during epoch 1; its state is checkpointed in {run_dir}/checkpoints")
        Path(run_dir).mkdir(parents=True)
        training.append_history(Path(run_dir) / "history.csv", {"epoch": 0, "val_accuracy": len(trained) / 10})

    monkeypatch.setattr(zoo_search, "run", stand_in)
    log = tmp_path / "search.jsonl"
    result = tiny(tiny_fashion_mnist, log, 1)
    assert result.exit_code == 1 and result.stdout.startswith("GAAF search:"), result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]  # beside the progress bar
    assert errors == [f"Error: interrupted; resume with the same options and --log {log}"], result.stderr
    assert [r["genome"] for r in records(log)[1]] == trained[:2]


def test_table_and_best_command(tmp_path, tiny_fashion_mnist, evaluated):
    result = tiny(tiny_fashion_mnist, tmp_path / "search.jsonl", 2, "--top", 3)
    assert result.exit_code == 0, result.output
    rows = table(result)
    assert [rank for rank, *_ in rows] == ["1", "2", "3"]
    accuracies = [float(accuracy) for _, _, accuracy, _ in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    logged = {r["genome"]: r for r in records(tmp_path / "search.jsonl")[1]}
    for _, genome, accuracy, generation in rows:
        assert float(accuracy) == pytest.approx(logged[genome]["fitness"], abs=1e-4)
        assert int(generation) == logged[genome]["generation"]

    best = result.stdout.splitlines()[-1]
    assert best.startswith("Best: lqm train reactnet-18 --gaaf ")
    argv = shlex.split(best.removeprefix("Best: "))
    assert argv[:4] == ["lqm", "train", "reactnet-18", "--gaaf"]
    assert argv[5:] == ["--data-dir", str(tiny_fashion_mnist)]
    genome = gaaf.Genome.parse(argv[4])
    assert str(genome) == rows[0][1]
    assert Method(gaaf=argv[4]).gaaf == argv[4]


def test_a_log_of_another_configuration_is_refused(tmp_path, tiny_fashion_mnist, evaluated):
    log = tmp_path / "search.jsonl"
    assert tiny(tiny_fashion_mnist, log, 1).exit_code == 0
    before, count = log.read_text(), len(evaluated)
    assert_one_line_error(
        tiny(tiny_fashion_mnist, log, 1, "--alpha", 0.5, "--seed", 3),
        f"search log {log} was written with alpha=0.25 (now 0.5), seed=0 (now 3)",
    )
    assert_one_line_error(tiny(tiny_fashion_mnist, log, 1, "--population", 5), "population=4 (now 5)")
    assert log.read_text() == before and len(evaluated) == count

    log.write_text('{"genome": "add(sin,x)", "fitness": 0.5, "generation": 0}\n')
    assert_one_line_error(tiny(tiny_fashion_mnist, log, 1), "has no configuration line")
    log.write_text("not json\n")
    assert_one_line_error(tiny(tiny_fashion_mnist, log, 1), f"{log} line 1 is not a GAAF search record")
    assert len(evaluated) == count


def test_authors_ga_is_the_default_and_its_options_are_logged(tmp_path, tiny_fashion_mnist, evaluated):
    log = tmp_path / "search.jsonl"
    assert tiny(tiny_fashion_mnist, log, 1).exit_code == 0
    config = records(log)[0]["config"]
    assert (config["selection"], config["admit_above"], config["schedule"], config["early_stop_below"]) == ("authors", 0.11, "linear", 0.0)
    authors = tiny(tiny_fashion_mnist, tmp_path / "code.jsonl", 1, "--backbone", "resnete-18", "--learning-rate", 5e-3,
                   "--schedule", "step", "--early-stop-below", 0.11, "--selection", "uniform")  # fmt: skip
    assert authors.exit_code == 0, authors.output
    config = records(tmp_path / "code.jsonl")[0]["config"]
    assert (config["backbone"], config["schedule"], config["selection"]) == ("resnete-18", "step", "uniform")
    assert authors.stdout.splitlines()[-1].startswith("Best: lqm train resnete-18 --gaaf ")


def test_a_first_population_that_cannot_be_filled_is_one_line(tmp_path, tiny_fashion_mnist, monkeypatch):
    monkeypatch.setattr(zoo_search, "proxy_fitness", lambda *a, **k: lambda genome: 0.1)
    log = tmp_path / "search.jsonl"
    result = tiny(tiny_fashion_mnist, log, 1)  # after its header and progress bar
    assert result.exit_code == 1 and result.stderr.strip().splitlines()[-1] == (
        f"Error: only 0 of 40 random genomes scored above 0.11: the proxy training fails (try a lower "
        f"learning rate); the log {log} keeps what was evaluated"
    )
    assert len(records(log)[1]) == 40


def test_bad_options_give_one_line(tmp_path, tiny_fashion_mnist, evaluated):
    log = tmp_path / "search.jsonl"
    assert_one_line_error(
        tiny(tiny_fashion_mnist, log, 1, "--backbone", "insta-resnet18"),
        "insta-resnet18 is a named model", "reactnet-18",
    )  # fmt: skip
    assert_one_line_error(tiny(tiny_fashion_mnist, log, 1, "--backbone", "reactnet-19"), "unknown model", "did you mean")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(tiny(empty, log, 1), "Fashion-MNIST not found")
    assert_one_line_error(tiny(tiny_fashion_mnist, tmp_path, 1), "cannot write", "it is a folder")
    assert not log.exists() and evaluated == []


@pytest.mark.slow
def test_real_proxy_training_two_generations_and_resume(tmp_path, tiny_fashion_mnist):
    log = tmp_path / "search.jsonl"
    options = [
        "--data-dir", tiny_fashion_mnist, "--train-split", "train[:30]", "--eval-split", "train[30:]",
        "--alpha", 0.125, "--batch-size", 10, "--population", 2, "--children", 1, "--log", log,
        "--seed", 1, "--admit-above", 0,  # 10 random images to score on: any accuracy above 0
    ]  # fmt: skip
    first = run(*options, "--generations", 1)
    assert first.exit_code == 0, first.output
    _, logged = records(log)
    assert len(logged) >= 2
    # A genome whose sign is constant (gate(sigmoid,cube) > 0) may diverge: it ranks last.
    assert all(0 <= r["fitness"] <= 1 or r["fitness"] == -math.inf for r in logged)
    second = run(*options, "--generations", 2)
    assert second.exit_code == 0, second.output
    _, resumed = records(log)
    assert resumed[: len(logged)] == logged and len(resumed) <= len(logged) + 1
    best = shlex.split(second.stdout.splitlines()[-1].removeprefix("Best: "))[4]
    assert Method(gaaf=best).gaaf == str(gaaf.Genome.parse(best))


@pytest.mark.slow
def test_proxy_fitness_scores_a_constant_sign_nan_without_a_message(tiny_fashion_mnist, capfd):
    """max(x^2, s) >= s = 1 keeps every binary activation at +1: BatchNorm then divides by a
    variance of ~0 and the gradients overflow. The proxy stops and scores NaN quietly, and a
    genome that does train gets its accuracy."""
    config = zoo_search.proxy_config(
        "reactnet-18", data_dir=str(tiny_fashion_mnist), train_split="train[:30]", eval_split="train[30:]",
        alpha=0.125, epochs=2, batch_size=10,
    )  # fmt: skip
    fitness = zoo_search.proxy_fitness(config)
    assert math.isnan(fitness(gaaf.Genome.parse("max(square,const)")))
    assert 0 <= fitness(gaaf.Genome.parse("add(x,zero)")) <= 1
    assert "Invalid loss" not in capfd.readouterr().out


@pytest.mark.slow
def test_the_authors_proxy_network_trains(tiny_fashion_mnist):
    """ResNetE-18 with Adam 5e-3, the step schedule and the early stop."""
    config = zoo_search.proxy_config(
        "resnete-18", data_dir=str(tiny_fashion_mnist), train_split="train[:30]", eval_split="train[30:]",
        alpha=0.125, epochs=2, batch_size=10, learning_rate=5e-3, schedule="step",
    )  # fmt: skip
    fitness = zoo_search.proxy_fitness(config, early_stop_below=0.11)
    assert 0 <= fitness(gaaf.Genome.parse("add(x,zero)")) <= 1


def test_early_stop_below_a_best_accuracy_and_the_step_schedule():
    class Model:
        stop_training = False

    stop = zoo_search._StopBelow(0.2)
    stop.model = Model()
    stop.on_epoch_end(0, {"val_accuracy": 0.25})
    stop.on_epoch_end(1, {"val_accuracy": 0.1})  # the best so far is what counts
    assert not stop.model.stop_training
    low = zoo_search._StopBelow(0.2)
    low.model = Model()
    low.on_epoch_end(0, {"val_accuracy": 0.19})
    assert low.model.stop_training
    rate = gaaf.step_decay(5e-3, steps_per_epoch=10)
    # the code's regime: 5e-3, then 1e-3 from epoch 80, 5e-4 from 150, ..., 1e-5 from 270
    got = [float(rate(step)) for step in (0, 799, 800, 1500, 2000, 2400, 2700)]
    np.testing.assert_allclose(got, [5e-3, 5e-3, 1e-3, 5e-4, 1e-4, 5e-5, 1e-5], rtol=1e-6)
