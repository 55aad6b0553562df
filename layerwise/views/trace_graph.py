"""`layerwise trace --dot FILE`: the traced step as a Graphviz graph, in the spirit of micrograd's draw_dot.

Layer level (default): a record node per array (the input, each layer's output, each parameter, the
loss) with its shape, data norm and gradient norm, and an ellipse per operation (each layer, the
loss). Unit level (--units, small models): a node per unit with its value and gradient for the
first example, a node per weight with its value and batch gradient, an operation per unit.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..errors import ConfigError, LayerwiseError
from ..util.outputs import check_output, create_output

RENDERED = (".svg", ".png", ".pdf")
MAX_UNITS = 16


def graph_file(path):
    """The file --dot FILE writes: FILE, or FILE.dot when FILE asks for a picture and Graphviz's dot
    is not installed."""
    path = Path(path)
    if path.suffix.lower() in RENDERED and shutil.which("dot") is None:
        return path.with_suffix(".dot")
    return path


def check_graph_target(path):
    """Refuse, before tracing, a FILE that exists (never overwritten, nor a dangling link), whose name is
    unusable or whose directory does not exist: the rule of every user-named output (util/outputs.py)."""
    check_output(path, "--dot")
    if graph_file(path) != Path(path):
        check_output(graph_file(path), "--dot")


def write_graph(path, report, arrays, units=False):
    """Write the DOT text, or the picture when FILE ends in .svg/.png/.pdf and `dot` is installed, as a
    new file (create_output: a file that appeared meanwhile is left alone). Returns the message saying
    what was written (and how to render it if it was not)."""
    path = Path(path)
    text = unit_graph(report, arrays) if units else layer_graph(report, arrays)
    fmt = path.suffix.lower()
    if fmt not in RENDERED:
        create_output(path, lambda f: f.write(text.encode()), "--dot")
        return f"wrote the graph to {path}; render it with: dot -Tsvg {path} -o {path.with_suffix('.svg')}"
    dot = shutil.which("dot")
    if dot is None:
        dot_path = graph_file(path)
        create_output(dot_path, lambda f: f.write(text.encode()), "--dot")
        return (f"Graphviz's dot is not installed, so wrote the graph as text to {dot_path}; render it with "
                f"`dot -T{fmt[1:]} {dot_path} -o {path}` after installing Graphviz (Debian/Ubuntu: apt-get install graphviz)")
    done = subprocess.run([dot, f"-T{fmt[1:]}"], input=text.encode(), capture_output=True)
    if done.returncode != 0:
        problem = done.stderr.decode(errors="replace").strip().splitlines()
        raise LayerwiseError(f"--dot: Graphviz's dot could not render {path}: {problem[0] if problem else done.returncode}")
    create_output(path, lambda f: f.write(done.stdout), "--dot")
    return f"wrote the graph to {path} (rendered by Graphviz's dot)"


# --- layer level ---------------------------------------------------------------------------------


def layer_graph(report, arrays):
    """One record node per array, one ellipse per operation, edges in the direction of the forward pass."""
    lines = _header(f"{report['name']}: one training step, {report['batch']} examples; norms over the batch")
    _record(lines, "x", "input x", arrays["x"], arrays["dx"])
    previous = "x"
    for row, y, dy in zip(report["forward"], arrays["y"], arrays["dy"]):
        i = row["index"]
        op = f"op{i}"
        lines.append(f'  {op} [label="{_escape(_op_label(row))}", shape=ellipse, style=filled, fillcolor="#dde8f8"];')
        lines.append(f"  {previous} -> {op};")
        for name, p in arrays["params"].items():
            if name.split(".")[0] == str(i):
                node = "p" + name.replace(".", "_")
                _record(lines, node, name, p, arrays["grads"][name], fill="#f8ecd4")
                lines.append(f"  {node} -> {op};")
        node = f"y{i}"
        _record(lines, node, f"y{i}: output of [{i}]", y, dy)
        lines.append(f"  {op} -> {node};")
        previous = node
    loss = report["loss"]
    lines.append(f'  oploss [label="{_escape(loss["name"])}", shape=ellipse, style=filled, fillcolor="#f8d8d8"];')
    lines.append(f"  {previous} -> oploss;")
    lines.append(f'  loss [label="loss L | value {loss["value"]:.4g} | grad 1", shape=record, style=filled, fillcolor="#f8d8d8"];')
    lines.append("  oploss -> loss;")
    return "\n".join(lines + ["}"]) + "\n"


def _op_label(row):
    kind = row["layer"].split("(")[0]
    formula = row["equation"].split("   ")[0]
    return f"[{row['index']}] {kind}\n{formula}"


def _record(lines, node, title, data, grad, fill="white"):
    shape = "(" + ",".join(map(str, data.shape)) + ("," if data.ndim == 1 else "") + ")"
    g = "-" if grad is None else f"{np.linalg.norm(grad):.3g}"
    # Without outer braces a record's fields stack vertically in a left-to-right graph: compact nodes.
    label = f"{_escape(title)} | shape {shape} | norm {np.linalg.norm(data):.3g} | grad norm {g}"
    lines.append(f'  {node} [label="{label}", shape=record, style=filled, fillcolor="{fill}"];')


# --- unit level ----------------------------------------------------------------------------------


def unit_graph(report, arrays):
    """One node per unit (value and gradient for example 0), per weight (value, batch gradient)."""
    widths = [arrays["x"].shape[1]] + [y.shape[1] for y in arrays["y"]]
    if max(widths) > MAX_UNITS:
        raise ConfigError(
            f"--units draws one node per unit and needs every layer to have at most {MAX_UNITS} units; this model has "
            f"{max(widths)} (widths {widths}): drop --units for the layer-level graph"
        )
    lines = _header(f"{report['name']}: one training step; units show example 0: value and dL/d(value); "
                    f"weight columns: value and gradient over the batch")
    values = [arrays["x"][0]] + [y[0] for y in arrays["y"]]
    grads = [arrays["dx"][0]] + [dy[0] for dy in arrays["dy"]]  # dy[i] = dL/d(output of layer i)
    names = ["x"] + [f"y{i}" for i in range(len(arrays["y"]))]
    for level, (name, v, g) in enumerate(zip(names, values, grads)):
        with_rank = [f'  subgraph cluster_{name} {{ label="{name}"; color="#bbbbbb";']
        for j in range(len(v)):
            with_rank.append(f'    {name}_{j} [label="{name}[{j}] | value {v[j] + 0:.3g} | grad {g[j] + 0:.3g}", shape=record];')
        lines += with_rank + ["  }"]
    for row in report["forward"]:
        i = row["index"]
        src, dst = names[i], names[i + 1]
        kind = row["layer"].split("(")[0]
        W, b = arrays["params"].get(f"{i}.W"), arrays["params"].get(f"{i}.b")
        for j in range(len(values[i + 1])):
            op = f"op{i}_{j}"
            if W is not None:
                gW, gb = arrays["grads"][f"{i}.W"], arrays["grads"].get(f"{i}.b")
                fields = [f"{kind} unit {j}: sum_k {src}[k] W{i}[k,{j}]" + (f" + b{i}[{j}]" if b is not None else ""),
                          f"W{i}[:,{j}] = {_numbers(W[:, j])}", f"grad {_numbers(gW[:, j])}"]
                if b is not None:
                    fields.append(f"b{i}[{j}] = {b[j]:.3g}   grad {gb[j]:.3g}")
                lines.append(f'  {op} [label="{" | ".join(fields)}", shape=record, style=filled, fillcolor="#f8ecd4", fontsize=10];')
                for k in range(W.shape[0]):
                    lines.append(f"  {src}_{k} -> {op};")
            else:
                lines.append(f'  {op} [label="{_escape(kind.lower())}", shape=ellipse];')
                lines.append(f"  {src}_{j} -> {op};")
            lines.append(f"  {op} -> {dst}_{j};")
    loss = report["loss"]
    lines.append(f'  oploss [label="{_escape(loss["name"])}", shape=ellipse, style=filled, fillcolor="#f8d8d8"];')
    for j in range(len(values[-1])):
        lines.append(f"  {names[-1]}_{j} -> oploss;")
    lines.append(f'  loss [label="loss L | value {loss["value"]:.4g} | grad 1", shape=record, style=filled, fillcolor="#f8d8d8"];')
    lines.append("  oploss -> loss;")
    return "\n".join(lines + ["}"]) + "\n"


def _numbers(values, per_line=5):
    """Numbers to 3 significant digits, `per_line` to a line of a record field."""
    text = [f"{v + 0:.3g}" for v in values]  # + 0 turns -0.0 into 0.0
    return "\\n".join(" ".join(text[n : n + per_line]) for n in range(0, len(text), per_line))


def _header(title):
    return [
        "digraph trace {",
        "  rankdir=LR;",
        f'  label="{_escape(title)}"; labelloc=t; fontsize=16;',
        '  node [fontname="Helvetica", fontsize=11];',
    ]


def _escape(text):
    """Text safe inside a quoted DOT record label (braces, bars and angle brackets are syntax there)."""
    for ch in '\\"{}|<>':
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", "\\n")
