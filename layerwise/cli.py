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
    """Train and evaluate neural networks whose every layer has a hand-derived backward in NumPy.

    \b
    Exit codes: 0 success; 1 data or checkpoint problem, or gradcheck failed;
    2 usage or config error; 3 training diverged; 4 a file cannot be written
    or read (disk full, read-only, permission denied); 5 the run directory is
    in use by another layerwise process; 130 interrupted (Ctrl-C);
    143 stopped by SIGTERM (last.npz saved in both cases).
    """


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False), required=False)
@set_option
@click.option("--overwrite", is_flag=True, help="Replace the run directory if it already holds a run.")
@click.option(
    "--resume", "resume_dir", type=click.Path(exists=True, file_okay=False), metavar="RUN_DIR",
    help="Continue the run in RUN_DIR from its last checkpoint (instead of CONFIG).",
)
@reports_errors
def train(config, overrides, overwrite, resume_dir):
    """Train the model a YAML CONFIG describes; results go to its run directory (the output key).

    Ctrl-C or SIGTERM stops after the current step, saves last.npz and prints the command that
    resumes it. The run directory is locked while it trains.
    """
    if (config is None) == (resume_dir is None):
        raise click.UsageError("give either CONFIG or --resume RUN_DIR")
    if resume_dir and overwrite:
        raise click.UsageError("--overwrite replaces a run; --resume continues one: give only one")
    from .config import load_config
    from .training import fit, resume

    if resume_dir:
        resume(resume_dir, overrides, echo=click.echo)
    else:
        fit(load_config(config, overrides), overwrite=overwrite, echo=click.echo)


@main.command("eval")
@click.argument("run", type=click.Path(exists=True), metavar="RUN_DIR_OR_CHECKPOINT")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option(
    "--checkpoint", type=click.Choice(["best", "last"]), default=None,
    help="Which checkpoint of a run directory to score  [default: best].",
)
@click.option(
    "--data", "data", type=click.Path(exists=True), metavar="FILE_OR_DIR",
    help="Score other data on purpose: a directory of IDX files, an IDX images file (its labels file beside "
    "it), or a file with targets (.npz with x and y, a CSV with the target column).",
)
@set_option
@reports_errors
def evaluate(run, split, checkpoint, data, overrides):
    """Score a trained model: loss and metrics (accuracy and confusion matrix, or MSE/MAE/R2).

    The data must be what the run was trained on (checked by content); --data scores other data.
    """
    from pathlib import Path

    from .evaluate import evaluate_run

    if checkpoint and not Path(run).is_dir():
        raise click.UsageError("--checkpoint chooses within a run directory; RUN is already a checkpoint file")
    evaluate_run(run, split, checkpoint or "best", overrides, echo=click.echo, data=data)


@main.command()
@click.argument("run", type=click.Path(exists=True), metavar="RUN_DIR_OR_CHECKPOINT")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(), metavar="INPUT...")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the predictions to a new CSV file (never overwritten).")
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as one JSON object.")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True, help="Class probabilities shown per input.")
@click.option("--no-show", is_flag=True, help="Do not draw image inputs as block pictures.")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@reports_errors
def predict(run, inputs, output, as_json, top, no_show, checkpoint):
    """Predict with a trained model: one line per input with its label and top class probabilities
    (or predicted values); accuracy or MSE when the inputs carry targets.

    \b
    INPUT: a CSV (models trained on a CSV), .npy/.npz arrays (x, optional y), an IDX images file
    (an IDX labels file may follow it), or image files (PNG, JPEG) for 28x28 image models.
    """
    from .predict import predict_files

    predict_files(run, inputs, top=top, output=output, as_json=as_json, show=not no_show,
                  checkpoint=checkpoint, echo=click.echo)


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@set_option
@click.option("--samples", type=click.IntRange(min=1), default=30, show_default=True, help="Entries checked per array (all if fewer).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Examples from the training data.")
@reports_errors
def gradcheck(config, overrides, samples, batch):
    """Check every layer's backward against central finite differences, in float64, on real data.

    Exits 1 if any layer fails.
    """
    from .config import load_config
    from .gradcheck import TOLERANCE, check_config, format_table

    rows = check_config(load_config(config, overrides), samples=samples, batch=batch)
    click.echo(format_table(rows))
    failed = [row["layer"] for row in rows if not row["passed"]]
    if failed:
        click.echo(f"FAILED: {', '.join(failed)} (relative error above {TOLERANCE:g})", err=True)
        sys.exit(1)
    click.echo(f"all {len(rows)} rows pass (relative error below {TOLERANCE:g})")


if __name__ == "__main__":
    main()
