"""benchmarks/study.py survives interruption: a rerun skips finished (model, seed) runs,
redoes a half-written result, resumes a half-trained run, and on a fresh clone rebuilds
the teacher from what the study kept."""

import importlib.util
import json
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("study", os.path.join(ROOT, "benchmarks", "study.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def readme_elsewhere(study, tmp_path, monkeypatch):
    """No test here writes the repository's README, whatever `--readme` does."""
    monkeypatch.setattr(study, "README", tmp_path / "not-the-README.md")


def test_jobs_train_the_twins_first_then_a_seed_of_everything_baselines_first(study):
    extras = ["insta-quicknet", "quicknet", "birealnet"]
    assert study.jobs(["insta-resnet18", "reactnet-18", "insta-mobilenet", "reactnet-a"], [0, 1], extras) == [
        ("float-mobilenet", 0), ("float-resnet18", 0),
        ("reactnet-18", 0), ("reactnet-a", 0), ("insta-resnet18", 0), ("insta-mobilenet", 0),
        ("reactnet-18", 1), ("reactnet-a", 1), ("insta-resnet18", 1), ("insta-mobilenet", 1),
        # larq-zoo's backbones: their twins, then one seed, baselines first
        ("float-birealnet", 0), ("float-quicknet", 0), ("quicknet", 0), ("birealnet", 0), ("insta-quicknet", 0),
    ]  # fmt: skip


def test_models_are_those_any_pattern_matches_in_the_studys_order(study):
    a_family = ["reactnet-a", "insta-mobilenet", "insta-plus-mobilenet", "dybnn-mobilenet"]
    assert study.select(["*mobilenet", "reactnet-a"]) == (a_family, [])
    assert study.select(["*18"]) == (list(study.FAMILIES["reactnet-18"]), [])
    assert study.select(["quicknet", "*18"]) == (list(study.FAMILIES["reactnet-18"]), ["quicknet"])
    with pytest.raises(SystemExit, match="no study model matches 'resnet50 x'"):
        study.main(["--models", "resnet50", "x", "--report"])


def test_the_best_seed_ships_and_of_a_tie_the_lowest(study):
    runs = [{"seed": 2, "accuracy": 0.9132}, {"seed": 0, "accuracy": 0.9132}, {"seed": 1, "accuracy": 0.9131}]
    assert study.best_run(runs)["seed"] == 0
    assert study.best_run(runs + [{"seed": 3, "accuracy": 0.9133}])["seed"] == 3


def test_an_interrupt_before_training_stops_with_one_line(study, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "train_run", interrupted)
    args = type("Args", (), {"out": tmp_path, "commit": False})
    with pytest.raises(SystemExit, match="^reactnet-18 seed 1: interrupted before training; rerun the same command to resume$"):
        study.train_all([("reactnet-18", 1)], args, "python benchmarks/study.py", runs=lambda *_: ("config", tmp_path / "run"))


def test_a_gain_smaller_than_a_spread_gets_a_third_seed_and_so_does_its_baseline(study):
    models = list(study.FAMILIES["reactnet-18"]) + list(study.FAMILIES["reactnet-a"])
    accuracy = {
        ("reactnet-18", 0): 0.900, ("reactnet-18", 1): 0.902,  # spread 0.2 point
        ("insta-resnet18", 0): 0.910, ("insta-resnet18", 1): 0.912,  # gain +1.0 > 0.2: done
        ("dybnn-resnet18", 0): 0.898, ("dybnn-resnet18", 1): 0.906,  # gain +0.1 < its spread 0.8
        ("rebnn-resnet18", 0): 0.899, ("rebnn-resnet18", 1): 0.9,  # gain -0.15 < the baseline's 0.2
        ("gaaf-resnet18", 0): 0.880,  # seed 1 not finished: not decided yet
        ("reactnet-a", 0): 0.84, ("reactnet-a", 1): 0.855,  # spread 1.5
        ("insta-mobilenet", 0): 0.86, ("insta-mobilenet", 1): 0.87,  # gain +1.75 > 1.5: done
        ("dybnn-mobilenet", 0): 0.85, ("dybnn-mobilenet", 1): 0.86,  # gain +0.75 < 1.5
        ("float-resnet18", 0): 0.92,
        # a third seed already finished does not change the plan
        ("reactnet-18", 2): 0.95, ("dybnn-resnet18", 2): 0.80,
    }  # fmt: skip
    records = [{"model": m, "seed": s, "accuracy": a} for (m, s), a in accuracy.items()]
    assert study.more_seeds(records, models, [0, 1]) == [
        ("reactnet-18", 2), ("reactnet-a", 2), ("dybnn-resnet18", 2), ("rebnn-resnet18", 2), ("dybnn-mobilenet", 2),
    ]  # fmt: skip
    assert study.more_seeds(records, models, [0]) == []  # one seed has no spread
    assert study.more_seeds(records, ["insta-resnet18"], [0, 1]) == []


def test_every_registered_model_but_the_search_proxy_is_in_the_study(study):
    import zoo
    from zoo import recipes

    binary = {m for m in zoo.list_models() if not recipes.is_float(m)}
    assert {m for family in (*study.FAMILIES.values(), *study.EXTRAS.values()) for m in family} == binary - {"resnete-18"}


@pytest.mark.slow
def test_study_skips_finished_runs_redoes_half_written_ones_and_resumes_then_ships(study, tmp_path, data_dir, capsys, monkeypatch):
    work, out = tmp_path / "work", tmp_path / "results" / "study"
    argv = [
        "--models", "reactnet-18", "--seeds", "0", "--epochs", "1", "--alpha", "0.125",
        "--data-dir", str(data_dir), "--work", str(work), "--out", str(out),
    ]  # fmt: skip
    study.main(argv)
    assert sorted(p.name for p in out.iterdir()) == ["float-resnet18-s0", "reactnet-18-s0"]
    record = json.loads((out / "reactnet-18-s0" / "results.json").read_text())
    assert (record["steps"], record["epochs_per_step"], len(record["curve"]), record["teacher"]) == (2, 1, 2, "float-resnet18-s0")
    assert len(record["curve_precise_bn"]) == 2 and all(0 <= a <= 1 for a in record["curve_precise_bn"])
    assert sorted(p.name for p in (out / "reactnet-18-s0").iterdir()) == [
        "config.json", "model.npz", "results.json", "step1-history.csv", "step2-history.csv",
    ]  # fmt: skip
    twin = json.loads((out / "float-resnet18-s0" / "results.json").read_text())
    assert (twin["steps"], len(twin["curve"])) == (1, 2)  # one step of both steps' epochs
    report = (tmp_path / "results" / "study.md").read_text()
    assert "| `reactnet-18` | code | 0 |" in report and (tmp_path / "results" / "study.png").exists()
    capsys.readouterr()

    # finished: nothing trains again
    stamp = (out / "float-resnet18-s0" / "results.json").stat().st_mtime_ns
    study.main(argv)
    assert "seed 0:" not in capsys.readouterr().out
    assert (out / "float-resnet18-s0" / "results.json").stat().st_mtime_ns == stamp

    # a result written halfway (no results.json) of a run killed in step 2 after its
    # last checkpoint: the run resumes (nothing left to train) and its result is redone
    (out / "reactnet-18-s0" / "results.json").unlink()
    for name in ("model.h5", "results.json", "step2/model.h5"):
        (work / "reactnet-18-s0" / name).unlink()
    shutil.rmtree(work / "reactnet-18-s0" / "step2" / "logs")
    study.main(argv)
    printed = capsys.readouterr().out
    assert "Resuming reactnet-18" in printed and "reactnet-18 seed 0:" in printed and "float-resnet18 seed 0" not in printed
    redone = json.loads((out / "reactnet-18-s0" / "results.json").read_text())
    assert {k: v for k, v in redone.items() if k != "train_seconds"} == {k: v for k, v in record.items() if k != "train_seconds"}
    capsys.readouterr()

    # a fresh clone has the kept results but no run folders: a run to do rebuilds its
    # teacher from the twin's packed weights and trains exactly as with the original
    shutil.rmtree(work)
    shutil.rmtree(out / "reactnet-18-s0")
    study.main(argv)
    printed = capsys.readouterr().out
    assert "rebuilt its teacher" in printed and "float-resnet18 seed 0" not in printed
    again = json.loads((out / "reactnet-18-s0" / "results.json").read_text())
    assert {k: v for k, v in again.items() if k != "train_seconds"} == {k: v for k, v in record.items() if k != "train_seconds"}
    capsys.readouterr()

    # a run stopped in step 2 and packed (what --commit keeps of it), on a fresh clone: the
    # rerun restores it from the pack, resumes it, finishes as before and drops the pack
    for name in ("model.h5", "results.json", "step2/model.h5"):
        (work / "reactnet-18-s0" / name).unlink()
    study.pack(work / "reactnet-18-s0", out / ".resume" / "reactnet-18-s0")
    shutil.rmtree(work)
    shutil.rmtree(out / "reactnet-18-s0")
    study.main(argv)
    printed = capsys.readouterr().out
    assert "restored" in printed and "Resuming reactnet-18" in printed and not (out / ".resume" / "reactnet-18-s0").exists()
    again = json.loads((out / "reactnet-18-s0" / "results.json").read_text())
    assert {k: v for k, v in again.items() if k not in ("train_seconds", "date")} == {
        k: v for k, v in record.items() if k not in ("train_seconds", "date")
    }

    # --publish ships the finished runs' packed weights, trains nothing, and registers the
    # accuracy that `lqm evaluate NAME` then measures
    from click.testing import CliRunner

    from cli.main import lqm
    from zoo import pretrained

    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(pretrained, "REGISTRY_FILE", weights / "registry.json")
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(pretrained.URL_ENV, raising=False)
    study.main(argv + ["--publish"])
    assert "Resuming" not in capsys.readouterr().out
    assert sorted(p.name for p in weights.iterdir()) == ["float-resnet18-fashion_mnist.npz", "reactnet-18-fashion_mnist.npz", "registry.json"]
    shipped = pretrained.get("reactnet-18")
    assert (shipped.alpha, shipped.input_shape, shipped.recipe["recipe"], shipped.recipe["steps"], shipped.recipe["epochs"]) == (0.125, (28, 28, 1), "paper", 2, 1)
    assert (shipped.recipe["teacher"], shipped.recipe["weight_decay"], shipped.recipe["seed"]) == ("float-resnet18-s0", [1e-5, 0.0], 0)
    assert shipped.recipe["run"] == str((out / "reactnet-18-s0").resolve())  # outside the repository: in full
    assert abs(shipped.accuracy - record["accuracy"]) <= 0.05  # packed kernels: what inference uses of them
    result = CliRunner().invoke(lqm, ["evaluate", "reactnet-18", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["accuracy"] == pytest.approx(shipped.accuracy, abs=1e-4)
    shipped_rows = (tmp_path / "results" / "study.md").read_text().split("## Shipped weights")[1]
    assert f"| `reactnet-18` | 0 | 2 x 1 | {100 * shipped.accuracy:.2f}% |" in shipped_rows

    # weights a longer schedule trained (a longer study's) are kept, not replaced
    registry = json.loads(pretrained.REGISTRY_FILE.read_text())
    (entry,) = [e for e in registry if e["model"] == "reactnet-18"]
    entry["recipe"].update(epochs=3, run="benchmarks/results/study10/reactnet-18-s0")
    # the same model's weights for another dataset, listed later, are not the study's
    other = json.loads(json.dumps(entry))
    other.update(dataset="mnist", file="reactnet-18-mnist.npz", accuracy=0.99)
    other["recipe"].update(epochs=9, run="elsewhere")
    pretrained.REGISTRY_FILE.write_text(json.dumps(registry + [other]))
    with monkeypatch.context() as patch:  # nothing to ship: the test split is not even loaded
        patch.setattr(study.data, "load", lambda *args, **kwargs: pytest.fail("publish loaded data with nothing to measure"))
        study.main(argv + ["--publish"])
    printed = capsys.readouterr().out
    assert "kept reactnet-18-fashion_mnist.npz: 2 x 3 epochs (benchmarks/results/study10/reactnet-18-s0)" in printed
    assert "unchanged float-resnet18-fashion_mnist.npz" in printed and "published" not in printed  # shipped already
    assert pretrained.get("reactnet-18").recipe["epochs"] == 3
    assert pretrained.get("reactnet-18", "mnist").recipe["epochs"] == 9  # untouched
    shipped_rows = (tmp_path / "results" / "study.md").read_text().split("## Shipped weights")[1]
    assert "| `reactnet-18` | 0 | 2 x 3 |" in shipped_rows and "99.00%" not in shipped_rows

    # weights of another run of the same schedule (an older seed's) are replaced
    registry = json.loads(pretrained.REGISTRY_FILE.read_text())
    (twin_entry,) = [e for e in registry if e["model"] == "float-resnet18"]
    twin_entry["recipe"]["run"], twin_entry["accuracy"] = "benchmarks/results/study/float-resnet18-s1", 0.5
    pretrained.REGISTRY_FILE.write_text(json.dumps(registry))
    study.main(argv + ["--publish"])
    assert "published float-resnet18-fashion_mnist.npz" in capsys.readouterr().out
    assert pretrained.get("float-resnet18").recipe["run"] == str((out / "float-resnet18-s0").resolve())
    assert pretrained.get("float-resnet18").accuracy == pytest.approx(twin["accuracy"], abs=5e-4)


def test_a_study_of_other_results_keeps_its_own_report(study, tmp_path, monkeypatch):
    results, readme = tmp_path / "results", tmp_path / "README.md"
    readme.write_text("<!-- study table -->\nfirst study\n<!-- /study table -->\n<!-- study10 table -->\n<!-- /study10 table -->\n<!-- shipped -->\n<!-- /shipped -->\n<!-- result -->\n<!-- /result -->\n")
    monkeypatch.setattr(study, "README", readme)
    # another study's report beside it, its shipped section stale; and a report of something else
    results.mkdir()
    (results / "study5.md").write_text("Five epochs.\n\n| model |\n" + study.SHIPPED_HEADING + "| `old` | shipped |\n")
    (results / "costs.md").write_text("| model | costs |\n")
    study.main(["--report", "--readme", "--models", "reactnet-18", "--work", str(tmp_path / "work"), "--out", str(results / "study10")])
    report = (results / "study10.md").read_text()
    made_by = report.split("Made by `")[1].split("`")[0]
    assert made_by.startswith("python benchmarks/study.py --models reactnet-18") and not {"--report", "--readme"} & set(made_by.split())  # what trains it
    assert not (results / "study.md").exists()
    assert (results / "study5.md").read_text() == "Five epochs.\n\n| model |\n" + study.SHIPPED_HEADING + study.shipped_table()
    assert report.endswith(study.SHIPPED_HEADING + study.shipped_table()) and "`old`" not in report
    assert (results / "costs.md").read_text() == "| model | costs |\n"
    filled = readme.read_text()
    assert "first study" in filled and "<!-- study10 table -->\n| model | follows |" in filled
    assert filled.split("<!-- shipped -->\n")[1] == study.shipped_table().strip("\n") + "\n<!-- /shipped -->\n<!-- result -->\n" + study.result_table() + "<!-- /result -->\n"


def test_the_table_adds_the_precise_bn_curve_where_every_seed_has_it(study):
    def record(model, seed, accuracy, curve, precise=None):
        r = {"model": model, "seed": seed, "family": "reactnet-18", "accuracy": accuracy, "curve": curve, "train_seconds": 600.0, "note": ""}
        return {**r, "curve_precise_bn": precise} if precise else r

    records = [
        record("float-resnet18", 0, 0.93, [0.92, 0.93]),
        record("reactnet-18", 0, 0.91, [0.47, 0.91], [0.90, 0.91]),
        record("reactnet-18", 1, 0.89, [0.88, 0.89], [0.89, 0.90]),
        record("insta-resnet18", 0, 0.92, [0.91, 0.92]),  # begun before PreciseBN: none
    ]
    rows = study.table(records, ["float-resnet18", "reactnet-18", "insta-resnet18"]).splitlines()
    assert rows[0].endswith("| last epochs (seed mean) | last epochs, PreciseBN (seed mean) | note |")
    assert rows[1].count("---") == 12
    assert rows[3] == (
        "| `reactnet-18` | code | 0, 1 | 90.00% | 89.00-91.00 | baseline | 93.00% | -3.00 | 10 | 67.50, 90.00 | 89.50, 90.50 |  |"
    )
    assert rows[4].endswith("| 91.00, 92.00 |  |  |")
    assert "PreciseBN" not in study.table(records[3:], ["insta-resnet18"])


def test_a_studys_folders_follow_its_epochs_and_hold_one_schedule(study, tmp_path, monkeypatch):
    assert study.folders(5) == (study.Path("runs/study"), study.Path("benchmarks/results/study"))  # the first study's
    assert study.folders(10) == (study.Path("runs/study10"), study.Path("benchmarks/results/study10"))
    # by default, the paper recipe's epochs per step (10 on Fashion-MNIST) and their folders
    monkeypatch.chdir(tmp_path)
    study.main(["--models", "reactnet-18", "--report"])
    assert (tmp_path / "runs" / "study10").is_dir() and "two steps of 10 epochs" in (tmp_path / "benchmarks" / "results" / "study10.md").read_text()
    out = tmp_path / "study10"
    for model, seed, per_step in [("float-resnet18", 0, 20), ("reactnet-18", 0, 10)]:  # a twin: one step of twice
        (out / f"{model}-s{seed}").mkdir(parents=True)
        (out / f"{model}-s{seed}" / "results.json").write_text(json.dumps({"model": model, "seed": seed, "epochs_per_step": per_step}))
    study.check_schedule(study.read_records(out), 10, out)
    with pytest.raises(SystemExit, match=r"study10 holds runs of 10 epochs per step \(float-resnet18 seed 0\), not 5: pass --epochs 10, or another --out$"):
        study.main(["--models", "reactnet-18", "--epochs", "5", "--out", str(out), "--work", str(tmp_path / "work"), "--report"])
    assert not (tmp_path / "study10.md").exists() and not (tmp_path / "work").exists()  # nothing written


def test_the_mean_gain_is_the_mean_of_the_seeds_gains_over_the_same_seeds_baseline(study):
    """A third seed of the baseline alone (`more_seeds`) leaves a two-seed model's gain as it was."""
    records = [
        {"model": model, "seed": seed, "family": "reactnet-18", "accuracy": accuracy, "curve": [accuracy], "train_seconds": 60.0, "note": ""}
        for model, seed, accuracy in [
            ("reactnet-18", 0, 0.9159), ("reactnet-18", 1, 0.9160), ("reactnet-18", 2, 0.9186),
            ("insta-resnet18", 0, 0.9201), ("insta-resnet18", 1, 0.9203),
        ]
    ]  # fmt: skip
    row = study.table(records, ["reactnet-18", "insta-resnet18"]).splitlines()[3]
    # (+0.42 + 0.43) / 2, not 92.02 - 91.68 (the baseline's three-seed mean): +0.34
    assert "| 92.02% | 92.01-92.03 | +0.42 (+0.42, +0.43) |" in row


def test_readme_blocks_are_filled_in_place_and_a_missing_one_writes_nothing(study, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- a -->\nold\nrows\n<!-- /a -->\n\nby hand\n<!-- b -->\n<!-- /b -->\nend\n")
    study.fill_readme({"a": "| new |\n", "b": "\n| b |"}, readme)
    filled = "# x\n\n<!-- a -->\n| new |\n<!-- /a -->\n\nby hand\n<!-- b -->\n| b |\n<!-- /b -->\nend\n"
    assert readme.read_text() == filled
    broken = {
        "c": filled,  # no block
        "a": filled + "<!-- a -->\n<!-- /a -->\n",  # two
        "b": filled.replace("<!-- /b -->\n", "").replace("by hand\n", "by hand\n<!-- /b -->\n"),  # end first
        "d": filled + "see <!-- d --> and <!-- /d --> inline\n",  # not lines of their own
    }
    for tag, text in broken.items():
        readme.write_text(text)
        with pytest.raises(SystemExit, match=f"needs one <!-- {tag} --> line and, after it, one <!-- /{tag} --> line"):
            study.fill_readme({"a": "| newer |", tag: "x"}, readme)
        assert readme.read_text() == text  # nothing written, not even block a


def test_the_readme_tables_are_the_reports_and_the_registry(study):
    """`benchmarks/study.py --report --readme` and
    `benchmarks/study.py --epochs 10 --models '*18' reactnet-a '*mobilenet' --work runs/study10 --out benchmarks/results/study10 --report --readme`
    and `benchmarks/study.py --epochs 15 --models reactnet-a '*mobilenet' --report --readme`
    leave README.md as it is. Against the reports, not the kept results.json: a study with
    --commit commits each run as it finishes, before anyone reports it."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()

    def block(tag):
        start, end = study.readme_block(readme, tag)
        return readme[start:end]

    for name in ("study", "study10", "study15"):
        with open(os.path.join(ROOT, "benchmarks", "results", f"{name}.md")) as f:
            report = f.read()
        table = "| model |" + report.split("\n\n| model |")[1].split("\n\n")[0]
        assert block(f"{name} table") == table + "\n"
        assert report.endswith(study.SHIPPED_HEADING + study.shipped_table())  # no report's shipped section is stale
    assert block("shipped") == study.shipped_table().strip("\n") + "\n"
    assert block("result") == study.result_table()


def test_the_result_has_each_shipped_model_from_the_study_that_ships_it(study, tmp_path, monkeypatch):
    """One row per shipped model, from its run's study, twins first in each family; gains
    against that study's baseline; a model whose study has no results has no row."""
    from zoo import pretrained

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY_FILE", tmp_path / "registry.json")
    assert study.result_table() == ""  # nothing ships
    registry = []
    for model, seed, steps, epochs, accuracy, folder in [
        ("reactnet-18", 0, 2, 10, 0.9000, "s10"), ("reactnet-18", 1, 2, 10, 0.9100, "s10"),
        ("insta-resnet18", 0, 2, 10, 0.9050, "s10"), ("insta-resnet18", 1, 2, 10, 0.9200, "s10"),
        ("reactnet-18", 0, 2, 5, 0.8000, "s5"), ("insta-resnet18", 0, 2, 5, 0.8500, "s5"),  # a shorter study's
        ("float-resnet18", 0, 1, 20, 0.9300, "s10"), ("reactnet-a", 0, 2, 15, 0.8800, "s15"),
    ]:  # fmt: skip
        run = tmp_path / folder / f"{model}-s{seed}"
        run.mkdir(parents=True)
        family = "reactnet-a" if model == "reactnet-a" else "reactnet-18"
        (run / "results.json").write_text(json.dumps({
            "model": model, "seed": seed, "family": family, "accuracy": accuracy, "curve": [accuracy - 0.01, accuracy],
            "train_seconds": 600.0, "steps": steps, "epochs_per_step": epochs, "note": "",
        }))  # fmt: skip
    for model, seed, folder in [("insta-resnet18", 1, "s10"), ("float-resnet18", 0, "s10"), ("reactnet-18", 1, "s10"), ("reactnet-a", 0, "s15"), ("dybnn-resnet18", 0, "gone")]:
        (tmp_path / f"{model}.npz").write_bytes(b"x")
        registry.append({"model": model, "dataset": "fashion_mnist", "file": f"{model}.npz", "sha256": "0" * 64, "accuracy": 0.9,
                         "recipe": {"seed": seed, "run": str(tmp_path / folder / f"{model}-s{seed}")}, "date": "2026-12-02",
                         "alpha": 0.25, "input_shape": [28, 28, 1], "num_classes": 10})  # fmt: skip
    pretrained.REGISTRY_FILE.write_text(json.dumps(registry))
    rows = study.result_table().splitlines()
    assert rows[0].startswith("| model | follows | steps x epochs | seeds | test accuracy, mean |") and rows[0].endswith("| last epochs, PreciseBN (seed mean) | note |")
    assert [row.split("`")[1] for row in rows[2:]] == ["float-resnet18", "reactnet-18", "insta-resnet18", "reactnet-a"]
    assert rows[2].startswith("| `float-resnet18` | ours | 1 x 20 | 0 | 93.00% |")
    assert rows[4].startswith("| `insta-resnet18` | paper | 2 x 10 | 0, 1 | 91.25% | 90.50-92.00 | +0.75 (+0.50, +1.00) | 93.00% | -1.75 |")
    assert rows[5].startswith("| `reactnet-a` | code | 2 x 15 | 0 | 88.00% | 88.00-88.00 | baseline | not yet |")


def test_the_shipped_table_reads_the_study_dataset_alone(study, tmp_path, monkeypatch):
    from zoo import pretrained

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY_FILE", tmp_path / "registry.json")
    assert "Gap:" not in study.shipped_table() and "Best binary" not in study.shipped_table()  # nothing ships
    (tmp_path / "reactnet-18-fashion_mnist.npz").write_bytes(b"x" * 2**19)
    (tmp_path / "reactnet-18-mnist.npz").write_bytes(b"x" * 2**20)
    entry = {"model": "reactnet-18", "file": "reactnet-18-fashion_mnist.npz", "sha256": "0" * 64, "accuracy": 0.9,
             "recipe": {"seed": 1, "steps": 2, "epochs": 10}, "date": "2026-11-30", "alpha": 0.25,
             "input_shape": [28, 28, 1], "num_classes": 10}  # fmt: skip
    other = {**entry, "file": "reactnet-18-mnist.npz", "accuracy": 0.99, "recipe": {"seed": 0, "steps": 2, "epochs": 3}}
    registry = [{**entry, "dataset": "fashion_mnist"}, {**other, "dataset": "mnist"}]
    pretrained.REGISTRY_FILE.write_text(json.dumps(registry))
    assert study._shipped() == {"reactnet-18": pretrained.get("reactnet-18")}
    rows = study.shipped_table().splitlines()
    assert rows[2] == "| `reactnet-18` | 1 | 2 x 10 | 90.00% | - |  | 0.50 | yes |" and len([r for r in rows if r.startswith("| `")]) == 1
    assert "Gap:" in study.shipped_table()


def test_a_pack_holds_what_resuming_needs_and_unpacks_with_this_clones_teacher(study, tmp_path, monkeypatch):
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)  # relative folders, as the study's are
    run = study.Path("runs/reactnet-a-s1")
    config = {"version": 1, "teacher": "/elsewhere/runs/study15/float-mobilenet-s0", "seed": 1, "info": {"x": 1}}
    (run / "step1" / "logs" / "train").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    (run / "step1" / "logs" / "train" / "events").write_text("tensorboard")
    for name, text in (("history.csv", "epoch\n0\n1\n"), ("model.h5", "weights"), ("curves.png", "png")):
        (run / "step1" / name).write_text(text)
    (run / "step2").mkdir()
    (run / "step2" / "history.csv").write_text("epoch\n")
    value = tf.Variable(0.0)
    for step, saves in (("step1", (1.0, 2.0)), ("step2", (3.0,))):
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=value), str(run / step / "checkpoints"), max_to_keep=2)
        for v in saves:
            value.assign(v)
            manager.save()
    dest = study.Path("results/.resume/reactnet-a-s1")
    (dest / "stale").mkdir(parents=True)  # an older pack is replaced whole
    study.pack(run, dest)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [
        "config.json",
        "step1/checkpoints/checkpoint", "step1/checkpoints/ckpt-2.data-00000-of-00001", "step1/checkpoints/ckpt-2.index",
        "step1/history.csv", "step1/model.h5",
        "step2/checkpoints/checkpoint", "step2/checkpoints/ckpt-1.data-00000-of-00001", "step2/checkpoints/ckpt-1.index",
        "step2/history.csv",
    ]  # fmt: skip
    assert not list(dest.parent.glob(".*partial"))
    latest = tf.train.latest_checkpoint(str(dest / "step1" / "checkpoints"))
    assert latest == str(dest / "step1" / "checkpoints" / "ckpt-2") and tf.train.load_variable(latest, "v/.ATTRIBUTES/VARIABLE_VALUE") == 2.0

    here = study.RunConfig.__new__(study.RunConfig)
    object.__setattr__(here, "teacher", "/work/main/runs/study15/float-mobilenet-s0")
    restored = tmp_path / "clone" / "runs" / "reactnet-a-s1"
    restored.mkdir(parents=True)
    (restored / "half-made").write_text("")  # a run stopped before its config: replaced
    study.unpack(dest, restored, here)
    assert json.loads((restored / "config.json").read_text()) == {**config, "teacher": here.teacher}
    assert (restored / "step1" / "model.h5").read_text() == "weights" and not (restored / "half-made").exists()
    assert tf.train.latest_checkpoint(str(restored / "step2" / "checkpoints")).endswith("ckpt-1")


def test_commit_takes_new_and_removed_folders_and_skips_ones_git_never_saw(study, tmp_path, monkeypatch):
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "kept").write_text("")
    git("add", "kept")
    git("commit", "-q", "-m", "start")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "x" / "f").write_text("1")
    study.commit([study.Path("a/x"), study.Path("never")], "add a/x")
    assert git("ls-files") == "a/x/f\nkept\n"
    study.shutil.rmtree(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_text("2")
    study.commit([study.Path("b"), study.Path("a/x")], "b in, a/x out")
    assert git("ls-files") == "b/f\nkept\n" and git("status", "--porcelain") == ""
    assert git("log", "--format=%s") == "b in, a/x out\nadd a/x\nstart\n"


def test_commit_waits_for_another_git_commands_index_lock(study, tmp_path, monkeypatch, capsys):
    import subprocess
    import threading

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study, "COMMIT_WAIT", 0.2)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("1")
    lock = tmp_path / ".git" / "index.lock"
    lock.write_text("")  # another study process in the middle of its commit
    threading.Timer(0.5, lock.unlink).start()
    study.commit([study.Path("a")], "add a")
    assert git("log", "--format=%s") == "add a\n" and capsys.readouterr().out == ""
    # a lock that stays is reported after the last try, and nothing is committed
    lock.write_text("")
    (tmp_path / "a" / "f").write_text("2")
    monkeypatch.setattr(study, "COMMIT_TRIES", 2)
    study.commit([study.Path("a")], "change a")
    assert "not committed" in capsys.readouterr().out and git("log", "--format=%s") == "add a\n"
