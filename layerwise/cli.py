"""The `layerwise` command: parse arguments, call the library, report.

NumPy and the training code are imported inside the commands so `layerwise --help` starts fast.
"""

import functools
import sys

import click

from . import __version__

set_option = click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a config value (typed as YAML), e.g. -s optimizer.lr=0.05. Repeatable.",
)


def reports_errors(command):
    """Turn a LayerwiseError into a one-line message and its exit code; bugs keep their traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from .errors import LayerwiseError

        try:
            return command(*args, **kwargs)
        except LayerwiseError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerwise")
def main():
    """Train and evaluate neural networks whose every layer has a hand-derived backward in NumPy."""


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@set_option
@click.option("--overwrite", is_flag=True, help="Replace the run directory if it already exists.")
@reports_errors
def train(config, overrides, overwrite):
    """Train the model a YAML CONFIG describes; results go to its run directory (output key)."""
    from .config import load_config
    from .training import fit

    cfg = load_config(config, overrides)
    fit(cfg, overwrite=overwrite, echo=click.echo)


@main.command("eval")
@click.argument("run", type=click.Path(exists=True), metavar="RUN_DIR_OR_CHECKPOINT")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@set_option
@reports_errors
def evaluate(run, split, overrides):
    """Score a trained model: loss and metrics (accuracy and confusion matrix, or MSE/MAE/R2)."""
    from .training import evaluate_run

    evaluate_run(run, split, overrides, echo=click.echo)


if __name__ == "__main__":
    main()
