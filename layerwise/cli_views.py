"""The `layerwise` commands that look at configs, models and runs: gradcheck, config, summary, trace,
compare, plot (registered on the group in cli.py)."""

import sys

import click

from .cli_support import (
    _echo,
    computes,
    json_option,
    reports_errors,
    say,
    say_json,
    set_option,
)


@click.command()
@click.argument("config", type=click.Path(exists=True), metavar="CONFIG_OR_RUN")
@set_option
@click.option("--samples", type=click.IntRange(min=1), default=30, show_default=True, help="Entries checked per array (all if fewer).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Examples from the training data.")
@json_option
@reports_errors
@computes
def gradcheck(config, overrides, samples, batch, as_json):
    """Check every layer's backward against central finite differences, in float64, on real data.

    CONFIG starts from its seeded initial weights; a RUN directory (as summary and trace take it) is
    checked at its trained weights (best.npz, else last.npz).

    Exits 1 if any layer fails.
    """
    from .views.gradcheck import TOLERANCE, check_target, format_table

    rows = check_target(config, overrides, samples=samples, batch=batch)
    failed = [row["layer"] for row in rows if not row["passed"]]
    if as_json:
        say_json({"tolerance": TOLERANCE, "passed": not failed, "rows": rows})
        sys.exit(1 if failed else 0)
    say(format_table(rows))
    if failed:
        say(f"FAILED: {', '.join(failed)} (relative error above {TOLERANCE:g})", err=True)
        sys.exit(1)
    say(f"all {len(rows)} rows pass (relative error below {TOLERANCE:g})")


@click.command("config")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@set_option
@reports_errors
def show_config(config, overrides):
    """Print the fully resolved config as YAML.

    Every key with its default filled in and every layer's arguments (in_features inferred). A run
    directory's config.yaml is exactly this text."""
    from .run.resolve import resolved_yaml

    say(resolved_yaml(config, overrides, echo=_echo(True)), nl=False)


@click.command()
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
        say_json(result)
    else:
        say(format_summary(result))


@click.command()
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

    if units and dot_file is None:
        raise click.UsageError("--units draws the graph one node per unit: give --dot FILE too")
    echo = _echo(as_json)
    if dot_file is not None:
        from .views.trace_graph import check_graph_target

        check_graph_target(dot_file)
    report, arrays = trace_step(target, overrides, batch, echo=echo)
    if dot_file is not None:
        from .views.trace_graph import write_graph

        echo(write_graph(dot_file, report, arrays, units))
    if as_json:
        say_json(report)
    else:
        say(format_trace(report))


@click.command()
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
        say_json(result)
    else:
        say(format_comparison(result))


@click.command(short_help="Pictures of runs: curves, confusion matrix, mistakes, weights.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False), metavar="RUN...")
@click.option(
    "--what", type=click.Choice(["curves", "confusion", "errors", "weights", "features"]), default="curves", show_default=True,
    help="curves: loss, validation metric and lr per epoch (runs overlaid); confusion: the test confusion "
    "matrix; errors: the test images the model gets wrong (regression: predicted against true); weights: the "
    "first linear layer's weights (28x28 tiles for image models; a CNN's first conv filters); features: one test "
    "image's feature maps, layer by layer (CNN runs).",
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
        say(f"wrote {path}")


VIEW_COMMANDS = (gradcheck, show_config, summary, trace, compare, plot)
