"""IDX round trips and every malformed-file error the reader promises."""

import numpy as np
import pytest

from layerwise.data.idx import read_idx, read_idx_bytes, write_idx
from layerwise.errors import DataError


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (5, 4, 3)])
def test_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"x-idx{suffix}"
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, array)


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    write_idx(tmp_path / "a.gz", array)
    renamed = tmp_path / "a-without-suffix"
    renamed.write_bytes((tmp_path / "a.gz").read_bytes())
    np.testing.assert_array_equal(read_idx(renamed), array)


def idx_bytes(dtype_code=0x08, dims=(3,), payload=b"\x01\x02\x03", magic=b"\x00\x00"):
    header = magic + bytes([dtype_code, len(dims)]) + np.array(dims, dtype=">u4").tobytes()
    return header + payload


@pytest.mark.parametrize("data, word", [
    (idx_bytes(magic=b"\x08\x03"), "magic"),
    (idx_bytes(dtype_code=0x0D), "dtype"),
    (idx_bytes(dims=()), "dims"),
    (idx_bytes(dims=(1, 1, 1, 1, 1), payload=b"\x00"), "dims"),
    (idx_bytes(payload=b"\x01\x02"), "truncated"),
    (idx_bytes(payload=b"\x01\x02\x03\x04"), "trailing"),
    (idx_bytes(dims=(2, 3))[:10], "header truncated"),
    (b"\x00\x00", "too short"),
])
def test_malformed_raw(data, word):
    with pytest.raises(DataError, match=word) as info:
        read_idx_bytes(data, "bad-file")
    assert "bad-file" in str(info.value)


def test_malformed_file_names_the_path(tmp_path):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(idx_bytes(payload=b""))
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gz(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.arange(200, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


def test_corrupt_gz(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x1f\x8b" + b"not really gzip at all")
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope")


def test_write_rejects_non_uint8(tmp_path):
    with pytest.raises(DataError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.float32))

