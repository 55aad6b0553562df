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


def computes(command):
    """--threads N (or $LAYERWISE_THREADS): the command's BLAS thread count, set before it computes."""

    @click.option("--threads", type=click.IntRange(1, 1024), metavar="N",
                  help="BLAS threads for NumPy's matrix products (default: $LAYERWISE_THREADS, else the library's).")
    @functools.wraps(command)
    def wrapper(*args, threads=None, **kwargs):
        from .util.threads import limited

        with limited(threads):
            return command(*args, **kwargs)

    return wrapper


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
@computes
def train(config, overrides, overwrite, resume_dir):
    """Train the model a YAML CONFIG describes; results go to its run directory (the output key).

    Ctrl-C or SIGTERM stops after the current step, saves last.npz and prints the command that
    resumes it. The run directory is locked while it trains.
    """
    if (config is None) == (resume_dir is None):
        raise click.UsageError("give either CONFIG or --resume RUN_DIR")
    if resume_dir and overwrite:
        raise click.UsageError("--overwrite replaces a run; --resume continues one: give only one")
    from .config.schema import load_config
    from .run.fit import fit, resume

    if resume_dir:
        resume(resume_dir, overrides, echo=click.echo)
    else:
        fit(load_config(config, overrides), overwrite=overwrite, echo=click.echo)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout (notes go to stderr)."
)


def _echo(as_json):
    """Where a command's progress and notes go: stderr when stdout carries the JSON document."""
    return functools.partial(click.echo, err=True) if as_json else click.echo


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
@json_option
@reports_errors
@computes
def evaluate(run, split, checkpoint, data, overrides, as_json):
    """Score a trained model: loss and metrics (accuracy and confusion matrix, or MSE/MAE/R2).

    The data must be what the run was trained on (checked by content); --data scores other data.
    """
    from pathlib import Path

    from .run.evaluate import evaluate_run

    if checkpoint and not Path(run).is_dir():
        raise click.UsageError("--checkpoint chooses within a run directory; RUN is already a checkpoint file")
    result = evaluate_run(run, split, checkpoint or "best", overrides, echo=_echo(as_json), data=data)
    if as_json:
        from .util.fileio import json_text

        click.echo(json_text(result))


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
@computes
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
@click.argument("run", type=click.Path(exists=True), metavar="RUN_DIR_OR_CHECKPOINT")
@click.argument("output", type=click.Path(dir_okay=False), metavar="OUT.onnx")
@click.option("--opset", type=int, default=20, show_default=True, help="ONNX opset version to write.")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@json_option
@reports_errors
def export(run, output, opset, checkpoint, as_json):
    """Write a trained model, with its preprocessing, as an ONNX file (a new file, never overwritten).

    \b
    The graph takes the raw inputs `layerwise predict` takes in a .npy (pixels 0-255, or a table's
    encoded columns) and returns class probabilities, label and class name, or regression values
    in the target's units. Needs the onnx extra: pip install 'layerwise[onnx]'.
    """
    from .export.to_onnx import export_onnx

    result = export_onnx(run, output, opset=opset, checkpoint=checkpoint)
    if as_json:
        from .util.fileio import json_text

        click.echo(json_text(result))
        return
    ops = ", ".join(f"{op} {n}" for op, n in sorted(result["ops"].items(), key=lambda kv: (-kv[1], kv[0])))
    click.echo(f"exported {result['checkpoint']} (epoch {result['epoch']}) to {result['output']}: "
               f"{result['bytes']:,} bytes, opset {result['opset']}, IR version {result['ir_version']}")
    click.echo(f"input {result['input']}; outputs {', '.join(result['outputs'])}; ops: {ops}")


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False), required=False)
@set_option
@click.option("--seeds", type=click.IntRange(min=1), help="Add a seed axis: seeds 0..K-1 for every combination.")
@click.option("--samples", type=click.IntRange(min=1), help="Draw N random trials (samplers: loguniform(a,b), uniform(a,b), choice(a,b,...), int(a,b)).")
@click.option("--jobs", type=click.IntRange(min=1), help="Trials at a time (default: the number of cores; 1 runs them in this process).")
@click.option("--output", type=click.Path(file_okay=False), metavar="DIR", help="The sweep directory (default sweeps/<config name>).")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="Continue the sweep in DIR: finished trials are kept, the others resumed or run.")
@click.option("--threads", type=click.IntRange(1, 1024), metavar="N",
              help="BLAS threads per trial (default: $LAYERWISE_THREADS, else 1).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool on this machine; ray: Ray tasks (pip install 'layerwise[ray]').")
@click.option("--address", metavar="ADDR", help="With --backend ray: join the cluster at ADDR ('auto': the one on this machine).")
@json_option
@reports_errors
def sweep(config, overrides, seeds, samples, jobs, output, resume_dir, threads, backend, address, as_json):
    """Train CONFIG once per combination of the swept values, each trial a run directory.

    \b
    A comma makes an axis: -s optimizer.lr=0.01,0.05,0.1 (a [list] stays one value).
    Every trial runs exactly as `layerwise train CONFIG -s ...` with one BLAS thread.
    """
    from .sweep.runner import resume_sweep, run_sweep

    echo = _echo(as_json)
    if resume_dir:
        if config or overrides or seeds or samples or output:
            raise click.UsageError("--resume DIR continues a sweep as it was defined; give no CONFIG, -s, --seeds, "
                                   "--samples or --output with it")
        result = resume_sweep(resume_dir, jobs=jobs, echo=echo, threads=threads, backend=backend, address=address)
    else:
        if not config:
            raise click.UsageError("give a CONFIG to sweep, or --resume DIR")
        result = run_sweep(config, overrides, seeds=seeds, samples=samples, jobs=jobs, output=output, echo=echo,
                           threads=threads, backend=backend, address=address)
    if as_json:
        from .util.fileio import json_text

        click.echo(json_text(result))


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@set_option
@click.option("--samples", type=click.IntRange(min=1), default=30, show_default=True, help="Entries checked per array (all if fewer).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Examples from the training data.")
@json_option
@reports_errors
@computes
def gradcheck(config, overrides, samples, batch, as_json):
    """Check every layer's backward against central finite differences, in float64, on real data.

    Exits 1 if any layer fails.
    """
    from .config.schema import load_config
    from .views.gradcheck import TOLERANCE, check_config, format_table

    rows = check_config(load_config(config, overrides), samples=samples, batch=batch)
    failed = [row["layer"] for row in rows if not row["passed"]]
    if as_json:
        from .util.fileio import json_text

        click.echo(json_text({"tolerance": TOLERANCE, "passed": not failed, "rows": rows}))
        sys.exit(1 if failed else 0)
    click.echo(format_table(rows))
    if failed:
        click.echo(f"FAILED: {', '.join(failed)} (relative error above {TOLERANCE:g})", err=True)
        sys.exit(1)
    click.echo(f"all {len(rows)} rows pass (relative error below {TOLERANCE:g})")


@main.command("config")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@set_option
@reports_errors
def show_config(config, overrides):
    """Print the fully resolved config as YAML.

    Every key with its default filled in and every layer's arguments (in_features inferred). A run
    directory's config.yaml is exactly this text."""
    from .run.resolve import resolved_yaml

    click.echo(resolved_yaml(config, overrides, echo=_echo(True)), nl=False)


@main.command()
@click.argument("target", type=click.Path(exists=True), metavar="CONFIG_OR_RUN")
@set_option
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Batch size for the activation memory  [default: train.batch_size].")
@json_option
@reports_errors
def summary(target, overrides, batch, as_json):
    """Show each layer's shape, parameters and FLOPs (no training).

    One row per layer (output shape, parameters, forward FLOPs per example, activation memory for a
    batch), then the totals. For a run directory, also statistics of its trained weights (best.npz)."""
    from .views.summary import format_summary, summarize

    result = summarize(target, overrides, batch, echo=_echo(True))
    if as_json:
        from .util.fileio import json_text

        click.echo(json_text(result))
    else:
        click.echo(format_summary(result))


@main.command()
@click.argument("target", type=click.Path(exists=True), metavar="CONFIG_OR_RUN")
@set_option
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Training examples in the step.")
@click.option("--dot", "dot_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also draw the step as a graph: FILE.dot, or FILE.svg/.png/.pdf when Graphviz's dot is installed.")
@click.option("--units", is_flag=True, help="With --dot: one node per unit (small models, every layer <= 16 units).")
@json_option
@reports_errors
@computes
def trace(target, overrides, batch, dot_file, units, as_json):
    """Trace one training step, layer by layer.

    On a real batch: each forward equation with its shapes and output statistics, then the backward
    pass from the loss down with gradient norms and update/weight ratios, and warnings for dead
    units, vanishing or exploding gradients.

    CONFIG starts from its seeded initial weights; a RUN directory from its last.npz. Nothing is updated.
    """
    from .views.trace import format_trace, trace_step

    if units and not dot_file:
        raise click.UsageError("--units draws the graph one node per unit: give --dot FILE too")
    echo = _echo(as_json)
    if dot_file:
        from .views.trace_graph import check_graph_target

        check_graph_target(dot_file)
    report, arrays = trace_step(target, overrides, batch, echo=echo)
    if dot_file:
        from .views.trace_graph import write_graph

        echo(write_graph(dot_file, report, arrays, units))
    if as_json:
        from .util.fileio import json_text

        click.echo(json_text(report))
    else:
        click.echo(format_trace(report))


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False), metavar="RUN...")
@json_option
@reports_errors
def compare(runs, as_json):
    """Compare runs side by side, best validation metric first.

    One row per run: the config keys that differ between the runs, epochs, best epoch and its
    validation metric, test metrics and training time."""
    from .views.compare import compare_runs, format_comparison

    result = compare_runs(runs)
    if as_json:
        from .util.fileio import json_text

        click.echo(json_text(result))
    else:
        click.echo(format_comparison(result))


@main.command(short_help="Pictures of runs: curves, confusion matrix, mistakes, weights.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False), metavar="RUN...")
@click.option(
    "--what", type=click.Choice(["curves", "confusion", "errors", "weights"]), default="curves", show_default=True,
    help="curves: loss, validation metric and lr per epoch (runs overlaid); confusion: the test confusion "
    "matrix; errors: the test images the model gets wrong (regression: predicted against true); weights: the "
    "first linear layer's weights (28x28 tiles for image models).",
)
@click.option("-o", "--output", type=click.Path(), help="Write this .png, .svg or .pdf file instead of RUN/plots/<what>.png.")
@click.option("--overwrite", is_flag=True, help="Replace the -o file if it already exists.")
@reports_errors
def plot(runs, what, output, overwrite):
    """Draw pictures of trained runs (needs matplotlib: pip install 'layerwise[plot]').

    Writes RUN/plots/<what>.png (replaced on each call; several runs' curves go to the first run's
    plots/curves-vs-<others>.png) and prints its path. PNG sizes: curves 1200x800, confusion 900x800,
    errors 1200x1000, weights 1600x800 pixels.
    """
    from .views.plot import plot_runs

    for path in plot_runs(runs, what, output, overwrite):
        click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()
