"""Read-only looks at a config, a model or runs.

    summary.py      `layerwise summary`: shapes, parameters, FLOPs, memory
    trace.py        `layerwise trace`: one training step, layer by layer
    trace_graph.py  trace --dot: the step as a Graphviz graph
    compare.py      `layerwise compare`: runs side by side, config differences
    plot.py         `layerwise plot`: reads and checks the runs for each picture
    figures.py      the matplotlib drawings (curves, confusion, errors, weights)
    gradcheck.py    `layerwise gradcheck`: analytic against numerical gradients
"""
