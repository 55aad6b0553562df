"""The `layerwise` command: parse arguments, call the library, report.

NumPy and the training code are imported inside the commands so `layerwise --help` starts fast.
"""

import click

from . import __version__
from .cli_support import (
    Command,
    _echo,
    computes,
    json_option,
    reports_errors,
    say,
    say_json,
    set_option,
)
from .cli_views import VIEW_COMMANDS


@click.group(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerwise")
def main():
    """Train and evaluate neural networks whose every layer has a hand-derived backward in NumPy.

    \b
    Exit codes: 0 success; 1 data or checkpoint problem, or gradcheck failed;
    2 usage or config error; 3 training diverged; 4 a file cannot be written
    or read (disk full, read-only, permission denied); 5 the run directory is
    in use by another layerwise process; 130 interrupted (Ctrl-C);
    143 stopped by SIGTERM (in any command; training saves last.npz).
    """


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False), required=False)
@set_option
@click.option("--overwrite", is_flag=True, help="Replace the run directory if it already holds a run.")
@click.option(
    "--resume", "resume_dir", type=click.Path(exists=True, file_okay=False), metavar="RUN_DIR",
    help="Continue the run in RUN_DIR from its last checkpoint (instead of CONFIG); a run with every epoch "
    "trained but no test.json gets its test evaluation.",
)
@json_option
@reports_errors
@computes
def train(config, overrides, overwrite, resume_dir, as_json):
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

    echo = _echo(as_json)
    if resume_dir:
        result = resume(resume_dir, overrides, echo=echo)
    else:
        result = fit(load_config(config, overrides), overwrite=overwrite, echo=echo)
    if as_json:
        say_json({"run_dir": str(result["run_dir"]), "best": result["best"], "test": result["test"],
                  "history": result["history"]})


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
        say_json(result)


@main.command()
@click.argument("run", type=click.Path(exists=True), metavar="RUN_DIR_OR_CHECKPOINT")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(), metavar="INPUT...")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the predictions to a new file (never overwritten), its format by the extension: "
              ".csv, .json or .npy; - writes the CSV to stdout (the lines then go to stderr).")
@json_option
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

    if output == "-" and as_json:
        raise click.UsageError("-o - writes the CSV to stdout and --json the JSON document: give only one "
                               "(or -o FILE.json)")
    result = predict_files(run, inputs, top=top, output=output, as_json=as_json, show=not no_show,
                           checkpoint=checkpoint, echo=_echo(as_json or output == "-"),
                           stdout=lambda text: say(text, nl=False))
    if as_json:
        say_json(result)


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
        say_json(result)
        return
    ops = ", ".join(f"{op} {n}" for op, n in sorted(result["ops"].items(), key=lambda kv: (-kv[1], kv[0])))
    say(f"exported {result['checkpoint']} (epoch {result['epoch']}) to {result['output']}: "
               f"{result['bytes']:,} bytes, opset {result['opset']}, IR version {result['ir_version']}")
    say(f"input {result['input']}; outputs {', '.join(result['outputs'])}; ops: {ops}")


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
        say_json(result)


for command in VIEW_COMMANDS:
    main.add_command(command)


if __name__ == "__main__":
    main()
