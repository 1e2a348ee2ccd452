"""The paper recipe: its hyper-parameters, `lqm train NAME`'s default, and the float twin
trained first as the teacher."""

import json

import click
import pytest

import zoo

from cli.train import _config, train
from larq_methods import training
from tests.test_folder_data import make_folder
from tests.test_runs import small_config
from zoo import recipes
from zoo.run import RunConfig
from zoo.run import run as run_config


def test_paper_recipe_is_reactnets_released_recipe_scaled_to_the_dataset():
    binary = recipes.paper("insta-resnet18", "fashion_mnist", 60_000)
    assert binary == training.Recipe(recipe="two-step", epochs=10, batch_size=256, learning_rate=1.25e-3, schedule="linear")
    assert (binary.warmup_epochs, binary.label_smoothing, binary.weight_decay) == (0.0, 0.0, None)
    # step 1: binary activations, real weights, weight decay 1e-5; step 2: all binary, none
    steps = binary.steps(zoo.get_entry("insta-resnet18").method)
    assert [(name, m.binarise, wd) for name, m, wd in steps] == [("step1", "activations", 1e-5), ("step2", "all", 0.0)]
    # a float model: one step of both steps' epochs with step 1's weight decay; that is
    # also how a float twin is trained to teach
    twin = recipes.paper("float-resnet18", "fashion_mnist", 60_000)
    assert twin == training.Recipe(recipe="one-step", epochs=20, batch_size=256, learning_rate=1.25e-3, weight_decay=1e-5)
    assert recipes.teacher_recipe(binary) == twin
    # ImageNet: the code's 128 epochs per step; other data: Fashion-MNIST's optimiser steps
    assert recipes.paper("reactnet-a", "imagenet2012", 1_281_167).epochs == 128
    assert recipes.epochs_for("my_images", 6_000) == 100  # 10 * 60,000 / 6,000
    assert recipes.epochs_for("my_images", 300) == 128  # at most ImageNet's
    assert recipes.epochs_for("my_images", 1_000_000) == 10  # at least Fashion-MNIST's
    # ReActNet-A converged at 15 epochs per step on Fashion-MNIST, not 10; its twin trains 30
    assert recipes.paper("reactnet-a", "fashion_mnist", 60_000).epochs == 15
    assert recipes.paper("insta-mobilenet", "fashion_mnist", 60_000).epochs == 15
    assert recipes.paper("float-mobilenet", "fashion_mnist", 60_000).epochs == 30
    assert recipes.epochs_for("my_images", 6_000, "reactnet-a") == 128  # 15 * 60,000 / 6,000 = 150, at most ImageNet's
    assert recipes.epochs_for("my_images", 20_000, "reactnet-a") == 45  # 15 * 60,000 / 20,000
    assert recipes.epochs_for("my_images", 6_000, "reactnet-18") == 100
    assert recipes.resolve("one-step", "reactnet-18", "fashion_mnist", 0) == training.Recipe()
    with pytest.raises(training.TrainingError, match="recipe must be one of paper, one-step, two-step"):
        recipes.resolve("three-step", "reactnet-18", "fashion_mnist", 0)


def test_float_twins():
    twins = {m: recipes.float_twin(m) for m in ("insta-mobilenet", "gaaf-resnet18", "reactnet-18", "dybnn-quicknet", "float-resnet18", "resnete-18")}
    assert twins == {
        "insta-mobilenet": "float-mobilenet", "gaaf-resnet18": "float-resnet18", "reactnet-18": "float-resnet18",
        "dybnn-quicknet": "float-quicknet", "float-resnet18": None, "resnete-18": None,
    }  # fmt: skip


def config_of(*args) -> RunConfig:
    """The RunConfig that `lqm train ARGS` would run (its options parsed by click)."""
    with click.Context(train) as ctx:
        options = train.make_context("train", [str(a) for a in args], parent=ctx).params
    data_dir = options.pop("data_dir")
    for key in ("output", "resume"):
        options.pop(key)
    with click.Context(train):
        return _config(options, data_dir)


def test_lqm_train_name_runs_the_paper_recipe_distilled_from_the_float_twin(tmp_path):
    config = config_of("insta-resnet18")
    assert config.recipe == recipes.paper("insta-resnet18", "fashion_mnist", 60_000)
    assert (config.teacher, config.teacher_recipe) == ("float-resnet18", recipes.paper("float-resnet18", "fashion_mnist", 60_000))
    # options replace parts of the preset, and the twin's recipe follows the student's
    config = config_of("reactnet-a", "--epochs", 3, "--learning-rate", 1e-3)
    assert (config.recipe.recipe, config.recipe.epochs, config.recipe.batch_size, config.recipe.learning_rate) == ("two-step", 3, 256, 1e-3)
    assert (config.teacher, config.teacher_recipe.epochs, config.teacher_recipe.learning_rate) == ("float-mobilenet", 6, 1e-3)
    assert config_of("reactnet-18", "--teacher", "none").teacher is None
    assert config_of("reactnet-18", "--teacher", "float-quicknet").teacher_recipe is None  # the user's teacher as given
    assert (config_of("float-resnet18").teacher, config_of("float-resnet18").recipe.epochs) == (None, 20)
    plain = config_of("reactnet-18", "--recipe", "one-step")
    assert (plain.recipe, plain.teacher) == (training.Recipe(), None)
    # a folder dataset of 80 training images: as many optimiser steps as Fashion-MNIST's, at most 128 epochs
    folder = make_folder(tmp_path / "pets", train=8, test=2)
    assert config_of("reactnet-18", "--dataset", folder).recipe.epochs == 128


@pytest.mark.slow
def test_a_twin_without_fitting_weights_is_trained_first_and_shipped_weights_are_used(tmp_path, data_dir):
    lines = []
    teacher_recipe = training.Recipe(epochs=1, batch_size=8)
    config = small_config(data_dir, recipe=training.Recipe(epochs=1, batch_size=8), teacher="float-resnet18", teacher_recipe=teacher_recipe)
    results = run_config(config, tmp_path / "run", verbose=0, echo=lines.append)
    assert "float-resnet18 has no pretrained fashion_mnist weights for this input, these classes and alpha 0.125: training it first as the teacher" in lines[1]
    teacher = RunConfig.load(tmp_path / "run" / "teacher")
    assert (teacher.model, teacher.recipe, teacher.alpha, teacher.teacher) == ("float-resnet18", teacher_recipe, 0.125, None)
    assert (tmp_path / "run" / "teacher" / "model.h5").exists() and results["teacher_train_seconds"] > 0
    assert RunConfig.load(tmp_path / "run") == config.replace(data=RunConfig.load(tmp_path / "run").data)  # round trip
    assert json.loads((tmp_path / "run" / "results.json").read_text())["teacher_train_seconds"] > 0

    # the shipped float-resnet18 weights fit alpha 0.25 at 28x28x1: no teacher is trained
    lines.clear()
    run_config(config.replace(alpha=0.25), tmp_path / "shipped", verbose=0, echo=lines.append)
    assert any(line.startswith("Distilling from the pretrained float-resnet18 fashion_mnist weights (") for line in lines)
    assert not (tmp_path / "shipped" / "teacher").exists()
