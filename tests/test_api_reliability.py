"""Issue 17, classes 14-17 and 19: untrusted text on the terminal, a shared LoadedModel, the
int-digit limit in overrides, stdout write errors, and the API's exception classes."""

import sys
import threading

import numpy as np
import pytest

import layerwise
from layerwise.errors import LayerwiseError

from test_predict import REGRESSION_CONFIG, cli, image_run, work  # noqa: F401 (fixtures)


def test_loaded_model_is_safe_to_share_between_threads(image_run):  # noqa: F811
    tmp, arrays = image_run
    model = layerwise.load(tmp / "run")
    images = arrays["test_images"]
    # Same-sized batches of different images: the layers reuse one output buffer for them.
    batches = [np.roll(images, i, axis=0) for i in range(8)]
    expected = [model.predict_proba(b) for b in batches]
    results, failures = {}, []

    def work_on(t):
        try:
            for _ in range(20):
                for i, b in enumerate(batches):
                    results.setdefault((t, i), []).append(model.predict_proba(b))
        except Exception as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=work_on, args=(t,)) for t in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so an unguarded forward would be interleaved
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures
    for (t, i), outs in results.items():
        for out in outs:
            np.testing.assert_array_equal(out, expected[i])


def test_an_override_index_of_5000_digits_is_one_config_error(tmp_path):
    (tmp_path / "c.yaml").write_text("data: {dataset: regression}\nmodel: {layers: [{type: linear, out_features: 1}]}\n"
                                     "loss: mse\n")
    result = cli("config", tmp_path / "c.yaml", "-s", f"model.layers.{'9' * 5000}.x=1")
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
