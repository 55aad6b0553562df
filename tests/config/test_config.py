"""Config validation (load_config on YAML files) and the registry's model / loss checks.

Every config error must name the file and the dotted key; registry errors name the layer index.
Messages are checked on their meaningful part, not word for word.
"""

import textwrap

import pytest

from layerwise.config.data import MnistData, RegressionData
from layerwise.config.schema import load_config
from layerwise.errors import ConfigError
from layerwise.nn.registry import build_loss, build_model


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def config_error(path, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


# --- defaults ----------------------------------------------------------------------------------


def test_empty_file_gets_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "", name="my-run.yaml"))
    assert cfg.name == "my-run"  # from the file stem
    assert cfg.output.replace("\\", "/") == "runs/my-run"
    assert isinstance(cfg.data, MnistData)
    assert cfg.loss == "softmax_cross_entropy"
    assert cfg.optimizer.type == "sgd" and cfg.optimizer.lr == 0.01 and cfg.optimizer.nesterov is False
    assert cfg.train.epochs == 10 and cfg.train.batch_size == 128
    assert cfg.source == str(tmp_path / "my-run.yaml")
    assert "source" not in cfg.to_dict()


def test_explicit_name_sets_default_output_and_partial_sections_keep_defaults(tmp_path):
    cfg = load_config(write(tmp_path, """
        name: digits
        optimizer: {lr: 0.5}
        train: {epochs: 3}
    """))
    assert cfg.name == "digits" and cfg.output.replace("\\", "/") == "runs/digits"
    assert cfg.optimizer.lr == 0.5 and cfg.optimizer.momentum == 0.0  # the rest of the section defaults
    assert cfg.train.epochs == 3 and cfg.train.batch_size == 128


def test_regression_dataset_selects_its_own_section(tmp_path):
    cfg = load_config(write(tmp_path, "data: {dataset: regression, weights: [1, 2]}\nloss: mse\n"))
    assert isinstance(cfg.data, RegressionData)
    assert cfg.data.weights == [1.0, 2.0] and cfg.data.n_samples == 2000


@pytest.mark.parametrize("name", ["mnist.yaml", "regression.yaml", "interpolation.yaml"])
def test_shipped_configs_load(name):
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[2] / "configs" / name)
    assert cfg.name == Path(name).stem


# --- invalid files -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, fragments", [
    # unknown keys, with a hint when one is close
    ("optimzer: {lr: 0.1}", ["optimzer", "unknown key", "did you mean 'optimizer'"]),
    ("optimizer: {lrr: 0.1}", ["optimizer.lrr", "unknown key", "did you mean 'lr'"]),
    ("train: {epoch: 3}", ["train.epoch", "unknown key", "did you mean 'epochs'"]),
    ("data: {dataset: regression, root: /data}", ["data.root", "unknown key"]),  # an MNIST-only key
    # wrong types
    ("optimizer: {lr: fast}", ["optimizer.lr", "expected a finite number", "'fast'"]),
    ("train: {epochs: 2.5}", ["train.epochs", "expected an integer", "2.5"]),
    ("train: {epochs: true}", ["train.epochs", "expected an integer"]),
    ("optimizer: {nesterov: 'yes'}", ["optimizer.nesterov", "expected true or false", "'yes'"]),
    ("optimizer: 0.1", ["optimizer", "expected a mapping"]),
    ("model: {layers: {type: linear}}", ["model.layers", "expected a list"]),
    # out of range
    ("optimizer: {lr: 0}", ["optimizer.lr", "> 0", "received 0"]),
    ("optimizer: {lr: -0.1}", ["optimizer.lr", "> 0", "-0.1"]),
    ("train: {epochs: 0}", ["train.epochs", ">= 1", "received 0"]),
    ("train: {epochs: -2}", ["train.epochs", ">= 1", "-2"]),
    ("train: {batch_size: 0}", ["train.batch_size", ">= 1", "received 0"]),
    ("optimizer: {momentum: -0.5}", ["optimizer.momentum", ">= 0"]),
    ("optimizer: {schedule: linear}", ["optimizer.schedule", "constant, cosine", "'linear'"]),
    # NaN passes a plain `value < minimum` check; it must be refused like any other bad value
    ("optimizer: {momentum: .nan}", ["optimizer.momentum", "nan"]),
    ("optimizer: {weight_decay: .nan}", ["optimizer.weight_decay", "nan"]),
    ("data: {dataset: regression, noise_std: .nan}", ["data.noise_std", "nan"]),
    # datasets
    ("data: {dataset: cifar10}", ["data.dataset", "unknown dataset 'cifar10'", "mnist, fashion_mnist, idx, regression"]),
    # regression-specific checks
    ("data: {dataset: regression, inputs: uniform}", ["data.low", "uniform inputs need 3 bounds"]),
    ("data: {dataset: regression, inputs: uniform, low: [0, 0, 0]}", ["data.high", "uniform inputs need 3 bounds"]),
    ("data: {dataset: regression, inputs: uniform, low: [0, 0, 0], high: [1, 0, 1]}", ["data.low", "below data.high"]),
    ("data: {dataset: regression, n_samples: 400, val_size: 200, test_size: 200}",
     ["data.n_samples", "leaves no training samples"]),
    ("data: {dataset: regression, n_samples: 100, val_size: 80, test_size: 50}",
     ["data.n_samples", "leaves no training samples"]),
    ("data: {dataset: regression, weights: []}", ["data.weights", "at least one weight"]),
])
def test_invalid_config_names_file_and_key(tmp_path, text, fragments):
    path = write(tmp_path, text + "\n")
    message = config_error(path)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("text,fragments", [
    ("optimizer: {type: sgd, beta1: 0.9}", ["optimizer.beta1", "not used by optimizer.type sgd", "only by adam, adamw"]),
    ("optimizer: {type: adam, momentum: 0.9}", ["optimizer.momentum", "not used by optimizer.type adam", "sgd, rmsprop"]),
    ("optimizer: {type: adam, nesterov: true}", ["optimizer.nesterov", "only by sgd"]),
    # Every unused key in one message, with the flags that drop them all.
    ("optimizer: {type: adam, momentum: 0.9, nesterov: true}",
     ["optimizer.momentum, optimizer.nesterov", "nesterov only by sgd",
      "-s optimizer.momentum=null -s optimizer.nesterov=null"]),
    ("optimizer: {type: adamw, alpha: 0.9}", ["optimizer.alpha", "only by rmsprop"]),
    ("optimizer: {type: adam, beta2: 1.0}", ["optimizer.beta2", "below 1", "1.0"]),
    ("optimizer: {type: adam, beta1: -0.1}", ["optimizer.beta1", ">= 0"]),
    ("optimizer: {type: adam, eps: 0}", ["optimizer.eps", "> 0"]),
    ("optimizer: {type: rmsprop, alpha: 1}", ["optimizer.alpha", "below 1"]),
    ("optimizer: {type: rmsprop, centered: 1}", ["optimizer.centered", "true or false"]),
    ("optimizer: {type: lamb}", ["optimizer.type", "sgd, adam, adamw, rmsprop", "'lamb'"]),
    ("optimizer: {clip_norm: 0}", ["optimizer.clip_norm", "> 0"]),
    ("optimizer: {schedule: step}", ["optimizer.step_size", "required by optimizer.schedule step"]),
    ("optimizer: {schedule: exponential}", ["optimizer.gamma", "required by optimizer.schedule exponential"]),
    ("optimizer: {schedule: cosine, gamma: 0.5}", ["optimizer.gamma", "not used by optimizer.schedule cosine",
                                                    "only by step, exponential"]),
    ("optimizer: {patience: 3}", ["optimizer.patience", "not used by optimizer.schedule constant", "only by plateau"]),
    ("optimizer: {schedule: plateau, factor: 1.5}", ["optimizer.factor", "below 1"]),
    ("optimizer: {schedule: step, step_size: 0}", ["optimizer.step_size", ">= 1"]),
    ("optimizer: {warmup_epochs: 20}\ntrain: {epochs: 10}", ["optimizer.warmup_epochs", "at most train.epochs (10)"]),
    ("train: {early_stopping: {patience: 0}}", ["train.early_stopping.patience", ">= 1"]),
    ("train: {early_stopping: {patience: 2, min_delta: -1}}", ["train.early_stopping.min_delta", ">= 0"]),
    ("train: {early_stopping: {wait: 2}}", ["train.early_stopping.wait", "unknown key", "patience, min_delta"]),
    ("train: {early_stopping: 5}", ["train.early_stopping", "expected a mapping"]),
])
def test_invalid_optimizer_schedule_and_early_stopping_keys(tmp_path, text, fragments):
    path = write(tmp_path, text + "\n")
    message = config_error(path)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_each_optimizer_type_gets_pytorch_defaults_and_config_yaml_only_its_keys(tmp_path):
    cfg = load_config(write(tmp_path, "optimizer: {type: adam}\ntrain: {early_stopping: {}}"))
    o = cfg.optimizer
    assert (o.lr, o.beta1, o.beta2, o.eps, o.weight_decay) == (0.001, 0.9, 0.999, 1e-8, 0.0)
    assert o.momentum is None and o.clip_norm is None
    assert cfg.train.early_stopping.patience == 5 and cfg.train.early_stopping.min_delta == 0.0
    assert set(cfg.to_dict()["optimizer"]) == {"type", "lr", "beta1", "beta2", "eps", "weight_decay", "schedule", "warmup_epochs"}
    assert load_config(write(tmp_path, "optimizer: {type: adamw}")).optimizer.weight_decay == 0.01
    r = load_config(write(tmp_path, "optimizer: {type: rmsprop}")).optimizer
    assert (r.lr, r.alpha, r.eps, r.momentum, r.centered) == (0.01, 0.99, 1e-8, 0.0, False)
    s = load_config(write(tmp_path, "optimizer: {schedule: plateau}")).optimizer
    assert (s.factor, s.patience, s.threshold, s.min_lr) == (0.1, 10, 1e-4, 0.0)
    assert load_config(write(tmp_path, "optimizer: {schedule: step, step_size: 3}")).optimizer.gamma == 0.1
    assert load_config(write(tmp_path, "")).train.early_stopping is None


def test_yaml_syntax_error_says_where(tmp_path):
    path = write(tmp_path, "seed: 0\noptimizer: {lr: 0.1\ntrain: {epochs: 2}\n")
    message = config_error(path)
    assert str(path) in message and "YAML syntax error" in message
    assert "line 3" in message


def test_top_level_list_is_refused(tmp_path):
    path = write(tmp_path, "- seed: 0\n- loss: mse\n")
    message = config_error(path)
    assert str(path) in message
    assert "expected a mapping" in message and "received a list" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    message = config_error(path)
    assert "not found" in message and str(path) in message


def test_directory_instead_of_file(tmp_path):
    message = config_error(tmp_path)
    assert str(tmp_path) in message and "cannot read" in message


# --- overrides ---------------------------------------------------------------------------------

LAYERS = """
model:
  layers:
    - {type: linear, out_features: 32}
    - {type: relu}
    - {type: linear, out_features: 10}
"""


def test_overrides_are_typed_by_yaml(tmp_path):
    cfg = load_config(write(tmp_path, LAYERS), ["optimizer.lr=0.5", "train.epochs=3", "optimizer.nesterov=true", "optimizer.momentum=0.9"])
    assert cfg.optimizer.lr == 0.5 and isinstance(cfg.optimizer.lr, float)
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.optimizer.nesterov is True


def test_integer_override_of_float_key_becomes_float(tmp_path):
    cfg = load_config(write(tmp_path, ""), ["optimizer.lr=1"])
    assert cfg.optimizer.lr == 1.0 and isinstance(cfg.optimizer.lr, float)


def test_override_indexes_into_layer_list(tmp_path):
    path = write(tmp_path, LAYERS)
    cfg = load_config(path, ["model.layers.0.out_features=64"])
    assert cfg.model.layers[0] == {"type": "linear", "out_features": 64}
    assert cfg.model.layers[1:] == [{"type": "relu"}, {"type": "linear", "out_features": 10}]
    assert load_config(path).model.layers[0]["out_features"] == 32  # the file itself is untouched


def test_later_override_wins(tmp_path):
    cfg = load_config(write(tmp_path, ""), ["train.epochs=3", "train.epochs=5"])
    assert cfg.train.epochs == 5


def test_override_is_validated_like_the_file(tmp_path):
    path = write(tmp_path, "")
    message = config_error(path, ["optimizer.lr=-1"])
    assert str(path) in message and "optimizer.lr" in message and "> 0" in message
    message = config_error(path, ["optimizer.momentun=0.9"])
    assert "optimizer.momentun" in message and "did you mean 'momentum'" in message


@pytest.mark.parametrize("override", ["optimizer.lr", "optimizer.lr 0.5", "=0.5"])
def test_malformed_override(tmp_path, override):
    message = config_error(write(tmp_path, ""), [override])
    assert repr(override) in message and "key.path=value" in message


def test_override_index_out_of_range(tmp_path):
    message = config_error(write(tmp_path, LAYERS), ["model.layers.7.out_features=64"])
    assert "model.layers" in message and "3 entries" in message and "'7'" in message


def test_override_value_that_is_not_yaml(tmp_path):
    message = config_error(write(tmp_path, ""), ["optimizer.lr=[0.1"])
    assert "optimizer.lr=[0.1" in message and "not valid YAML" in message


# --- registry: models and losses ---------------------------------------------------------------


def model_error(specs, in_features=784, out_features=10):
    with pytest.raises(ConfigError) as info:
        build_model(specs, in_features, out_features)
    return str(info.value)


def test_builds_and_infers_in_features():
    model = build_model(
        [{"type": "linear", "out_features": 32}, {"type": "tanh"}, {"type": "linear", "out_features": 10}], 784, 10
    )
    assert [layer.params["W"].shape for layer in model.layers if layer.params] == [(784, 32), (32, 10)]


def test_unknown_layer_lists_valid_ones():
    message = model_error([{"type": "conv3d", "out_features": 10}])
    assert "model.layers[0].type" in message and "unknown layer 'conv3d'" in message
    for name in ("linear", "relu", "sigmoid", "tanh"):
        assert name in message


def test_unknown_layer_suggests_close_name():
    message = model_error([{"type": "lineer", "out_features": 10}])
    assert "did you mean 'linear'" in message


@pytest.mark.parametrize("layer_type", [["linear"], {"name": "linear"}])
def test_layer_type_that_is_not_a_string(layer_type):
    # YAML such as `type: [linear]` must be a config error, not a TypeError (unhashable) traceback
    message = model_error([{"type": layer_type, "out_features": 10}])
    assert "model.layers[0].type" in message


def test_unknown_layer_argument():
    message = model_error([{"type": "linear", "out_features": 10, "activation": "relu"}])
    assert "model.layers[0].activation" in message and "unknown argument for linear" in message
    assert "in_features, out_features, bias, init" in message
    message = model_error([{"type": "linear", "out_features": 10}, {"type": "relu", "alpha": 0.1}], out_features=None)
    assert "model.layers[1].alpha" in message and "valid: none" in message


def test_layer_argument_of_wrong_type():
    message = model_error([{"type": "linear", "out_features": 10.0}])
    assert "model.layers[0].out_features" in message and "expected int" in message


def test_in_features_that_do_not_chain_name_the_layer():
    message = model_error([
        {"type": "linear", "out_features": 32},
        {"type": "relu"},
        {"type": "linear", "in_features": 16, "out_features": 10},
    ])
    assert "model.layers[2].in_features" in message and "does not chain" in message
    assert "model.layers[1] gives 32" in message


def test_first_in_features_must_match_the_data():
    message = model_error([{"type": "linear", "in_features": 100, "out_features": 10}])
    assert "model.layers[0].in_features" in message and "the data gives 784" in message


def test_last_layer_width_must_match_the_task():
    message = model_error([{"type": "linear", "out_features": 32}, {"type": "relu"}, {"type": "linear", "out_features": 5}])
    assert "gives 5 outputs" in message and "needs 10" in message
    message = model_error([{"type": "linear", "out_features": 2}], in_features=3, out_features=1)
    assert "gives 2 outputs" in message and "needs 1" in message


def test_last_layer_width_defaults_to_the_task():
    from layerwise.nn.registry import build_model

    model = build_model([{"type": "linear", "out_features": 4}, {"type": "relu"}, {"type": "linear"}], 3, 7)
    assert model.layers[-1].params["W"].shape == (4, 7)


@pytest.mark.parametrize("specs, fragment", [
    ([], "non-empty list"),
    ([{"out_features": 10}], "'type' key"),
    ([{"type": "linear"}, {"type": "relu"}, {"type": "linear", "out_features": 10}], "model.layers[0].out_features: required"),
    ([{"type": "linear", "out_features": 0}], "positive integer"),
    ([{"type": "linear", "out_features": 10, "init": "zeros"}], "unknown init 'zeros'"),
])
def test_other_layer_errors(specs, fragment):
    assert fragment in model_error(specs)


@pytest.mark.parametrize("name, task, fragments", [
    ("mse", "classification", ["mse is a regression loss", "classification task", "softmax_cross_entropy"]),
    ("softmax_cross_entropy", "regression", ["classification loss", "regression task", "use mse"]),
    ("hinge", "classification", ["unknown loss 'hinge'", "softmax_cross_entropy, binary_cross_entropy, mse, huber, mae"]),
    ("huber", "classification", ["huber is a regression loss", "use softmax_cross_entropy, binary_cross_entropy"]),
    ("binary_cross_entropy", "regression", ["classification loss", "use mse, huber, mae"]),
    ({"type": "huber", "delta": 0}, "regression", ["loss.delta: expected a positive number", "received 0"]),
    ({"type": "huber", "delta": "big"}, "regression", ["loss.delta: expected a finite number, received 'big'"]),
    ({"type": "huber", "delta": True}, "regression", ["loss.delta: expected a finite number, received True"]),
    ({"type": "mae", "delta": 1.0}, "regression", ["loss.delta: unknown argument for mae; valid: none"]),
    ({"type": "hubr"}, "regression", ["loss.type: unknown loss 'hubr' (did you mean 'huber'?)"]),
    ({"delta": 1.0}, "regression", ["loss: expected a loss name or a mapping with a 'type' key"]),
])
def test_loss_must_fit_the_task_and_its_arguments_are_checked(name, task, fragments):
    with pytest.raises(ConfigError) as info:
        build_loss(name, task)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_matching_losses_build():
    assert build_loss("mse", "regression").task == "regression"
    assert build_loss("softmax_cross_entropy", "classification").task == "classification"


def test_scientific_notation_without_a_dot_is_a_number(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-3 as a string; users write it everywhere.
    path = tmp_path / "sci.yaml"
    path.write_text("optimizer: {lr: 1e-3, weight_decay: 5E-4}\n")
    cfg = load_config(path, ["train.epochs=3", "optimizer.momentum=9e-1"])
    assert cfg.optimizer.lr == 0.001 and cfg.optimizer.weight_decay == 0.0005
    assert cfg.optimizer.momentum == 0.9 and cfg.train.epochs == 3
