"""The package layout: imports between folders go one way, with no cycles (scripts/layout_check.py)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "layout_check.py"
spec = importlib.util.spec_from_file_location("layout_check", SCRIPT)
layout_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(layout_check)


def test_cycle_search_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert layout_check.cycles(graph) == [["a", "b", "c"]]
    assert layout_check.cycles({"a": {"b"}, "b": set()}) == []


def test_folders_of_modules():
    assert layout_check.folder("layerwise.nn.linear") == "nn"
    assert layout_check.folder("layerwise.cli") == "top"
    assert layout_check.folder("layerwise.errors") == "errors"


def test_package_has_no_cycles_and_imports_go_one_way():
    graph, found, breaks, _ = layout_check.check()
    assert "layerwise.nn.linear" in graph and graph["layerwise.run.fit"]  # the walk saw real imports
    assert found == []
    assert breaks == []
    # nn is the math only: it uses nothing of the run, the data or the views
    nn_targets = {layout_check.folder(t) for n, ts in graph.items() if n.startswith("layerwise.nn") for t in ts}
    assert not nn_targets & {"run", "data", "views", "config", "optim"}
