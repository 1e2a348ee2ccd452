"""`lqm download`: fetch registered pretrained weights into the cache and verify them."""

import click

from cli.common import one_line_errors, zoo


@click.command()
@click.argument("model_name", metavar="[MODEL]", required=False)
@click.option("--dataset", default="fashion_mnist", show_default=True, help="The dataset the weights were trained on.")
@click.option("--all", "every", is_flag=True, help="Every registered weights file (of MODEL, if given).")
def download(model_name, dataset, every):
    """Download MODEL's pretrained weights into the cache, checked by sha256.

    The source is the weights folder shipped with lqm, or the mirror in $LQM_WEIGHTS_URL;
    the cache is $LQM_CACHE_DIR (default ~/.keras/lqm-weights). Load them with
    `zoo.create_model(MODEL, weights=DATASET)`.
    """
    if not model_name and not every:
        raise click.UsageError("give a MODEL, or --all")
    with one_line_errors():
        if model_name:
            zoo.get_entry(model_name)  # an unknown name gets the registry's own hint
        if every:
            chosen = zoo.pretrained.entries(model_name)
            if not chosen:
                whose = f" for {model_name}" if model_name else ""
                raise zoo.WeightsError(f"no pretrained weights are registered{whose}")
        else:
            chosen = [zoo.pretrained.get(model_name, dataset)]
        for weights in chosen:
            path = zoo.pretrained.fetch(weights.model, weights.dataset)
            click.echo(f"{weights.model} {weights.dataset}: top-1 accuracy {weights.accuracy:.4f} ({weights.date}) {path}")
