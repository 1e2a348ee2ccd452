"""The study: every named binary model of the ReActNet-18 and ReActNet-A families, trained
with the paper recipe (`zoo.recipes`) and distilled from its family's float twin, on
Fashion-MNIST at one width and input size, several seeds each, and one more seed where a
gain is smaller than the spread (`more_seeds`); then, one seed each, the BiRealNet and
QuickNet families (`EXTRAS`), so that every shipped model is trained so.

    .venv/bin/python benchmarks/study.py [--epochs 10] [--seeds 0 1] [--alpha 0.25]
        [--models PATTERN ...] [--commit] [--report] [--publish] [--readme]

--epochs per step defaults to the paper recipe's on Fashion-MNIST (`zoo.recipes.EPOCHS`);
the ReActNet-A family's recipe has 15 (`BACKBONE_EPOCHS`), which it trains at with --epochs 15.
A study of N epochs per step trains in runs/studyN and keeps its results in
benchmarks/results/studyN (`folders`); the first study, at 5, kept the names runs/study and
benchmarks/results/study. One --out holds one schedule: results of another are an error.

It survives interruption. Each (model, seed) trains in WORK/MODEL-sSEED (`zoo.run`,
resumed exactly where a killed run stopped; SIGTERM or Ctrl-C checkpoint it first); once
finished, its results.json, config.json, history CSVs and packed weights go to
OUT/MODEL-sSEED/ in one rename (`--commit` commits that folder), and a rerun skips every
(model, seed) that has its results.json there. The float twins train first (one seed) and
teach every seed. A run stopped with --commit also commits what it needs to resume
(`pack`: about 25 MB in step 1, 55 MB in step 2) to OUT/.resume/MODEL-sSEED/, since a
fresh clone has no run folders: a rerun restores it (`unpack`) and resumes there, and the
finished run's commit removes it.

Writes OUT.md (mean and spread per model, gain over the family's baseline per seed, float
twin, gap, training time, the last epochs) and OUT.png (test accuracy per epoch) beside OUT,
and rewrites the shipped weights' section of every report there (`refresh_shipped`);
`--report` only writes them, and `--readme` also puts its table, the shipped weights' and
the study's result (`result_table`: each shipped model's row from the study that ships it)
in README.md (`fill_readme`). `--publish` only ships the best finished seed of every model from
OUT into zoo/weights/ with its registry entry (`ship`), which names that run (`recipe.run`);
it keeps a shipped model trained with more epochs per step (a longer study's).

Each run also measures, after every epoch, the test accuracy with BatchNorm's statistics
re-estimated (PreciseBN over `PRECISE_BATCHES` training batches): its last epochs are the
curve that tells whether a run has converged, since the moving averages can lag the
weights in step 2. It changes nothing that training does.

FTBNN's two groups need 32 channels per group, which alpha 0.25 does not give (24 in
its widest stage 2): its row trains FTBNN's other parts with groups=1 and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import fnmatch
import json
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import larq_methods  # noqa: E402,F401  (Keras 2 before TensorFlow)
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from larq_methods import data, precise_bn, saving, training  # noqa: E402
from leaderboard import method_for  # noqa: E402
from zoo import pretrained, recipes  # noqa: E402
from zoo.run import DataConfig, RunConfig, run, run_name  # noqa: E402

# what the study trains on and ships weights for
DATASET = "fashion_mnist"
FAMILIES = {
    "reactnet-18": ("reactnet-18", "insta-resnet18", "insta-plus-resnet18", "dybnn-resnet18",
                    "rebnn-resnet18", "ftbnn-resnet18", "gaaf-resnet18"),
    "reactnet-a": ("reactnet-a", "insta-mobilenet", "insta-plus-mobilenet", "dybnn-mobilenet"),
}  # fmt: skip
# larq-zoo's backbones and their methods: one seed each, after both seeds of FAMILIES, so
# that every shipped binary model has weights of this recipe
EXTRAS = {
    "birealnet": ("birealnet", "insta-birealnet", "dybnn-birealnet"),
    "quicknet": ("quicknet", "insta-quicknet", "dybnn-quicknet"),
}  # fmt: skip
BASELINES = {*FAMILIES, *EXTRAS}
# how many of a model's last epochs (test accuracy) the table shows
LAST_EPOCHS = 3
# after each epoch, the test accuracy with statistics re-estimated over this many training
# batches as well (PreciseBN, `larq_methods.precise_bn`): the moving averages can lag the
# weights in step 2 by tens of points, so the curve judged for convergence is this one
PRECISE_BATCHES = 50
# the first study's schedule, whose folders have no number (`folders`)
FIRST_STUDY_EPOCHS = 5


def folders(epochs: int) -> tuple[Path, Path]:
    """The default run folders (--work) and kept results (--out) of a study of `epochs` per step."""
    suffix = "" if epochs == FIRST_STUDY_EPOCHS else str(epochs)
    return Path(f"runs/study{suffix}"), Path(f"benchmarks/results/study{suffix}")


def run_epochs(model, epochs: int) -> int:
    """The epochs per step of `model`'s study run at `epochs` per step: a float twin trains
    one step of both steps' epochs."""
    return recipes.twin_epochs(epochs) if recipes.is_float(model) else epochs


def check_schedule(records, epochs: int, out: Path) -> None:
    """One --out holds one schedule: a finished run of other epochs per step would be
    skipped, tabled and shipped as if of `epochs`."""
    for r in records:
        if r["epochs_per_step"] != run_epochs(r["model"], epochs):
            per_step = r["epochs_per_step"] // run_epochs(r["model"], 1)
            raise SystemExit(f"{out} holds runs of {per_step} epochs per step ({r['model']} seed {r['seed']}), not {epochs}: pass --epochs {per_step}, or another --out")


def code_version() -> str:
    """The commit this process runs (with "+changes" if the working tree differs), or "?"."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "larq_methods", "zoo"], cwd=ROOT).returncode != 0
        return commit + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


CODE = code_version()  # read once: the code this process imported
TWIN_SEED = 0  # every binary model distils from its float twin's run of this seed


def jobs(models, seeds, extras=()) -> list[tuple[str, int]]:
    """(model, seed) in training order: the float twins (TWIN_SEED), then every model's
    first seed, the family baselines first (whether the recipe converges is known early),
    then the next seed: a partial study has one seed of everything. `extras` come last,
    with their twins, first seed only."""

    def ordered(names, seeds):
        twins = sorted({recipes.float_twin(m) for m in names if recipes.float_twin(m)})
        return [(twin, TWIN_SEED) for twin in twins] + [(m, s) for s in seeds for m in baselines_first(names)]

    return ordered(models, seeds) + (ordered(extras, seeds[:1]) if extras else [])


def more_seeds(records, models, seeds) -> list[tuple[str, int]]:
    """Issue 13's rule, a third seed where the spread is larger than the gain: a method of
    `models` whose gain over its family baseline (the means over `seeds`) is smaller than
    the larger of their spreads (max - min over `seeds`) gets seed max(seeds) + 1, and so
    does the baseline, baselines first. Decided on `seeds` alone, so that a rerun plans the
    same runs whether or not the extra seeds have finished; needs every (model, seed) of
    the comparison finished and at least two seeds."""
    if len(seeds) < 2:
        return []
    accuracy = {(r["model"], r["seed"]): r["accuracy"] for r in records}

    def accs(model):
        found = [accuracy.get((model, s)) for s in seeds]
        return None if None in found else found

    more = {}  # ordered set
    for model in models:
        family = zoo.get_entry(model).backbone
        ours, base = accs(model), accs(family)
        if model == family or ours is None or base is None:
            continue
        gain = statistics.mean(ours) - statistics.mean(base)
        if abs(gain) < max(max(ours) - min(ours), max(base) - min(base)):
            more.update(dict.fromkeys((family, model)))
    return [(m, max(seeds) + 1) for m in baselines_first(more)]


def baselines_first(names) -> list[str]:
    return sorted(names, key=lambda m: m not in BASELINES)  # stable


def study_models(models, extras) -> list[str]:
    """Every model of the study once, twins included, in training order."""
    return list(dict.fromkeys(m for m, _ in jobs(models, [0], extras)))


def select(patterns) -> tuple[list[str], list[str]]:
    """The study's binary models and its extras that match any of the shell `patterns`
    (`["reactnet-a", "*mobilenet"]`: the ReActNet-A family), in the study's order."""

    def matching(groups):
        return [m for family in groups.values() for m in family if any(fnmatch.fnmatchcase(m, p) for p in patterns)]

    return matching(FAMILIES), matching(EXTRAS)


def twin_run(twin, folder: Path) -> Path:
    """The float twin's run in `folder` (--work or --out) that its family distils from."""
    return folder / run_name(twin, TWIN_SEED)


def config_for(model, seed, args, command) -> RunConfig:
    """The study's run of (model, seed): the paper recipe at `args.epochs` per step, its
    float twin's study run as teacher."""
    shape = (args.image_size, args.image_size, 1)
    method, _ = method_for(model, args.alpha, shape, 10)
    recipe = recipes.paper(model, DATASET, 60_000)
    recipe = dataclasses.replace(recipe, epochs=run_epochs(model, args.epochs), precise_bn=PRECISE_BATCHES)
    twin = recipes.float_twin(model)
    return RunConfig(
        model=model,
        method=method,
        recipe=recipe,
        data=DataConfig(data_dir=args.data_dir, train_split=args.train_split, eval_split=args.eval_split, image_size=args.image_size, channels=1),
        alpha=args.alpha,
        seed=seed,
        teacher=str(twin_run(twin, args.work).resolve()) if twin else None,
        checkpoint_seconds=300.0,
        commands=(command,),
    )  # fmt: skip


def kept_model(config: RunConfig, weights: Path, num_classes: int) -> tf.keras.Model:
    """The model of a study run (its `config`) with the packed `weights` the study kept."""
    shape = (config.data.image_size, config.data.image_size, config.data.channels)
    return zoo.create_model(
        config.model, input_shape=shape, num_classes=num_classes, alpha=config.alpha, method=config.method, weights=str(weights)
    )


def restore_teacher(model, args) -> None:
    """Rebuilds the model file of `model`'s teacher (its float twin's run) from what the
    study kept of that run, where the run folder is gone (a fresh clone): a float model's
    packed weights are its exact weights, so the teacher is the same."""
    twin = recipes.float_twin(model)
    if not twin:
        return
    target, kept = twin_run(twin, args.work) / "model.h5", twin_run(twin, args.out)
    if target.exists() or not (kept / "results.json").exists():
        return
    teacher = kept_model(RunConfig.load(kept), kept / "model.npz", num_classes=10)  # Fashion-MNIST's
    target.parent.mkdir(parents=True, exist_ok=True)
    saving.save_model(teacher, target)
    tf.keras.backend.clear_session()
    print(f"{model}: rebuilt its teacher {target} from {kept / 'model.npz'}", flush=True)


def study_run(model, seed, args, command) -> tuple[RunConfig, Path]:
    """The study's run of (model, seed) and its run folder, its teacher restored first."""
    restore_teacher(model, args)
    return config_for(model, seed, args, command), args.work / run_name(model, seed)


def train_run(config: RunConfig, run_dir: Path) -> Path:
    """Trains `config` into `run_dir`: fresh, resumed where it stopped, or not at all where
    it has finished; returns `run_dir`."""
    resume = (run_dir / "config.json").exists()
    if resume:
        saved = RunConfig.load(run_dir)
        if not saved.same_training(config):
            raise SystemExit(f"{run_dir} holds a run of other settings; remove it or train elsewhere (--work)")
        if training.is_complete(run_dir, saved.recipe, saved.method):
            return run_dir
        config = saved
    elif run_dir.exists():  # created, but stopped before its config was written
        shutil.rmtree(run_dir)
    run(config, run_dir, resume=resume, verbose=2, echo=lambda line: print(line, flush=True))
    tf.keras.backend.clear_session()
    return run_dir


def harvest(model, seed, run_dir: Path, out: Path) -> dict:
    """Copies what the study keeps of a finished run into out/MODEL-sSEED/, whole or not at
    all (a temporary folder renamed into place)."""
    config = RunConfig.load(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    steps = [name for name, _, _ in config.recipe.steps(config.method)]
    histories = [training.read_history(run_dir / name / "history.csv") for name in steps]
    curve = [a for history in histories for a in history["val_accuracy"]]
    precise = [a for history in histories for a in history.get("val_precise_bn_accuracy", [])]
    size = config.data.image_size
    _, note = method_for(model, config.alpha, (size, size, config.data.channels), 10)
    record = {
        "model": model,
        "seed": seed,
        "family": zoo.get_entry(model).backbone,
        "accuracy": results["eval_accuracy"],
        "eval_split": results["eval_split"],
        "curve": curve,  # test accuracy after each epoch, step 1 then step 2
        # the same with PreciseBN statistics (`larq_methods.precise_bn`), where the run measured it
        **({"curve_precise_bn": precise} if len(precise) == len(curve) else {}),
        "train_seconds": round(results["train_seconds"], 1),
        "epochs_per_step": config.recipe.epochs,
        "steps": len(steps),
        "alpha": config.alpha,
        "teacher": Path(config.teacher).name if config.teacher else None,
        "method": config.method.as_dict(),
        "note": note,
        "code": CODE,
        "date": datetime.date.today().isoformat(),
    }
    with written_whole(out / run_name(model, seed)) as partial:
        shutil.copy(run_dir / "config.json", partial / "config.json")
        for name in steps:
            shutil.copy(run_dir / name / "history.csv", partial / (f"{name}-history.csv" if name else "history.csv"))
        pretrained.save_packed(saving.load_model(run_dir / "model.h5"), partial / "model.npz")
        tf.keras.backend.clear_session()
        training.write_json(partial / "results.json", record)  # last: its presence means whole
    return record


@contextlib.contextmanager
def written_whole(final: Path):
    """Yields an empty temporary folder beside `final`, renamed to `final` (replacing what
    is there, a half-written one included) once the block has filled it."""
    partial = final.parent / f".{final.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)


def pack(run_dir: Path, dest: Path) -> None:
    """Copies into `dest` (replacing it, whole or not at all) what resuming `run_dir` needs:
    its config, and of every step its history, its model.h5 if finished and its latest
    checkpoint (the whole training state, and the epochs and seconds the run's record
    counts), but not its TensorBoard logs, its plots or older checkpoints."""
    with written_whole(dest) as partial:
        shutil.copy(run_dir / "config.json", partial)
        for checkpoints in sorted(run_dir.glob("**/checkpoints")):
            step = checkpoints.parent
            target = partial / step.relative_to(run_dir)
            target.mkdir(parents=True, exist_ok=True)
            for name in ("history.csv", "model.h5"):
                if (step / name).exists():
                    shutil.copy(step / name, target / name)
            latest = tf.train.latest_checkpoint(str(checkpoints))
            if latest:
                (target / "checkpoints").mkdir()
                for file in checkpoints.glob(Path(latest).name + ".*"):
                    shutil.copy(file, target / "checkpoints" / file.name)
                # the index `tf.train.latest_checkpoint` reads, naming that one alone
                name = json.dumps(Path(latest).name)
                (target / "checkpoints" / "checkpoint").write_text(f"model_checkpoint_path: {name}\nall_model_checkpoint_paths: {name}\n")


def unpack(pack_dir: Path, run_dir: Path, config: RunConfig) -> None:
    """Restores a run folder from its pack (`pack`), replacing what a run stopped before its
    config had left there. A teacher of the same name is `config`'s: the clone may lie
    elsewhere than the one that packed it."""
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(pack_dir, run_dir)
    saved = json.loads((run_dir / "config.json").read_text())
    if saved.get("teacher") and config.teacher and Path(saved["teacher"]).name == Path(config.teacher).name:
        training.write_json(run_dir / "config.json", {**saved, "teacher": config.teacher})


def resume_dir(args, model, seed) -> Path:
    return args.out / ".resume" / run_name(model, seed)


def train_all(todo, args, command, runs=study_run, label="Study") -> None:
    """Trains and harvests into args.out every (model, seed) of `todo` that has no results
    there yet; `runs(model, seed, args, command)` gives each one's config and run folder.
    A run folder missing but packed (`pack`) is restored first; a run stopped with
    args.commit is packed and committed."""
    for model, seed in todo:
        if (args.out / run_name(model, seed) / "results.json").exists():
            continue
        packed = resume_dir(args, model, seed)
        try:
            config, run_dir = runs(model, seed, args, command)
            if packed.exists() and not (run_dir / "config.json").exists():
                unpack(packed, run_dir, config)
                print(f"{model} seed {seed}: restored {run_dir} from {packed}", flush=True)
            run_dir = train_run(config, run_dir)
        except training.Interrupted as e:
            if args.commit:
                pack(run_dir, packed)
                commit([packed], f"{label}: {model} seed {seed} stopped; its state to resume from")
            raise SystemExit(f"{model} seed {seed}: {e}; rerun the same command to resume") from None
        except KeyboardInterrupt:  # before its first epoch: nothing to checkpoint yet
            raise SystemExit(f"{model} seed {seed}: interrupted before training; rerun the same command to resume") from None
        record = harvest(model, seed, run_dir, args.out)
        shutil.rmtree(packed, ignore_errors=True)
        line = f"{model} seed {seed}: {_pct(record['accuracy'])}% after {record['train_seconds'] / 60:.0f} min"
        print(line, flush=True)
        if args.commit:
            commit([args.out / run_name(model, seed), packed], f"{label}: {line}")


def read_records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*-s*/results.json"))]


# how often, and how many seconds apart, `commit` tries again while another git command
# holds the index (a second study process committing, say)
COMMIT_TRIES, COMMIT_WAIT = 10, 3.0


def commit(folders: list[Path], message: str) -> None:
    """Commits `folders` alone, as they are now (removed ones included), waiting for another
    git command's index lock to go; any other failure is only reported."""
    def tracked(folder):
        return subprocess.run(["git", "ls-files", "--", str(folder)], capture_output=True, text=True).stdout.strip()

    paths = [str(f) for f in folders if f.exists() or tracked(f)]  # git add refuses paths it never saw
    for attempt in range(COMMIT_TRIES):
        try:
            subprocess.run(["git", "add", "-A", "--", *paths], check=True, capture_output=True)
            subprocess.run(["git", "commit", "-q", "-m", message, "--", *paths], check=True, capture_output=True)
            return
        except subprocess.CalledProcessError as e:
            error = e.stderr.decode().strip()
            if "index.lock" not in error or attempt + 1 == COMMIT_TRIES:
                print(f"not committed ({error}); commit {' '.join(paths)} by hand", flush=True)
                return
            time.sleep(COMMIT_WAIT)


# -- the report -----------------------------------------------------------------------------


def _pct(x):
    return f"{100 * x:.2f}"


def table(records, models, precise: bool | None = None, schedule: bool = False) -> str:
    """One row per model of `records` (one study's): the PreciseBN column where any run has
    it (or as `precise` says), and with `schedule` its steps x epochs per step."""
    by_model = {m: sorted((r for r in records if r["model"] == m), key=lambda r: r["seed"]) for m in models}
    precise = any("curve_precise_bn" in r for r in records) if precise is None else precise
    columns = [
        "model", "follows", *(["steps x epochs"] if schedule else []), "seeds", "test accuracy, mean",
        "spread (min-max)", "gain over baseline, per seed",
        "float twin", "gap to twin", "train min per seed", "last epochs (seed mean)",
        *(["last epochs, PreciseBN (seed mean)"] if precise else []), "note",
    ]  # fmt: skip
    rows = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for model in models:
        runs = by_model[model]
        if not runs:
            continue
        accs = [r["accuracy"] for r in runs]
        mean = statistics.mean(accs)
        family = runs[0]["family"]
        twin = recipes.float_twin(model)
        twin_runs = by_model.get(twin) or [r for r in records if r["model"] == twin]
        twin_acc = statistics.mean(r["accuracy"] for r in twin_runs) if twin_runs else None
        base = {r["seed"]: r["accuracy"] for r in records if r["model"] == family}
        if twin is None or model == family:
            gain = "baseline" if model == family else ""
        else:
            # paired: each seed against the baseline's of that seed, and their mean, so that a
            # baseline's extra seed (`more_seeds`) does not move another model's gain
            paired = [r["accuracy"] - base[r["seed"]] for r in runs if r["seed"] in base]
            per_seed = ", ".join(f"{100 * g:+.2f}" for g in paired)
            gain = f"{100 * statistics.mean(paired):+.2f} ({per_seed})" if paired else "no baseline yet"
        n = min(LAST_EPOCHS, *(len(r["curve"]) for r in runs))
        last = [statistics.mean(r["curve"][-k] for r in runs) for k in range(n, 0, -1)]
        measured = [r["curve_precise_bn"] for r in runs if "curve_precise_bn" in r]
        last_precise = [statistics.mean(c[-k] for c in measured) for k in range(n, 0, -1)] if len(measured) == len(runs) else []
        rows.append(
            f"| `{model}` | {zoo.get_entry(model).follows} | "
            + (f"{runs[0]['steps']} x {runs[0]['epochs_per_step']} | " if schedule else "")
            + f"{', '.join(str(r['seed']) for r in runs)} | {_pct(mean)}% | "
            f"{_pct(min(accs))}-{_pct(max(accs))} | {gain} | "
            f"{_pct(twin_acc) + '%' if twin_acc is not None else ('-' if twin is None else 'not yet')} | "
            f"{f'{100 * (mean - twin_acc):+.2f}' if twin_acc is not None else ''} | "
            f"{statistics.mean(r['train_seconds'] for r in runs) / 60:.0f} | {', '.join(_pct(a) for a in last)} | "
            + (f"{', '.join(_pct(a) for a in last_precise)} | " if precise else "")
            + f"{runs[0]['note']} |"
        )
    return "\n".join(rows) + "\n"


# issue 13's bar for shipped binary weights: every one at least 90%, the best at least
# 92.5% and within 1.0 point of its float twin
TARGET, BEST_TARGET, TWIN_GAP = 0.90, 0.925, 0.01


def _shipped() -> dict[str, pretrained.Weights]:
    """The registry's entries for the study's dataset, by model (a model may also ship
    weights for another dataset)."""
    return {w.model: w for w in pretrained.entries() if w.dataset == DATASET}


def shipped_table() -> str:
    """The shipped weights (`zoo/weights/`) against the bar they are held to, each with the
    schedule that trained it: a longer study may ship some models and not others."""
    rows = [
        "| model | seed | steps x epochs | top-1 (`lqm evaluate NAME`) | float twin | gap | MiB | at least 90% |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    shipped = _shipped()
    for name, weights in shipped.items():
        twin = shipped.get(recipes.float_twin(name) or "")
        gap = f"{100 * (weights.accuracy - twin.accuracy):+.2f}" if twin else ""
        target = "(teacher)" if recipes.is_float(name) else ("yes" if weights.accuracy >= TARGET else "**no**")
        size = (pretrained.WEIGHTS_DIR / weights.file).stat().st_size / 2**20
        rows.append(
            f"| `{name}` | {weights.recipe.get('seed', '?')} | {weights.recipe.get('steps', '?')} x {weights.recipe.get('epochs', '?')} | "
            f"{_pct(weights.accuracy)}% | "
            f"{_pct(twin.accuracy) + '%' if twin else '-'} | {gap} | {size:.2f} | {target} |"
        )
    if shipped:
        rows.append(
            "\nGap: to the shipped float twin, which a longer study may have trained (each entry's `recipe.run` in "
            "`zoo/weights/registry.json`), so not always the model's teacher."
        )
    binary = [w for w in shipped.values() if not recipes.is_float(w.model)]
    if binary:
        best = max(binary, key=lambda w: w.accuracy)
        twin = shipped.get(recipes.float_twin(best.model) or "")
        met = best.accuracy >= BEST_TARGET and twin is not None and twin.accuracy - best.accuracy <= TWIN_GAP
        rows.append(
            f"\nBest binary: `{best.model}` {_pct(best.accuracy)}%: the bar of at least {_pct(BEST_TARGET)}% "
            f"and within {100 * TWIN_GAP:.1f} point of its float twin is {'met' if met else '**not met**'}."
        )
    return "\n".join(rows) + "\n"


def result_table() -> str:
    """The study's result, which the README leads with: one row per shipped model, from the
    study whose run it ships (`recipe.run`'s folder, its longest finished schedule), with
    that study's seeds and the gain over that study's baseline, family by family, twin first."""
    studies = {}
    for name, weights in _shipped().items():
        if "run" in weights.recipe:
            studies.setdefault(ROOT / Path(weights.recipe["run"]).parent, []).append(name)
    header, rows = [], {}
    for out, names in studies.items():
        records = read_records(out)
        for name in names:
            lines = table(records, [name], precise=True, schedule=True).splitlines()
            header, rows[name] = lines[:2], lines[2:]
    order = [m for family in (*FAMILIES.values(), *EXTRAS.values()) for m in (recipes.float_twin(family[0]), *family)]
    order += [m for m in rows if m not in order]
    return "\n".join(header + [row for m in order for row in rows.get(m, [])]) + "\n" if header else ""


def plot(records, models, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [f for f in (*FAMILIES, *EXTRAS) if any(r["family"] == f for r in records)]
    cols = min(2, len(families))
    rows = -(-len(families) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(families):]:
        ax.set_visible(False)
    for ax, family in zip(axes.flat, families):
        for model in models:
            runs = [r for r in records if r["model"] == model and r["family"] == family]
            if not runs:
                continue
            n = min(len(r["curve"]) for r in runs)
            mean = [100 * statistics.mean(r["curve"][i] for r in runs) for i in range(n)]
            style = "--" if recipes.is_float(model) else "-"
            ax.plot(range(1, n + 1), mean, style, marker=".", label=f"{model} ({len(runs)} seed{'s' * (len(runs) > 1)})")
        steps = [r for r in records if r["family"] == family and r["steps"] == 2]
        if steps:
            ax.axvline(steps[0]["epochs_per_step"] + 0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{family} family: test accuracy after each epoch (step 1 | step 2)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("Fashion-MNIST test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_ylim(bottom=max(50, min(min(line.get_ydata()) for line in ax.get_lines() if len(line.get_ydata())) - 1))
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def report(args, models, extras, command) -> str:
    records = read_records(args.out)
    order = study_models(models, extras)
    seconds = sum(r["train_seconds"] for r in records)
    header = (
        f"Fashion-MNIST, alpha {args.alpha}, {args.image_size}x{args.image_size}x1, the paper recipe "
        f"(`zoo/recipes.py`: two steps of {args.epochs} epochs, batch {recipes.PAPER_BATCH_SIZE}, Adam "
        f"{recipes.PAPER_LEARNING_RATE:g} decayed linearly to 0 per step, weight decay 1e-5 then 0, distilled from "
        f"the float twin; the twins: one step of {recipes.twin_epochs(args.epochs)} epochs), trained on {args.train_split}, tested on "
        f"the whole {args.eval_split} split. Gain: the model's accuracy minus its family baseline's "
        f"({', '.join(sorted(BASELINES))}) of the same seed, and the mean of those. {len(records)} runs, {seconds / 3600:.1f} hours of "
        f"training on a 2-core CPU shared with other work (times are wall-clock). Made by `{command}`.\n\n"
    )
    if any("curve_precise_bn" in r for r in records):
        header += (
            "Last epochs, PreciseBN: the test accuracy after each epoch with BatchNorm's statistics re-estimated over "
            f"{PRECISE_BATCHES} training batches (`larq_methods.precise_bn`) instead of its moving averages, which can "
            "lag the weights by points in step 2; the weights and the final accuracy are the same. Runs begun before it "
            "have none.\n\n"
        )
    results, shipped = table(records, order), shipped_table()
    markdown = header + results + SHIPPED_HEADING + shipped
    # beside the results, named after their folder: a longer study (--out .../study10) keeps its own
    own = args.out.parent / f"{args.out.name}.md"
    own.write_text(markdown)
    refresh_shipped(args.out.parent, shipped, own)
    if records:
        plot(records, order, args.out.parent / f"{args.out.name}.png")
    if args.readme:
        fill_readme({f"{args.out.name} table": results, "shipped": shipped, "result": result_table()})
    return markdown


SHIPPED_HEADING = "\n## Shipped weights (`--publish`)\n\nWhat `zoo/weights/` holds now, whichever study shipped it.\n\n"


def refresh_shipped(results: Path, shipped: str, own: Path) -> None:
    """Rewrites the shipped section, the last, of every study report in `results` but `own`
    (just written), so that one study's publish leaves none of them stale."""
    for path in sorted(results.glob("*.md")):
        text = "" if path == own else path.read_text()
        if SHIPPED_HEADING in text:
            path.write_text(text[: text.index(SHIPPED_HEADING)] + SHIPPED_HEADING + shipped)


def readme_block(text: str, tag: str, readme: Path | None = None) -> tuple[int, int]:
    """Where the block between the `<!-- TAG -->` and `<!-- /TAG -->` lines of `text` (the
    text of `readme`, named in the error) lies."""
    starts = list(re.finditer(rf"^<!-- {re.escape(tag)} -->\n", text, re.M))
    ends = list(re.finditer(rf"^<!-- /{re.escape(tag)} -->$", text, re.M))
    if len(starts) != 1 or len(ends) != 1 or ends[0].start() < starts[0].end():
        raise SystemExit(f"{readme or README} needs one <!-- {tag} --> line and, after it, one <!-- /{tag} --> line")
    return starts[0].end(), ends[0].start()


def fill_readme(blocks: dict[str, str], readme: Path | None = None) -> None:
    """Replaces each `readme_block` of the README with the text of its TAG, so that its
    tables are the reports' (the notes around them are written by hand)."""
    readme = readme or README
    text = readme.read_text(encoding="utf-8")
    for tag, body in blocks.items():
        start, end = readme_block(text, tag, readme)
        text = text[:start] + body.strip("\n") + "\n" + text[end:]
    readme.write_text(text, encoding="utf-8", newline="\n")  # the same bytes on any system


def _from_root(path: Path) -> str:
    """`path` relative to the repository where it lies inside it (the kept results)."""
    path = path.resolve()
    return (path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).as_posix()


def ship(record, folder: Path, eval_set) -> pretrained.Weights:
    """Ships a finished run (its folder under args.out): its packed weights into
    zoo/weights/ and its registry entry, with the accuracy of those packed weights measured
    as `lqm evaluate NAME` measures it."""
    config = RunConfig.load(folder)
    name = record["model"]
    path = pretrained.WEIGHTS_DIR / f"{name}-{DATASET}.npz"
    shutil.copyfile(folder / "model.npz", path)
    model = kept_model(config, path, eval_set.num_classes)
    shape = tuple(model.input_shape[1:])
    batches = data.pipeline(eval_set, image_size=shape[0], channels=shape[2], batch_size=256, training=False)
    accuracy = precise_bn.top1(model, batches)  # the moving averages, as `lqm evaluate` reads them
    tf.keras.backend.clear_session()
    recipe = config.recipe
    entry = pretrained.Weights(
        model=name, dataset=DATASET, file=path.name, sha256=pretrained.sha256(path), accuracy=round(accuracy, 4),
        recipe={
            "recipe": "paper", "study": "benchmarks/study.py", "steps": record["steps"], "epochs": recipe.epochs,
            "optimizer": "adam, linear decay to 0 per step", "batch_size": recipe.batch_size,
            "learning_rate": recipe.learning_rate, "weight_decay": [decay for _, _, decay in recipe.steps(config.method)],
            "teacher": record["teacher"], "train_split": config.data.train_split, "seed": record["seed"],
            "run": _from_root(folder),  # which study: a longer one may ship some models
            "code": record.get("code", "?"), "method": config.method.as_dict(),
        },
        date=record["date"], alpha=config.alpha, input_shape=shape, num_classes=eval_set.num_classes,
    )  # fmt: skip
    pretrained.register(entry)
    return entry


def best_run(records) -> dict:
    """The record of the most accurate seed; of seeds that tie, the lowest."""
    return max(records, key=lambda r: (r["accuracy"], -r["seed"]))


def publish(args, models, extras) -> None:
    """Ships the best seed of every finished study model (`ship`), but never replaces weights
    that a longer schedule trained (a longer study's), and skips weights already shipped."""
    eval_set = None  # loaded once something needs measuring
    records = read_records(args.out)
    shipped = _shipped()
    for model in study_models(models, extras):
        runs = [r for r in records if r["model"] == model]
        if runs:
            best = best_run(runs)
            kept = shipped.get(model)
            if kept and kept.recipe.get("epochs", 0) > best["epochs_per_step"]:
                print(f"kept {kept.file}: {kept.recipe.get('steps', '?')} x {kept.recipe['epochs']} epochs ({kept.recipe.get('run', '?')})", flush=True)
                continue
            folder = args.out / run_name(model, best["seed"])
            if kept and kept.recipe.get("run") == _from_root(folder) and kept.sha256 == pretrained.sha256(folder / "model.npz"):
                # the same file from the same run: its measured accuracy stands
                print(f"unchanged {kept.file}: {_pct(kept.accuracy)}% (seed {best['seed']})", flush=True)
                continue
            if eval_set is None:
                eval_set = data.load(DATASET, args.eval_split, args.data_dir)
            entry = ship(best, folder, eval_set)
            print(f"published {entry.file}: {_pct(entry.accuracy)}% (seed {best['seed']}, training run {_pct(best['accuracy'])}%)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["*"], help="Shell patterns over the study's binary models (any may match).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=recipes.EPOCHS[DATASET], help="Epochs per step.")
    parser.add_argument("--alpha", type=float, default=0.25)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--eval-split", default="test")
    parser.add_argument("--data-dir", help="Fashion-MNIST's IDX files [default: LQM_FASHION_MNIST_DIR or Debian's].")
    parser.add_argument("--work", type=Path, help="Run folders [default: runs/studyN, N the epochs per step; 5: runs/study].")
    parser.add_argument("--out", type=Path, help="What is kept of each finished run [default: benchmarks/results/studyN; 5: benchmarks/results/study].")
    parser.add_argument("--commit", action="store_true", help="git commit each finished run's results.")
    parser.add_argument("--report", action="store_true", help="Only write the table and the plot.")
    parser.add_argument("--publish", action="store_true", help="Only ship the best finished seed of each model in zoo/weights/ (and write the table).")
    parser.add_argument("--readme", action="store_true", help="Also put the table and the shipped weights' table in README.md's blocks for them.")
    args = parser.parse_args(argv)
    # what trains the study (--report and --publish only read what it made)
    trains = [a for a in (sys.argv[1:] if argv is None else argv) if a not in ("--report", "--publish", "--readme")]
    command = shlex.join(["python", "benchmarks/study.py", *trains])

    models, extras = select(args.models)
    if not models + extras:
        raise SystemExit(f"no study model matches {' '.join(args.models)!r}")
    work, out = folders(args.epochs)
    args.work, args.out = args.work or work, args.out or out
    check_schedule(read_records(args.out), args.epochs, args.out)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.report or args.publish):
        train_all(jobs(models, args.seeds), args, command)
        # the seeds above decide where a gain needs another seed; then larq-zoo's backbones
        train_all(more_seeds(read_records(args.out), models, args.seeds), args, command)
        train_all(jobs([], args.seeds, extras), args, command)
    if args.publish:
        publish(args, models, extras)
    print(report(args, models, extras, command))


if __name__ == "__main__":
    # SIGTERM, and SIGINT (which a shell's background jobs ignore), checkpoint the run in
    # progress and stop; a rerun resumes it
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
