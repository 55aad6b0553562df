"""Use a trained model on new inputs: `layerwise.load(run)` and `layerwise predict RUN INPUT...`.

The checkpoint carries the config, the weights and the preprocessing, so nothing here reads the
training data.
"""

import csv
import io
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .run.loaded import load

PICTURE_LIMIT = 20  # block pictures are drawn when there are at most this many image inputs


def predict_files(run, paths, top=3, output=None, as_json=False, show=True, checkpoint="best", echo=print,
                  stdout=None):
    """`layerwise predict`: one line per input, and with `output` the predictions in a new file whose
    extension chooses the format (.csv, .json, .npy), or `-`: CSV on `stdout` (a callable taking text;
    default sys.stdout.write). Returns the result dict (with as_json nothing is printed but notes: the
    caller prints the dict as the JSON document)."""
    from .data.inputs import merged, read_inputs

    if output is not None and output != "-":
        check_output(output)
    kind = None if output is None else output_format(output)
    loaded = load(run, checkpoint)
    inputs = merged(read_inputs(paths, loaded.preprocessing, loaded.task))
    outputs = loaded.outputs(inputs.x)
    result = summarise(loaded, inputs, outputs, top)
    if output == "-":
        import sys

        (stdout or sys.stdout.write)(csv_text(loaded, inputs, outputs))
    elif output is not None:
        write_output(output, kind, loaded, inputs, outputs, result)
    if not as_json:
        for line in report_lines(loaded, inputs, result, show):
            echo(line)
        if output is not None and output != "-":
            echo(f"wrote {len(inputs.x):,} predictions to {output} ({kind.upper()})")
    return result


# -o FILE: the extension chooses the format; `-o -` is CSV on stdout.
OUTPUT_FORMATS = {".csv": "csv", ".json": "json", ".npy": "npy"}


def output_format(output):
    """"csv", "json" or "npy" for an -o name; an unknown extension is refused (never CSV under another name)."""
    if output == "-":
        return "csv"
    suffix = Path(output).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ConfigError(f"-o {output}: unknown extension {suffix or '(none)'!s}; the format follows the extension: "
                          ".csv (a table), .json (what --json prints) or .npy (probabilities, or predicted values), "
                          "or -o - for CSV on standard output")
    return OUTPUT_FORMATS[suffix]


def summarise(loaded, inputs, outputs, top):
    has = _has_target(inputs)
    rows = []
    result = {"run": str(loaded.path), "task": loaded.task, "inputs": len(outputs), "predictions": rows}
    if loaded.task == "classification":
        proba = loaded.probabilities(outputs)
        k = min(top, proba.shape[1])
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        for i, name in enumerate(inputs.names):
            row = {"input": name, "prediction": loaded.classes[order[i, 0]],
                   "top": [{"class": loaded.classes[j], "probability": float(proba[i, j])} for j in order[i]]}
            if has[i]:
                row["target"] = loaded.classes[inputs.y[i]]
            rows.append(row)
        if has.any():
            result["accuracy"] = float(np.mean(proba.argmax(axis=1)[has] == inputs.y[has]))
    else:
        names = loaded.preprocessing.get("target_names") or [f"y{j}" for j in range(outputs.shape[1])]
        for i, name in enumerate(inputs.names):
            value = [float(v) for v in outputs[i]]
            row = {"input": name, "prediction": value[0] if len(value) == 1 else dict(zip(names, value))}
            if has[i]:
                target = [float(v) for v in inputs.y[i]]
                row["target"] = target[0] if len(target) == 1 else dict(zip(names, target))
            rows.append(row)
        if has.any():
            from .run.metrics import regression_metrics

            result.update(regression_metrics(outputs[has], inputs.y[has]))
    result["with_target"] = int(has.sum())
    return result


def _has_target(inputs):
    """(N,) bool: which rows have a target."""
    if inputs.y is None:
        return np.zeros(len(inputs.x), dtype=bool)
    if inputs.has_target is None:
        return np.ones(len(inputs.x), dtype=bool)
    return inputs.has_target


def report_lines(loaded, inputs, result, show):
    rows = result["predictions"]
    width = min(max((len(r["input"]) for r in rows), default=0), 40)
    pictures = show and inputs.images is not None and len(rows) <= PICTURE_LIMIT
    render = _renderer() if pictures else None
    label_width = max((len(c) for c in loaded.classes or []), default=0)
    lines = []
    for i, row in enumerate(rows):
        text = f"{row['input']:<{width}}  {_prediction_text(row, label_width)}"
        if render is None:
            lines.append(text)
            continue
        picture = render(inputs.images[i]).splitlines()
        middle = len(picture) // 2
        pad = max((len(p) for p in picture), default=0)
        lines.extend(f"{p:<{pad}}  {text if j == middle else ''}".rstrip() for j, p in enumerate(picture))
    if show and inputs.images is not None and len(rows) > PICTURE_LIMIT:
        lines.append(f"(pictures are drawn for at most {PICTURE_LIMIT} images; these are {len(rows):,})")
    n_target = result["with_target"]
    if "accuracy" in result:
        right = round(result["accuracy"] * n_target)
        lines.append(f"accuracy {100 * result['accuracy']:.2f}% ({right:,} of {n_target:,} inputs with a target)")
    elif "mse" in result:
        lines.append(f"mse {result['mse']:.4f}  mae {result['mae']:.4f}  R2 {result['r2']:.4f} "
                     f"({n_target:,} inputs with a target)")
    return lines


def _prediction_text(row, label_width=0):
    if "top" in row:
        probs = ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in row["top"])
        text = f"{row['prediction']:<{label_width}}  ({probs})"
        if "target" in row:
            text += f"  true {row['target']}" + ("" if row["target"] == row["prediction"] else "  <- wrong")
        return text
    text = _values(row["prediction"])
    if "target" in row:
        text += f"  (true {_values(row['target'])})"
    return text


def _values(value):
    if isinstance(value, dict):
        return "  ".join(f"{k} {v:.4g}" for k, v in value.items())
    return f"{value:.4g}"


def _renderer():
    try:
        from .data.images import render_blocks
    except ImportError:
        return None
    return render_blocks


def check_output(output):
    """Refuse an -o file that exists (never overwritten), whose name is unusable or whose directory does
    not exist (util/outputs.py: the rule every user-named output follows)."""
    from .util.outputs import check_output as check_new

    return check_new(output, "-o")


def csv_text(loaded, inputs, outputs):
    """The CSV: input, prediction (or prediction_<target>), p_<class> per class, and target when known."""
    from .util.text import (
        spreadsheet_safe as safe,  # names come from the user's files and the checkpoint
    )

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if loaded.task == "classification":
        proba = loaded.probabilities(outputs)
        header = ["input", "prediction"] + [f"p_{c}" for c in loaded.classes]
        cells = [[safe(name), safe(loaded.classes[p.argmax()])] + [f"{v:.6g}" for v in p] for name, p in zip(inputs.names, proba)]
        target = None if inputs.y is None else [safe(loaded.classes[t]) for t in inputs.y]
    else:
        names = loaded.preprocessing.get("target_names") or [f"y{j}" for j in range(outputs.shape[1])]
        header = ["input"] + (["prediction"] if outputs.shape[1] == 1 else [f"prediction_{n}" for n in names])
        cells = [[safe(name)] + [f"{v:.8g}" for v in o] for name, o in zip(inputs.names, outputs)]
        target = None if inputs.y is None else [
            f"{t[0]:.8g}" if len(t) == 1 else " ".join(f"{v:.8g}" for v in t) for t in inputs.y]
    if target is not None:
        has = _has_target(inputs)
        target = [t if h else "" for t, h in zip(target, has)]
        header.append("target")
        cells = [row + [t] for row, t in zip(cells, target)]
    writer.writerow([safe(h) for h in header])
    writer.writerows(cells)
    return out.getvalue()


def write_output(output, kind, loaded, inputs, outputs, result):
    """The predictions as a new file (atomic, never overwriting): CSV, the --json document, or an .npy of
    the class probabilities (N, classes) or predicted values (N, targets), float32."""
    from .util.outputs import create_output

    if kind == "csv":
        data = csv_text(loaded, inputs, outputs).encode()
    elif kind == "json":
        from .util.fileio import json_text

        data = (json_text(result) + "\n").encode()
    else:
        values = loaded.probabilities(outputs) if loaded.task == "classification" else outputs
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(values, dtype=np.float32), allow_pickle=False)
        data = buffer.getvalue()
    create_output(output, lambda f: f.write(data), "-o")
