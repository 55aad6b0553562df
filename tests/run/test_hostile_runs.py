"""Hostile run directories, checkpoints, file systems, concurrent processes and signals (issue 9).

Each numbered case of the issue's run-directory half is a test here. The one-command cases form a
table run through CliRunner, checked like tests/test_bad_inputs.py: the exit code, exactly one
`error:` line naming the problem, no traceback, and no file created, changed or removed. Locks,
concurrent starts, SIGTERM and permissions run real `python -m layerwise` processes; full disks and
read-only file systems use a small tmpfs (mounted when running as root, else skipped saying why).
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from layerwise.util.npz import load_checkpoint
from layerwise.cli import main
from layerwise.util.fileio import json_text
from layerwise.run.lock import LOCK_NAME

REPO = Path(__file__).resolve().parents[2]
REGRESSION = {
    "seed": 0,
    "data": {"dataset": "regression", "n_samples": 60, "weights": [3.0, 4.0, 2.0], "bias": 5.0,
             "val_size": 10, "test_size": 10},
    "model": {"layers": [{"type": "linear", "out_features": 4}, {"type": "relu"},
                         {"type": "linear", "out_features": 1}]},
    "loss": "mse",
    "optimizer": {"lr": 0.01, "momentum": 0.9},
    "train": {"epochs": 2, "batch_size": 16},
}
# Long enough (about 0.15 s an epoch, 1000 epochs) that a process is surely still training when the
# test acts on it, however loaded the machine; every test stops it long before the end.
SLOW = ["-s", "data.n_samples=30000", "-s", "train.epochs=1000", "-s", "train.batch_size=8"]


# --- helpers -----------------------------------------------------------------------------------


def write_config(directory, raw=None, name="exp.yaml"):
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(raw or REGRESSION, sort_keys=False))
    return path


def snapshot(root):
    """path -> (size, mtime_ns, sha256) for every file under root, "dir" for every directory."""
    files = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            files[rel] = "dir"
        else:
            stat = path.stat()
            files[rel] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return files


def one_error_line(output, code, returncode, *fragments):
    """The house contract: the exit code, one `error:` line holding every fragment, no traceback."""
    assert returncode == code, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    return errors[0]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def process(*args, cwd, prefix=(), **kwargs):
    """A real `python -m layerwise` process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "LAYERWISE_DATA": str(cwd)}
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "layerwise", *map(str, args)], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return out + err, proc.returncode


def run_layerwise(*args, cwd, prefix=()):
    return finish(process(*args, cwd=cwd, prefix=prefix))


def wait_for(condition, timeout=30, what="a condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def state_of(path):
    return load_checkpoint(path, meta_only=True)[1]["state"]


def start_slow_run(tmp_path, name="run"):
    """A training process into tmp/`name`, returned once its first epoch is saved."""
    config = write_config(tmp_path)
    proc = process("train", config, "-s", f"output={name}", *SLOW, cwd=tmp_path)
    wait_for(lambda: (tmp_path / name / "metrics.csv").exists() or proc.poll() is not None, what="the first epoch")
    assert proc.poll() is None, proc.communicate()
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-epoch REGRESSION run; tests copy it, never touch it."""
    tmp = tmp_path_factory.mktemp("trained")
    result = cli("train", write_config(tmp), "-s", f"output={tmp / 'run'}")
    assert result.exit_code == 0, result.output
    return tmp / "run"


def copy_run(trained, tmp_path, name="run"):
    shutil.copytree(trained, tmp_path / name)
    return tmp_path / name


# --- forging checkpoints -----------------------------------------------------------------------


def npz_members(path):
    """name -> raw .npy bytes of every member of an .npz (read as bytes: nothing is parsed)."""
    with zipfile.ZipFile(path) as zf:
        return {info.filename[:-4]: zf.read(info) for info in zf.infolist()}


def write_npz(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name + ".npy", data)


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_header(descr, shape, data=b""):
    """A .npy file whose header declares `descr` and `shape`, followed by `data` (which need not fit)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def replace_member(name, data):
    def edit(run_dir, which):
        members = npz_members(run_dir / which)
        members[name] = data(members) if callable(data) else data
        write_npz(run_dir / which, members)

    return edit


def meta_text(text_of):
    """Replace __meta__ by text_of(current JSON text)."""
    return replace_member("__meta__", lambda m: npy(np.array(text_of(str(np.load(io.BytesIO(m["__meta__"])))))))


def set_state(**values):
    def text_of(text):
        meta = json.loads(text)
        meta["state"].update(values)
        return json.dumps(meta)

    return meta_text(text_of)


def deep_brackets(text):
    return "[" * 100_000 + "]" * 100_000


def huge_integer(text):
    meta = json.loads(text)
    meta["state"]["epoch"] = 123456789
    return json.dumps(meta).replace("123456789", "9" * 5000)


def patch_member_header(name, offset_local, offset_central, value, size=2):
    """Rewrite a field of member `name` in both its local header and its central directory entry
    (e.g. the compression method, or the encryption flag), as another zip tool would have."""

    def edit(run_dir, which):
        path = run_dir / which
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(name + ".npy")
        local = info.header_offset
        central = data.find(b"PK\x01\x02")
        while data[central + 46 : central + 46 + len(info.filename)] != info.filename.encode():
            central = data.find(b"PK\x01\x02", central + 4)
        for at in (local + offset_local, central + offset_central):
            data[at : at + size] = value.to_bytes(size, "little")
        path.write_bytes(bytes(data))

    return edit


def deflate64(name):
    return patch_member_header(name, 8, 10, 9)  # compression method 9 = deflate64


def encrypted(name):
    return patch_member_header(name, 6, 8, 0x1)  # general purpose flag bit 0 = encrypted


BOMB_BYTES = 64 * 2**20  # deflated to about 300 KB: reading it would show in the fuzz test's memory bound


def _bomb(run_dir, which, name, header):
    """Replace member `name` by `header` followed by BOMB_BYTES of deflated zeros."""
    members = npz_members(run_dir / which)
    with zipfile.ZipFile(run_dir / which, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for other, data in members.items():
            if other != name:
                zf.writestr(other + ".npy", data)
        with zf.open(name + ".npy", "w", force_zip64=True) as f:
            f.write(header)
            zeros = bytes(2**22)
            for _ in range(BOMB_BYTES // len(zeros)):
                f.write(zeros)


def zip_bomb(run_dir, which):
    """model/0.W as 64 MB of deflated zeros, its header declaring all of them (16 Mi float32)."""
    _bomb(run_dir, which, "model/0.W", npy_header("<f4", (BOMB_BYTES // 4,)))


def meta_bomb(run_dir, which):
    """__meta__ declaring 16 Mi characters (64 MB) of text, backed by deflated zeros."""
    _bomb(run_dir, which, "__meta__", npy_header(f"<U{BOMB_BYTES // 4}", ()))


def npy_with_zip_appended(run_dir, which):
    data = (run_dir / which).read_bytes()
    (run_dir / which).write_bytes(npy(np.zeros(3, np.float32)) + data)


# --- the table: one command, one error line, nothing written ------------------------------------


@dataclass(frozen=True)
class Case:
    args: tuple  # the command line; "run" is a copy of the trained run
    code: int
    fragments: tuple
    edit: Callable = None  # edit(run_dir, checkpoint name) before the command
    which: str = "best.npz"


def case(id, args, code, *fragments, edit=None, which="best.npz"):
    return pytest.param(Case(tuple(args), code, fragments, edit, which), id=id)


EVAL = ("eval", "run")
RESUME = ("train", "--resume", "run", "-s", "train.epochs=3")
CASES = [
    # 5 (output part): names the file system refuses
    case("5-output-name-300-characters", ("train", "exp.yaml", "-s", "output=" + "n" * 300), 2,
         "output", "File name too long", "(300 characters)"),
    # (the config loader refuses these first; check_run_dir refuses them for library callers too)
    case("5-output-nul-byte", ("train", "exp.yaml", "-s", 'output="a\\0b"'), 2, "output", "NUL", "'a\\x00b'"),
    case("5-output-lone-surrogate", ("train", "exp.yaml", "-s", 'output="\\ud800"'), 2, "output", "surrogate"),
    case("5-output-nul-byte-in-a-parent", ("train", "exp.yaml", "-s", 'output="x\\0y/run"'), 2, "output", "NUL"),
    # 7: forged checkpoints, through eval (best.npz) and resume (last.npz)
    case("7-weights-as-str", EVAL, 1, "model/0.W", "does not match", "expected float32 (3, 4)", "found text <U3 (3, 4)",
         edit=replace_member("model/0.W", npy(np.array(["abc"] * 12).reshape(3, 4)))),
    case("7-weights-as-bytes", EVAL, 1, "model/0.W", "found bytes |S4 (3, 4)",
         edit=replace_member("model/0.W", npy(np.array([b"abcd"] * 12).reshape(3, 4)))),
    case("7-weights-structured", EVAL, 1, "model/0.W", "found structured",
         edit=replace_member("model/0.W", npy(np.zeros((3, 4), dtype=[("a", "<f4")])))),
    case("7-weights-float64", EVAL, 1, "model/0.W", "found float64",
         edit=replace_member("model/0.W", npy(np.zeros((3, 4))))),
    case("7-velocity-as-string", RESUME, 1, "optim/velocity/0.W", "found text <U1 ()",
         edit=replace_member("optim/velocity/0.W", npy(np.array("x"))), which="last.npz"),
    case("7-velocity-wrong-shape", RESUME, 1, "optim/velocity/0.b", "expected float32 (4,)",
         edit=replace_member("optim/velocity/0.b", npy(np.zeros(5, np.float32))), which="last.npz"),
    case("7-weights-nan", EVAL, 1, "model/0.b", "NaN or infinite",
         edit=replace_member("model/0.b", npy(np.full(4, np.nan, np.float32)))),
    case("7-unexpected-array", EVAL, 1, "unexpected 'model/9.W'",
         edit=replace_member("model/9.W", npy(np.zeros(3, np.float32)))),
    case("7-meta-100000-nested-brackets", EVAL, 1, "metadata", "not valid JSON", edit=meta_text(deep_brackets)),
    case("7-meta-nested-200-deep", EVAL, 1, "metadata", "nested more than",
         edit=meta_text(lambda t: t[:-1] + ', "x": ' + "[" * 200 + "]" * 200 + "}")),
    case("7-meta-5000-digit-integer", EVAL, 1, "metadata", "5000 digits", edit=meta_text(huge_integer)),
    case("7-meta-code-point-above-unicode", EVAL, 1, "metadata", "not valid text",
         edit=replace_member("__meta__", npy_header("<U2", (), b"\xff\xff\xff\x7f" * 2))),
    case("7-meta-as-float-array", EVAL, 1, "metadata", "text scalar", edit=replace_member("__meta__", npy(np.zeros(3)))),
    case("7-header-shape-10-to-the-12", EVAL, 1, "model/0.W", "header declares 4000000000000 bytes",
         edit=replace_member("model/0.W", npy_header("<f4", (10**12,), bytes(48)))),
    case("7-header-right-shape-short-data", EVAL, 1, "model/0.W", "header declares 48 bytes",
         edit=replace_member("model/0.W", npy_header("<f4", (3, 4), bytes(8)))),
    case("7-zip-bomb-weights", EVAL, 1, "model/0.W", "expected float32 (3, 4)", edit=zip_bomb),
    case("7-zip-bomb-metadata", EVAL, 1, "metadata", "text scalar", edit=meta_bomb),
    case("7-deflate64-member", EVAL, 1, "model/0.W", "compression method 9", edit=deflate64("model/0.W")),
    case("7-encrypted-member", RESUME, 1, "optim/velocity/0.W", "encrypted",
         edit=encrypted("optim/velocity/0.W"), which="last.npz"),
    case("7-npy-with-a-zip-appended", EVAL, 1, "best.npz", "not an .npz archive", edit=npy_with_zip_appended),
    case("7-object-array-is-never-unpickled", EVAL, 1, "pickled object array",
         edit=replace_member("model/0.b", npy_header("|O", (4,), b"\x80\x04N."))),
    # 7: malformed run state; the resume must write nothing (config.yaml was rewritten before)
    case("7-state-history-of-numbers", RESUME, 1, "run state is malformed", "history row 1",
         edit=set_state(history=[1, 2]), which="last.npz"),
    case("7-state-best-empty", RESUME, 1, "run state is malformed", "best is {}",
         edit=set_state(best={}), which="last.npz"),
    case("7-state-best-value-string", RESUME, 1, "run state is malformed", "best is",
         edit=set_state(best={"epoch": 2, "metric": "mse", "value": "x"}), which="last.npz"),
    case("7-state-step-1e6-seen-0", RESUME, 1, "run state is malformed", "step 1000000",
         edit=set_state(step=10**6, seen=0), which="last.npz"),
    case("7-state-best-metric-of-another-task", RESUME, 1, "run state is malformed", "monitors 'mse'",
         edit=set_state(best={"epoch": 2, "metric": "accuracy", "value": 0.5}), which="last.npz"),
    case("7-state-malformed-on-eval", EVAL, 1, "run state is malformed", edit=set_state(history=[1, 2])),
    case("7-state-epoch-bool", EVAL, 1, "run state is malformed", "epoch is True", edit=set_state(epoch=True)),
]


def edited_config(key, value):
    def edit(run_dir, which):
        raw = yaml.safe_load((run_dir / "config.yaml").read_text())
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
        (run_dir / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    return edit


CASES += [
    # 12: a resume refuses an edited config.yaml it would otherwise silently ignore
    case("12-resume-refuses-edited-config-yaml", RESUME, 2, "config.yaml was edited", "optimizer.lr: 0.5 there, 0.01 in last.npz",
         edit=edited_config("optimizer.lr", 0.5), which="config.yaml"),
    case("12-resume-with-a-broken-config-yaml", RESUME, 2, "config.yaml", "YAML syntax error", "delete it",
         edit=lambda run_dir, which: (run_dir / "config.yaml").write_text("seed: [0\n"), which="config.yaml"),
    case("12-resume-refuses-edited-layer", RESUME, 2, "model.layers.0.out_features: 8 there, 4 in last.npz",
         edit=edited_config("model.layers.0.out_features", 8), which="config.yaml"),
]


@pytest.mark.parametrize("case", CASES)
def test_hostile_input(case, tmp_path, monkeypatch, trained):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path))
    write_config(tmp_path)
    run_dir = copy_run(trained, tmp_path)
    if case.edit:
        case.edit(run_dir, case.which)
    before = snapshot(tmp_path)

    result = cli(*case.args)

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    line = one_error_line(result.output, case.code, result.exit_code, *case.fragments)
    assert line in result.stderr
    assert len(line) < 500, line
    assert snapshot(tmp_path) == before  # nothing created, changed or removed


@pytest.mark.parametrize("output, fragment", [("a\0b", "NUL byte"), ("x\0y/run", "NUL byte"),
                                              ("\ud800", "lone surrogate"), ("n" * 300, "File name too long")])
def test_5_check_run_dir_refuses_unusable_names_itself(tmp_path, monkeypatch, output, fragment):
    from layerwise.errors import ConfigError
    from layerwise.run.rundir import check_run_dir

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=fragment):
        check_run_dir(output, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_table_covers_every_forgery_of_the_issue():
    ids = [param.id for param in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 30
    for needed in ("as-str", "as-bytes", "structured", "velocity-as-string", "100000", "5000-digit", "10-to-the-12",
                   "zip-bomb", "deflate64", "encrypted", "zip-appended", "history", "best-empty", "best-value", "step-1e6"):
        assert any(needed in i for i in ids), needed


# --- 8: a model without parameters ---------------------------------------------------------------


def test_8_eval_of_a_model_without_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = {**REGRESSION, "data": {**REGRESSION["data"], "weights": [3.0]}, "model": {"layers": [{"type": "relu"}]}}
    config = write_config(tmp_path, raw)
    result = cli("train", config, "-s", "output=run")
    assert result.exit_code == 0, result.output
    assert "0 parameters" in result.output
    result = cli("eval", "run")
    assert result.exit_code == 0, result.output
    assert "test mse" in result.output and "learned weights" not in result.output
    assert cli("eval", "run", "--checkpoint", "last").exit_code == 0


# --- 12: test.json, stale temp files, config.yaml edits that a resume may honour ---------------


def test_12_json_writer_maps_non_finite_numbers_to_null():
    text = json_text({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": np.float32("nan"), "d": 2})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON token {c}")) == {
        "a": None, "b": [None, None, 1.5], "c": None, "d": 2}


def test_12_test_json_is_valid_json_when_a_metric_is_nan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path)
    result = cli("train", config, "-s", "output=run", "-s", "data.test_size=1")  # R2 of one example: NaN
    assert result.exit_code == 0, result.output
    text = (tmp_path / "run" / "test.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"test.json holds {c}"))
    assert summary["test_r2"] is None and isinstance(summary["test_mse"], float)


def test_12_resume_removes_temp_files_of_a_killed_save_and_nothing_else(tmp_path, monkeypatch, trained):
    monkeypatch.chdir(tmp_path)
    run_dir = copy_run(trained, tmp_path)
    stale = [".last.npz.k3j_x9ab.tmp", ".best.npz.00000000.tmp", ".metrics.csv.abcdefgh.tmp"]
    kept = [".last.npz.notes.tmp", "last.npz.abcdefgh.tmp", ".mine.tmp", "notes.txt"]
    for name in stale + kept:
        (run_dir / name).write_bytes(b"half a checkpoint")
    (run_dir / ".last.npz.zzzzzzzz.tmp").mkdir()  # a directory is never ours
    result = cli("train", "--resume", "run", "-s", "train.epochs=3")
    assert result.exit_code == 0, result.output
    names = {p.name for p in run_dir.iterdir()}
    assert not names & set(stale)
    assert set(kept) | {".last.npz.zzzzzzzz.tmp"} <= names


def test_12_stale_temp_files_in_an_empty_output_are_cleaned_by_a_new_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".last.npz.k3j_x9ab.tmp").write_bytes(b"half")
    (tmp_path / "run" / LOCK_NAME).write_text("12345\n")  # a start killed right after taking the lock
    assert cli("train", write_config(tmp_path), "-s", "output=run").exit_code == 0
    assert not (tmp_path / "run" / ".last.npz.k3j_x9ab.tmp").exists()


def test_12_resume_uses_a_config_yaml_edit_of_train_epochs_and_says_so(tmp_path, monkeypatch, trained):
    monkeypatch.chdir(tmp_path)
    run_dir = copy_run(trained, tmp_path)
    edited_config("train.epochs", 3)(run_dir, None)
    result = cli("train", "--resume", "run")
    assert result.exit_code == 0, result.output
    assert "sets train.epochs to 3 (last.npz: 2): using it" in result.output
    assert state_of(run_dir / "last.npz")["epoch"] == 3
    # an explicit -s wins over the file
    edited_config("train.epochs", 9)(run_dir, None)
    result = cli("train", "--resume", "run", "-s", "train.epochs=4")
    assert result.exit_code == 0, result.output
    assert state_of(run_dir / "last.npz")["epoch"] == 4
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["epochs"] == 4


# --- 5, 12: permissions (root ignores them: a child process without CAP_DAC_OVERRIDE obeys them) --


def obeying_permissions():
    """A command prefix under which file permissions apply: none for a normal user; for root,
    setpriv dropping the capabilities that bypass them."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: root ignores file permissions, so EACCES cannot be produced")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def test_12_unreadable_checkpoint_is_permission_denied_not_corrupt(tmp_path, trained):
    prefix = obeying_permissions()
    run_dir = copy_run(trained, tmp_path)
    (run_dir / "best.npz").chmod(0)
    before = snapshot(tmp_path)
    output, code = run_layerwise("eval", "run", cwd=tmp_path, prefix=prefix)
    line = one_error_line(output, 4, code, "best.npz", "Permission denied")
    assert "corrupt" not in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("mode, fragment", [(0o555, "cannot create run directory"), (0o000, "cannot use")],
                         ids=["unwritable-parent", "unreadable-parent"])
def test_5_output_in_a_directory_without_permission(tmp_path, mode, fragment):
    prefix = obeying_permissions()
    write_config(tmp_path)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(mode)
    try:
        before = snapshot(tmp_path)
        output, code = run_layerwise("train", "exp.yaml", "-s", "output=locked/run", cwd=tmp_path, prefix=prefix)
        one_error_line(output, 2, code, "output", fragment, "Permission denied")
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert snapshot(tmp_path) == before


# --- 6: full disks, read-only run directories, mount points (a small tmpfs) --------------------


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size) mounts a tmpfs of `size` at tmp/mnt and returns it; unmounted afterwards."""
    mounted = []

    def mount(size, options=""):
        point = tmp_path / "mnt"
        point.mkdir(exist_ok=True)
        opts = f"size={size}" + (f",{options}" if options else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
        mounted.append(point)
        return point

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def remount(point, options):
    subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True)


WIDE = ["-s", "model.layers.0.out_features=2000", "-s", "optimizer.lr=0.0001"]  # checkpoints of ~82 KB


def test_6_disk_full_at_start_writes_nothing(tmp_path, tmpfs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    point = tmpfs("40k")
    result = cli("train", write_config(tmp_path), "-s", f"output={point}/run", *WIDE)
    one_error_line(result.output, 4, result.exit_code, "cannot start a run", "No space left on device", "nothing was kept")
    assert list(point.iterdir()) == []


def test_6_disk_full_at_start_removes_the_parent_directories_it_made(tmp_path, tmpfs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    point = tmpfs("40k")
    result = cli("train", write_config(tmp_path), "-s", f"output={point}/new/deeper/run", *WIDE)
    one_error_line(result.output, 4, result.exit_code, "No space left on device")
    assert list(point.iterdir()) == []


def test_6_disk_full_in_an_empty_mount_point_used_as_output_dot(tmp_path, tmpfs, monkeypatch):
    point = tmpfs("40k")
    config = write_config(tmp_path)
    monkeypatch.chdir(point)
    result = cli("train", config, "-s", "output=.", *WIDE)
    one_error_line(result.output, 4, result.exit_code, "No space left on device")
    assert list(point.iterdir()) == []  # the lock file is gone too


def test_6_disk_full_mid_run_keeps_last_and_says_how_to_resume(tmp_path, tmpfs, monkeypatch):
    """250 KB hold the first last.npz and, after epoch 1, best.npz, but not a third copy: the save
    of last.npz fails, the previous one stays intact, and a resume finishes once space is free."""
    monkeypatch.chdir(tmp_path)
    point = tmpfs("200k")
    run_dir = point / "run"
    result = cli("train", write_config(tmp_path), "-s", f"output={run_dir}", *WIDE)
    one_error_line(result.output, 4, result.exit_code, "cannot write", "last.npz", "No space left on device",
                   "still holds the last saved state", f"layerwise train --resume {run_dir}")
    assert state_of(run_dir / "last.npz")["epoch"] == 0  # the one written at the start, intact
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    remount(point, "size=1m")
    result = cli("train", "--resume", str(run_dir))
    assert result.exit_code == 0, result.output
    assert state_of(run_dir / "last.npz")["epoch"] == 2


def test_6_resume_of_a_read_only_run_directory(tmp_path, tmpfs, monkeypatch, trained):
    monkeypatch.chdir(tmp_path)
    point = tmpfs("1m")
    shutil.copytree(trained, point / "run")
    remount(point, "ro")
    before = snapshot(point)
    result = cli("train", "--resume", str(point / "run"), "-s", "train.epochs=3")
    one_error_line(result.output, 4, result.exit_code, "cannot write in run directory", "Read-only file system")
    assert snapshot(point) == before


def test_6_output_dot_in_an_empty_mount_point_and_in_an_empty_directory(tmp_path, tmpfs, monkeypatch):
    config = write_config(tmp_path)
    for directory in (tmpfs("1m"), tmp_path / "empty"):
        directory.mkdir(exist_ok=True)
        monkeypatch.chdir(directory)
        result = cli("train", config, "-s", "output=.")
        assert result.exit_code == 0, result.output
        assert {"last.npz", "best.npz", "config.yaml", "test.json", LOCK_NAME} <= {p.name for p in directory.iterdir()}
        assert cli("eval", ".").exit_code == 0


def test_6_overwrite_of_a_run_that_is_a_mount_point(tmp_path, tmpfs, monkeypatch, trained):
    monkeypatch.chdir(tmp_path)
    point = tmpfs("1m")
    for item in trained.iterdir():
        shutil.copy2(item, point / item.name)
    before = snapshot(tmp_path)
    result = cli("train", write_config(tmp_path), "-s", "output=mnt", "--overwrite")
    one_error_line(result.output, 4, result.exit_code, "cannot move the run in mnt aside", "mount point")
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k != "exp.yaml"} == {k: v for k, v in before.items() if k != "exp.yaml"}


# --- 9, 10, 11: locks and concurrent processes -------------------------------------------------


def test_9_a_run_in_training_is_locked_against_overwrite_train_and_resume(tmp_path):
    proc = start_slow_run(tmp_path)
    try:
        for args in (["train", "exp.yaml", "-s", "output=run", "--overwrite"],
                     ["train", "exp.yaml", "-s", "output=run"],
                     ["train", "--resume", "run"]):
            output, code = run_layerwise(*args, cwd=tmp_path)
            one_error_line(output, 5, code, "run directory run is in use", f"layerwise process {proc.pid}")
        assert proc.poll() is None  # untouched: still training
    finally:
        proc.kill()  # kill -9: the kernel releases the lock
        proc.wait()
    output, code = run_layerwise("train", "--resume", "run", "-s", f"train.epochs={state_of(tmp_path / 'run' / 'last.npz')['epoch'] + 1}",
                                 cwd=tmp_path)
    assert code == 0, output
    assert "resuming exp" in output


def test_10_concurrent_fresh_starts_one_wins_the_others_get_one_error_line(tmp_path):
    config = write_config(tmp_path)
    # An epoch of 10,000 steps (a second or so): the winner still trains while the others start.
    longer = ["-s", "data.n_samples=20000", "-s", "train.batch_size=2", "-s", "train.epochs=1",
              "-s", "optimizer.lr=0.001"]
    procs = [process("train", config, "-s", "output=runs/exp", *longer, cwd=tmp_path) for _ in range(10)]
    results = [finish(p, timeout=240) for p in procs]
    codes = sorted(code for _, code in results)
    assert codes.count(0) == 1, results
    for output, code in results:
        if code != 0:
            line = one_error_line(output, code, code, "runs/exp")
            # in use (exit 5), created meanwhile by the winner, or (a start so late the winner was
            # done) already there (exit 2)
            expected = {5: ("is in use",), 2: ("was created by another layerwise process", "already exists")}
            assert code in expected and any(f in line for f in expected[code]), line
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["exp"]  # no staging directory left
    assert state_of(tmp_path / "runs" / "exp" / "last.npz")["epoch"] == 1


def test_11_cleanup_never_globs_the_run_name_and_deletes_only_its_own_abandoned_staging(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path)
    g = tmp_path / "g"
    g.mkdir()
    # A user's directories that look like staging: kept whatever their name.
    for name in (".mydata.v1.tmp", ".layerwise-new-mine", ".layerwise-new-forged"):
        (g / name).mkdir()
        (g / name / "thesis.tex").write_text("years of work\n")
    (g / ".layerwise-new-forged" / ".layerwise-staging").write_text(".layerwise-new-other\n")  # wrong marker
    # Abandoned by a start that was killed: marker naming itself, lock not held.
    (g / ".layerwise-new-abandoned").mkdir()
    (g / ".layerwise-new-abandoned" / ".layerwise-staging").write_text(".layerwise-new-abandoned")
    (g / ".layerwise-new-abandoned" / LOCK_NAME).write_text("99999999\n")
    (g / ".layerwise-new-abandoned" / "last.npz").write_bytes(b"partial")

    result = cli("train", config, "-s", "output=g/*")
    assert result.exit_code == 0, result.output
    names = {p.name for p in g.iterdir()}
    assert names == {"*", ".mydata.v1.tmp", ".layerwise-new-mine", ".layerwise-new-forged"}
    for name in (".mydata.v1.tmp", ".layerwise-new-mine", ".layerwise-new-forged"):
        assert (g / name / "thesis.tex").read_text() == "years of work\n"


def test_11_a_run_moved_aside_by_a_killed_overwrite_is_put_back(tmp_path, monkeypatch, trained):
    """--overwrite moves the old run into .layerwise-old-XXXXXXXX/run, then renames the new one in; a
    kill between the two renames leaves no run at its name. The next start in that directory puts the
    old run back instead of deleting it."""
    monkeypatch.chdir(tmp_path)
    aside = tmp_path / ".layerwise-old-k3j9x0ab"
    aside.mkdir()
    (aside / ".layerwise-staging").write_text(".layerwise-old-k3j9x0ab\nexp\n")
    shutil.copytree(trained, aside / "run")
    result = cli("train", write_config(tmp_path), "-s", "output=other")
    assert result.exit_code == 0, result.output
    assert not aside.exists()
    assert snapshot(tmp_path / "exp") == snapshot(trained)


def test_10_a_live_staging_directory_is_never_removed(tmp_path):
    """A start whose staging directory is locked by a live process leaves it alone."""
    from layerwise.run.rundir import _private_dir, remove_abandoned

    staging, lock = _private_dir(tmp_path, "new", tmp_path / "run")
    try:
        remove_abandoned(tmp_path)  # flock locks belong to open descriptors: this one is held
        assert staging.is_dir()
    finally:
        lock.release()
    remove_abandoned(tmp_path)  # the owner let go: now it is abandoned
    assert not staging.exists()


# --- 13: SIGTERM --------------------------------------------------------------------------------


def test_13_sigterm_saves_last_prints_the_resume_command_and_exits_143(tmp_path):
    proc = start_slow_run(tmp_path)
    proc.send_signal(signal.SIGTERM)
    output, code = finish(proc)
    one_error_line(output, 143, code, "stopped by SIGTERM", "saved run/last.npz", "layerwise train --resume run")
    state = state_of(tmp_path / "run" / "last.npz")
    assert state["epoch"] >= 1 and state["step"] > 0  # saved mid-epoch, after a finished step
    output, code = run_layerwise("train", "--resume", "run", "-s", f"train.epochs={state['epoch'] + 1}", cwd=tmp_path)
    assert code == 0, output
    assert f"at epoch {state['epoch'] + 1}, step {state['step'] + 1}" in output


# --- fuzz: mutated checkpoint bytes and metadata through the eval and resume loaders -----------

FUZZ_SEED = 9
FUZZ_BYTES, FUZZ_MEMBERS, FUZZ_META = 900, 600, 700  # inputs of each kind
FUZZ_RSS_MB = 150  # the child's peak resident memory must stay below this (about 52 MB measured;
# reading one 64 MB bomb, plus NumPy's copy of it, would pass it)
FUZZ_ADDRESS_SPACE = 3 << 30  # and it cannot map more than this: a runaway allocation fails at once

POOL = [None, True, False, 0, -1, 1, 7, 2**31, 2**63, 10**12, 0.5, -1e-300, 1e308, float("nan"), float("inf"),
        "", "x", "mse", "accuracy", "sgd", "linear", "relu", [], [1, 2], {}, {"epoch": 1}, [[[[]]]]]


def _mutate_bytes(data, rng, hot):
    """One of: bit flips, random bytes over a range, truncation, insertion, deletion, a copied chunk;
    half of the time aimed at `hot` offsets (zip headers, .npy headers, the central directory)."""
    data = bytearray(data)
    at = rng.choice(hot) + rng.randrange(-8, 64) if rng.random() < 0.5 else rng.randrange(len(data))
    at = min(max(at, 0), len(data) - 1)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            i = min(len(data) - 1, at + rng.randrange(32))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        n = rng.randint(1, 16)
        data[at : at + n] = bytes(rng.randrange(256) for _ in range(n))
    elif kind == 2:
        del data[at:]
    elif kind == 3:
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    elif kind == 4:
        del data[at : at + rng.randint(1, 64)]
    else:
        start = rng.randrange(len(data))
        data[at:at] = data[start : start + rng.randint(1, 4096)]
    return bytes(data)


def _mutate_json(value, rng, depth=0):
    """A copy of `value` with one node replaced, deleted, added to, wrapped or retyped."""
    if isinstance(value, (dict, list)) and value and rng.random() < 0.75:
        keys = list(value) if isinstance(value, dict) else list(range(len(value)))
        key = rng.choice(keys)
        copy = dict(value) if isinstance(value, dict) else list(value)
        roll = rng.random()
        if roll < 0.1:
            del copy[key]
        elif roll < 0.15 and isinstance(copy, dict):
            copy[rng.choice(["extra", "epoch", "x" * 300, ""])] = rng.choice(POOL)
        else:
            copy[key] = _mutate_json(copy[key], rng, depth + 1)
        return copy
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(POOL)
    if roll < 0.7:
        return [value]
    if roll < 0.8:
        return {"v": value}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value * rng.choice([-1, 2, 1000, 10**20]) + rng.choice([0, 1, 0.5])
    return str(value)[::-1]


def _mutate_meta_text(text, rng):
    """The metadata JSON as text: characters deleted, duplicated or replaced by brackets and quotes."""
    i = rng.randrange(len(text))
    n = rng.randint(1, 12)
    roll = rng.random()
    if roll < 0.4:
        return text[:i] + text[i + n :]
    if roll < 0.7:
        return text[:i] + rng.choice(["[", "]", "{", "}", '"', ",", ":", "-", "1e999", "\\u", "99999999999999"]) * n + text[i:]
    return text[:i] + text[i : i + n] * rng.randint(2, 50) + text[i:]


def _fuzz_main(run_dir, work, seed):
    """Child process: every mutated input through eval's and resume's loaders (writing nothing to
    the run: both only read). Prints a JSON summary of the outcomes."""
    import collections
    import random
    import traceback
    import urllib.error
    import urllib.request

    from layerwise.errors import LayerwiseError
    from layerwise.run.evaluate import evaluate_run
    from layerwise.run.fit import load_for_resume

    def no_network(*args, **kwargs):  # a mutated config may ask for MNIST: never download in a test
        raise urllib.error.URLError("the network is disabled in the fuzz test")

    urllib.request.urlopen = no_network
    os.environ["LAYERWISE_DATA"] = os.environ["XDG_CACHE_HOME"] = str(work)
    rng = random.Random(seed)
    run_dir, work = Path(run_dir), Path(work)
    target = work / "run"
    shutil.copytree(run_dir, target)
    original = (run_dir / "last.npz").read_bytes()
    members = npz_members(run_dir / "last.npz")
    meta = json.loads(str(np.load(io.BytesIO(members["__meta__"]))))
    hot = [i for i in range(len(original) - 4) if original[i : i + 2] == b"PK" or original[i : i + 6] == b"\x93NUMPY"]
    outcomes, failures = collections.Counter(), []

    def attempt(kind, data):
        for name in ("last.npz", "best.npz"):
            (target / name).write_bytes(data)
        with_config = rng.random() < 0.5  # with config.yaml, eval rebuilds from it; without, from the checkpoint
        if not with_config:
            (target / "config.yaml").unlink(missing_ok=True)
        elif not (target / "config.yaml").exists():
            shutil.copy(run_dir / "config.yaml", target / "config.yaml")
        for loader in ("eval", "resume"):
            try:
                if loader == "eval":
                    evaluate_run(target, "test", "best", (), echo=lambda *a: None)
                else:
                    load_for_resume(target, ["train.epochs=3"], echo=lambda *a: None)
                outcomes[f"{loader}: ok"] += 1
            except LayerwiseError as e:
                outcomes[f"{loader}: {type(e).__name__}"] += 1
            except Exception as e:  # a bug: what the fuzz is for
                outcomes[f"{loader}: BUG {type(e).__name__}"] += 1
                if len(failures) < 20:
                    failures.append(f"{kind}/{loader}: {traceback.format_exc(limit=-3)}")

    scratch = work / "scratch"
    shutil.copytree(run_dir, scratch)
    for forge in (zip_bomb, meta_bomb, replace_member("model/0.W", npy_header("<f4", (10**12,), bytes(48)))):
        shutil.copy(run_dir / "last.npz", scratch / "last.npz")
        forge(scratch, "last.npz")
        attempt("forged", (scratch / "last.npz").read_bytes())
    for _ in range(FUZZ_BYTES):
        attempt("bytes", _mutate_bytes(original, rng, hot))
    for _ in range(FUZZ_MEMBERS):  # a well-formed zip whose members' bytes are damaged
        changed = dict(members)
        name = rng.choice(list(changed))
        member = changed[name]
        changed[name] = _mutate_bytes(member, rng, [0, 8, min(len(member) - 1, 60), len(member) - 1])
        buffer = io.BytesIO()
        write_npz(buffer, changed, rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
        attempt("member", buffer.getvalue())
    for i in range(FUZZ_META):
        if i % 3 == 2:
            text = _mutate_meta_text(json.dumps(meta), rng)
        else:
            text = json.dumps(_mutate_json(meta, rng))
        buffer = io.BytesIO()
        write_npz(buffer, {**members, "__meta__": npy(np.array(text))})
        attempt("meta", buffer.getvalue())
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    # ru_maxrss survives fork + exec: under a pytest that has imported torch (a cross-check module, at
    # collection) it would be pytest's peak. VmHWM is this process's own.
    status = Path("/proc/self/status")
    if status.is_file():
        hwm = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:")]
        peak_mb = int(hwm[0]) / 1024 if hwm else peak_mb
    print(json.dumps({"inputs": FUZZ_BYTES + FUZZ_MEMBERS + FUZZ_META + 3, "outcomes": outcomes, "failures": failures,
                      "peak_mb": peak_mb}))


def test_fuzz_checkpoint_bytes_and_metadata(tmp_path, trained):
    """2,200 mutated checkpoints (bytes, members, metadata; fixed seed) and the table's three memory
    forgeries, each through `layerwise eval`'s loader and resume's: every outcome is success or a
    LayerwiseError, never another exception, in a child process whose peak memory stays under
    FUZZ_RSS_MB."""
    import resource

    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_hostile_runs as t; "
            f"t._fuzz_main({str(trained)!r}, {str(tmp_path)!r}, {FUZZ_SEED})")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (FUZZ_ADDRESS_SPACE, FUZZ_ADDRESS_SPACE))

    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env, preexec_fn=limit,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    print(f"fuzz: {summary['inputs']} inputs, peak RSS {summary['peak_mb']:.0f} MB, outcomes {summary['outcomes']}")
    assert summary["inputs"] == FUZZ_BYTES + FUZZ_MEMBERS + FUZZ_META + 3
    assert not summary["failures"], "\n".join(summary["failures"])
    assert sum(summary["outcomes"].values()) == 2 * summary["inputs"]
    assert summary["outcomes"].get("eval: ok", 0) > 0 and summary["outcomes"].get("eval: CheckpointError", 0) > 0
    assert summary["peak_mb"] < FUZZ_RSS_MB
