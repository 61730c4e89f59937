"""``distill convert``: Criteo TSV → Parquet shards, hashing, resume, bad input."""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.data.convert import convert_criteo
from distill.data.streaming import StreamingTable

runner = CliRunner()


def criteo_lines(n, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        ints = ["" if rng.random() < 0.2 else str(rng.integers(-2, 500)) for _ in range(13)]
        cats = ["" if rng.random() < 0.1 else f"{rng.integers(0, 2**32):08x}" for _ in range(26)]
        lines.append("\t".join([str(rng.integers(0, 2)), *ints, *cats]))
    return lines


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def parse(line):
    fields = line.split("\t")
    return int(fields[0]), [None if v == "" else int(v) for v in fields[1:14]], fields[14:]


def test_shards_hold_every_line_in_order(tmp_path):
    lines = criteo_lines(23)
    shards = convert_criteo([write(tmp_path / "day_0", lines)], tmp_path / "out", shard_rows=10)
    assert [p.name for p in shards] == [f"day_0-0000{k}.parquet" for k in range(3)]
    assert [pq.read_metadata(p).num_rows for p in shards] == [10, 10, 3]
    table = pq.read_table(tmp_path / "out")
    for row, line in enumerate(lines):
        label, ints, cats = parse(line)
        assert table["label"][row].as_py() == label
        assert [table[f"I{k}"][row].as_py() for k in range(1, 14)] == ints
        assert [table[f"C{k}"][row].as_py() for k in range(1, 27)] == [c or None for c in cats]
    streamed = StreamingTable(
        tmp_path / "out",
        label="label",
        features=[f"I{k}" for k in range(1, 14)],
        categorical=[f"C{k}" for k in range(1, 27)],
        impute=0.0,
    )
    assert len(streamed) == 23 and streamed.num_embeddings == 1 + 13 + 26 * (2**17 + 1)


def test_hash_buckets_store_crc32_ids(tmp_path):
    lines = criteo_lines(8, seed=1)
    convert_criteo([write(tmp_path / "d", lines)], tmp_path / "out", hash_buckets=97)
    table = pq.read_table(tmp_path / "out")
    for row, line in enumerate(lines):
        for k, text in enumerate(parse(line)[2], start=1):
            expected = None if text == "" else 1 + zlib.crc32(text.encode()) % 97
            assert table[f"C{k}"][row].as_py() == expected


def test_a_bad_file_leaves_no_shard_and_a_rerun_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr("distill.data.convert.BLOCK_BYTES", 1000)  # the bad line after 2 shards
    good = write(tmp_path / "day_0", criteo_lines(5))
    bad_lines = criteo_lines(30, seed=2)
    bad_lines[25] = "1\t2\t3"
    bad = write(tmp_path / "day_1", bad_lines)
    said = []
    with pytest.raises(ValueError, match=r"day_1: not a Criteo TSV file \(.*Expected 40 columns"):
        convert_criteo([good, bad], tmp_path / "out", shard_rows=10, progress=said.append)
    assert any("day_1-00001.parquet: 10 rows" in line for line in said)  # written, then removed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_day_0.done",
        "day_0-00000.parquet",
    ]
    first = (tmp_path / "out" / "day_0-00000.parquet").stat().st_mtime_ns
    write(bad, criteo_lines(30, seed=2))
    lines = []
    shards = convert_criteo([good, bad], tmp_path / "out", shard_rows=10, progress=lines.append)
    assert len(shards) == 4 and "already converted (1 shard(s)), skipped" in lines[0]
    assert (tmp_path / "out" / "day_0-00000.parquet").stat().st_mtime_ns == first


def test_cli_convert_and_missing_input(tmp_path):
    day = write(tmp_path / "day_0", criteo_lines(12))
    result = runner.invoke(
        app, ["convert", str(day), "--out", str(tmp_path / "o"), "--shard-rows", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "3 shard(s)" in result.output and "rows/s" in result.output
    result = runner.invoke(app, ["convert", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no such input file(s)" in result.output
    assert not (tmp_path / "x").exists()
