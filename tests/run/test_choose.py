"""optimizer.weight_decay_choices: the first pass is trained once per value, the best on validation
becomes the run's weight decay, written to its config.yaml as if given; the trials are in the output,
the run state and test.json, and nothing is written before the choice is made."""

import json

import pytest
import yaml
from test_refit import arrays, same
from test_tabular_budget import interrupt_after, quiet, write_run

from layerwise.config.schema import load_config
from layerwise.errors import ConfigError, TrainingInterrupted
from layerwise.run.fit import fit, resume
from layerwise.util.npz import load_checkpoint

CHOICES = ["optimizer.weight_decay=null", "optimizer.weight_decay_choices=[0.0, 1.0, 30.0]", "train.refit=true"]


def test_the_best_choice_on_validation_trains_the_run_as_if_it_were_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    lines = []
    chose = fit(load_config(config, ["output=chose", *CHOICES]), echo=lines.append)
    saved = json.loads((tmp_path / "chose" / "test.json").read_text())
    tried = {f"{t['weight_decay']:g}": {k: v for k, v in t.items() if k != "weight_decay"}
             for t in saved["weight_decay_tried"]}
    assert list(tried) == ["0", "1", "30"]
    # each trial is its plain first pass: the same best epoch and val loss as a run given that value
    for value, trial in tried.items():
        plain = fit(load_config(config, [f"output=plain{value}", f"optimizer.weight_decay={value}"]), echo=quiet)
        assert trial == {"val_loss": plain["best"]["value"], "epoch": plain["best"]["epoch"]}
    best = min(tried, key=lambda v: tried[v]["val_loss"])
    assert saved["weight_decay"] == float(best)
    assert len({t["val_loss"] for t in tried.values()}) == 3  # the choice was a real one
    # the run is the run of the chosen value, to the bit, and its config.yaml says so
    given = fit(load_config(config, ["output=given", f"optimizer.weight_decay={best}", "train.refit=true"]), echo=quiet)
    for name in ("best.npz", "last.npz"):
        assert same(arrays(tmp_path / "chose" / name), arrays(tmp_path / "given" / name)), name
    assert chose["test"]["loss"] == given["test"]["loss"] and chose["best"] == given["best"]
    recorded = yaml.safe_load((tmp_path / "chose" / "config.yaml").read_text())["optimizer"]
    assert recorded["weight_decay"] == float(best) and recorded.get("weight_decay_choices") is None
    # what a person reads: one line per trial, then the choice, before the run's own header
    header = next(i for i, line in enumerate(lines) if line.startswith("training csv"))
    assert lines[header - 5].startswith("choosing optimizer.weight_decay among 0, 1, 30, each scaled by 50 / 84 "
                                        "training rows (optimizer.decay_rows) on the 12 validation rows")
    assert [line.split(":")[0] for line in lines[header - 4:header - 1]] == [
        "  weight decay 0", "  weight decay 1", "  weight decay 30"]
    assert lines[header - 1] == f"optimizer.weight_decay {best}: the best val loss of the 3; the run trains with it"


def test_a_run_stopped_after_the_choice_resumes_without_choosing_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    straight = fit(load_config(config, ["output=straight", *CHOICES]), echo=quiet)
    steps = []
    from layerwise.optim.optimizers import Optimizer

    counted = Optimizer.step
    monkeypatch.setattr(Optimizer, "step", lambda self: (steps.append(1), counted(self)))
    fit(load_config(config, ["output=count", *CHOICES]), echo=quiet)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)  # undo() went back to the first directory too
    run_steps = len(straight["history"]) * 6 + straight["refit"]["epochs"] * 6  # 84 and 96 rows in batches of 16
    assert len(steps) > run_steps + 30
    interrupt_after(monkeypatch, len(steps) - 30)  # ...then stop 30 steps before its end, in the run itself
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config, ["output=split", *CHOICES]), echo=quiet)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    lines = []
    resume(tmp_path / "split", echo=lines.append)
    assert not any("choosing" in line for line in lines)
    for name in ("best.npz", "last.npz"):
        assert same(arrays(tmp_path / "straight" / name), arrays(tmp_path / "split" / name)), name
    assert json.loads((tmp_path / "split" / "test.json").read_text()) == json.loads(
        (tmp_path / "straight" / "test.json").read_text())


def test_stopped_while_choosing_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    interrupt_after(monkeypatch, 5)
    with pytest.raises(TrainingInterrupted, match=r"interrupted while choosing the weight decay \(1 of 3\); "
                                                  "nothing was written"):
        fit(load_config(config, ["output=run", *CHOICES]), echo=quiet)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("overrides,message", [
    (["optimizer.weight_decay=null", "optimizer.weight_decay_choices=[]"],
     r"optimizer.weight_decay_choices: expected a list of values, received \[\]"),
    (["optimizer.weight_decay=null", "optimizer.weight_decay_choices=[1.0, -2]"],
     r"optimizer.weight_decay_choices\[1\]: expected a value >= 0, received -2"),
    (["optimizer.weight_decay=null", "optimizer.weight_decay_choices=[1.0, lots]"],
     r"optimizer.weight_decay_choices\[1\]: expected a finite number"),
])
def test_bad_choices_name_the_file_and_key(tmp_path, monkeypatch, overrides, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"c.yaml: {message}"):
        load_config(write_run(tmp_path), overrides)


def test_eval_names_the_chosen_weight_decay_and_a_forged_record_is_refused(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from layerwise.cli import main
    from layerwise.errors import CheckpointError
    from layerwise.run.state import RunState

    monkeypatch.chdir(tmp_path)
    fit(load_config(write_run(tmp_path), ["output=run", *CHOICES]), echo=quiet)
    chosen = json.loads((tmp_path / "run" / "test.json").read_text())["weight_decay"]
    out = CliRunner().invoke(main, ["eval", "run"])
    assert out.exit_code == 0, out.output
    assert f"(train.refit), weight decay {chosen:g} (chosen on validation: optimizer.weight_decay_choices)" in out.output
    meta = load_checkpoint(tmp_path / "run" / "last.npz")[1]["state"]
    for forged in ({"value": "lots"}, {**meta["chosen"], "tried": [[1.0, "x", 3]]}):
        with pytest.raises(CheckpointError, match="chosen is"):
            RunState.from_meta({**meta, "chosen": {**meta["chosen"], **forged} if "key" not in forged else forged},
                               "last.npz")


def test_both_in_a_file_is_an_error_and_the_command_line_replaces_one_with_the_other(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from layerwise.cli import main

    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    both = tmp_path / "both.yaml"
    both.write_text(config.read_text().replace("weight_decay: 1.0,", "weight_decay: 1.0, weight_decay_choices: [1, 3],"))
    with pytest.raises(ConfigError, match="both.yaml: optimizer.weight_decay and optimizer.weight_decay_choices: give "
                                          "one of them"):
        load_config(both)
    # -s of one replaces the other (a sweep's axis too)
    assert load_config(both, ["optimizer.weight_decay=0.5"]).optimizer.weight_decay_choices is None
    chose = load_config(both, ["optimizer.weight_decay_choices=[2, 4]"]).optimizer
    assert chose.weight_decay is None and chose.weight_decay_choices == [2.0, 4.0]
    # what `layerwise config` prints trains as it is (weight_decay stays null until the run has chosen)
    out = CliRunner().invoke(main, ["config", str(config), *[f"-s{c}" for c in CHOICES]])
    assert out.exit_code == 0, out.output
    (tmp_path / "resolved.yaml").write_text(out.stdout)
    resolved = load_config(tmp_path / "resolved.yaml").optimizer
    assert resolved.weight_decay is None and resolved.weight_decay_choices == [0.0, 1.0, 30.0]


def test_a_nan_score_is_not_a_choice(tmp_path, monkeypatch):
    from layerwise.run import trainer as trainer_module

    monkeypatch.chdir(tmp_path)
    real = trainer_module.Trainer.monitor_value
    calls = []

    def nan_for_the_first_value(self, row):  # the first value's every epoch scores NaN
        calls.append(self.optimizer.weight_decay)
        return float("nan") if self.cfg.optimizer.weight_decay == 0.0 else real(self, row)

    monkeypatch.setattr(trainer_module.Trainer, "monitor_value", nan_for_the_first_value)
    lines = []
    fit(load_config(write_run(tmp_path), ["output=run", *CHOICES]), echo=lines.append)
    assert "  weight decay 0: val loss nan; not a choice" in lines
    saved = json.loads((tmp_path / "run" / "test.json").read_text())
    assert [t["weight_decay"] for t in saved["weight_decay_tried"]] == [1.0, 30.0] and saved["weight_decay"] != 0.0
