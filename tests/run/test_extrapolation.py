"""The shipped tabular configs on inputs outside the training rows' range: a class stays the class of
the range's edge (data.linear_copy: clamped) and a regression's trend goes on (unbounded). Two copies
of a column that agree on the training rows can pull apart beyond them, so without the clamp a far-out
row's class was a guess (x = -100 called "hi" on a table where hi means x > 0)."""

from pathlib import Path

import numpy as np

import layerwise
from layerwise.run.loaded import load

REPO = Path(__file__).resolve().parents[2]
FAR = [-100.0, -10.0, -5.0, -3.0, 3.0, 5.0, 10.0, 100.0]


def write_tables(tmp_path, n=200):
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=n), rng.normal(size=n)
    label = np.where(x + 0.2 * rng.normal(size=n) > 0, "hi", "lo")
    y = 2 * x + 0.5 * z + rng.normal(scale=0.3, size=n)
    (tmp_path / "c.csv").write_text("x,z,label\n" + "".join(f"{x[i]:.4f},{z[i]:.4f},{label[i]}\n" for i in range(n)))
    (tmp_path / "r.csv").write_text("x,z,y\n" + "".join(f"{x[i]:.4f},{z[i]:.4f},{y[i]:.4f}\n" for i in range(n)))
    (tmp_path / "far.csv").write_text("x,z\n" + "".join(f"{v},0\n" for v in FAR))


def test_a_class_far_outside_the_training_range_is_the_class_at_its_edge(tmp_path):
    write_tables(tmp_path)
    for seed in (1, 2):  # seeds on which unclamped copies called x = -10 and -100 "hi"
        layerwise.train(REPO / "configs" / "tabular_classification.yaml", echo=None, seed=seed,
                        output=str(tmp_path / f"c{seed}"), **{"data.path": str(tmp_path / "c.csv"), "data.target": "label"})
        labels = load(tmp_path / f"c{seed}").predict(tmp_path / "far.csv")
        assert list(labels) == ["lo"] * 4 + ["hi"] * 4, seed


def test_a_regression_trend_goes_on_past_the_training_range(tmp_path):
    write_tables(tmp_path)
    layerwise.train(REPO / "configs" / "tabular_regression.yaml", echo=None, seed=0, output=str(tmp_path / "r"),
                    **{"data.path": str(tmp_path / "r.csv"), "data.target": "y"})
    y = load(tmp_path / "r").predict(tmp_path / "far.csv")  # the truth is 2x; training x is within about +-3
    assert np.all(np.diff(y) > 0)  # rising all the way
    assert y[-2] > 12 and y[1] < -12  # at x = +-10: past the +-7 the clipped inputs alone level off at
