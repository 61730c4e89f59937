"""Reader fuzzing: seeded mutations of small valid files for every reader.

Each mutated file (truncation, byte flips, bad numbers, huge and negative indices, interleaved
groups, CRLF, BOM, empty, binary junk, ...) must end in one of two ways: the data read equals
what a strict hand-written parser of the format makes of the file, or a ``ValueError`` naming
the file (text formats: with its line, or the data row for whole-column checks). Never another
exception type or data the strict parser would refuse.
"""

import csv
import io
import math
import random
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from distill.data import read_criteo, read_letor, read_libsvm, read_table
from distill.data.ctr_formats import CRITEO_COLUMNS

CASES_PER_READER = 60
BAD_NUMBERS = ["nan", "inf", "-inf", "1e999", "abc", "", "0x10", "1.2.3", "--1", "1e", "+"]
HUGE_INDICES = ["2147483648", "9223372036854775808", "1" + "0" * 30, "-1", "70000", "0"]


class Refused(Exception):
    """The strict oracle parser refuses the file."""


def _number(token: str) -> float:
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", token):
        raise Refused(token)
    value = float(token)
    if not math.isfinite(value):
        raise Refused(token)
    return value


def _data_lines(text: str) -> list[list[str]]:
    lines = [line.split("#", 1)[0].split() for line in text.split("\n")]  # only \n ends a line
    lines = [tokens for tokens in lines if tokens]
    if not lines:
        raise Refused("no rows")
    return lines


def _svmlight_oracle(raw: bytes, *, with_qid: bool, max_index: int):
    """Strict SVMlight: label, optional qid:int, strictly increasing index:value pairs."""
    data = [line.split(b"#", 1)[0] for line in raw.split(b"\n")]  # comments hold any bytes
    try:
        text = b"\n".join(data).decode("ascii")
    except UnicodeDecodeError as error:
        raise Refused("not ascii") from error
    rows, labels, qids = [], [], []
    lines = _data_lines(text)
    with_qid = with_qid and any(len(tokens) > 1 and tokens[1].startswith("qid") for tokens in lines)
    for tokens in lines:
        labels.append(_number(tokens[0]))
        rest = tokens[1:]
        if with_qid:
            if not rest or not re.fullmatch(r"qid:-?\d+", rest[0]):
                raise Refused("qid")
            qids.append(int(rest[0][4:]))
            rest = rest[1:]
        pairs, previous = {}, -1
        for token in rest:
            match = re.fullmatch(r"(\d+):(\S+)", token)
            if not match or int(match[1]) <= previous or int(match[1]) > max_index:
                raise Refused(token)
            previous = int(match[1])
            pairs[previous] = _number(match[2])
        rows.append(pairs)
    if with_qid:
        starts = [q for i, q in enumerate(qids) if i == 0 or q != qids[i - 1]]
        if len(set(starts)) != len(starts):
            raise Refused("interleaved groups")
    return rows, labels, qids


def _letor_expected(raw):
    rows, labels, qids = _svmlight_oracle(raw, with_qid=True, max_index=2**16)
    base = 0 if any(0 in row for row in rows) else 1
    width = max([max(row, default=base - 1) for row in rows]) + 1 - base
    dense = np.zeros((len(rows), max(width, 0)), dtype=np.float32)
    for r, row in enumerate(rows):
        for index, value in row.items():
            dense[r, index - base] = value
    return dense, np.array(labels, dtype=np.float32), qids


def _check_letor(path, raw):
    ds = read_letor(path)
    dense, labels, qids = _letor_expected(raw)
    assert ds.features.numpy().tolist() == dense.tolist()
    assert ds.labels.numpy().tolist() == labels.tolist()
    assert (ds.groups.tolist() if qids else ds.groups) == (qids or None)


def _check_libsvm(path, raw):
    ds = read_libsvm(path)
    rows, labels, _ = _svmlight_oracle(raw, with_qid=False, max_index=2**24)
    if any(not 0 <= label <= 1 for label in labels):
        raise Refused("label range")
    base = 0 if any(0 in row for row in rows) else 1
    ids = [[index - base + 1 for index in row] for row in rows]
    got = [[i for i in row if i] for row in ds.features.tolist()]
    assert got == ids and ds.labels.tolist() == np.float32(labels).tolist()


def _check_criteo(path, raw):
    ds = read_criteo(path, header=False, sep="\t")
    try:
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("ascii")  # a UTF-8 BOM is allowed
    except UnicodeDecodeError as error:
        raise Refused("not ascii") from error
    lines = [line for line in re.split(r"\r\n|\r|\n", text) if line]  # as CSV parsers split
    labels = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) != len(CRITEO_COLUMNS):
            raise Refused("fields")
        labels.append(_number(fields[0]))
        for token in fields[1:14]:
            if token and not re.fullmatch(r"-?\d+(\.0*)?", token):
                raise Refused(token)
    if not lines or any(not 0 <= label <= 1 for label in labels):
        raise Refused("labels")
    assert ds.labels.tolist() == np.float32(labels).tolist()


def _check_csv(path, raw):
    ds = read_table(path, features=["a", "b"], label="y")
    try:
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("ascii")  # a UTF-8 BOM is allowed
    except UnicodeDecodeError as error:
        raise Refused("not ascii") from error
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    if not rows or rows[0] != ["a", "b", "y"] or len(rows) < 2:
        raise Refused("header")
    if any(len(row) != 3 for row in rows[1:]):
        raise Refused("fields")
    features = [[_csv_number(cell) for cell in row[:2]] for row in rows[1:]]
    labels = [_csv_number(row[2]) for row in rows[1:]]
    assert ds.features.tolist() == np.float32(features).tolist()
    assert ds.labels.tolist() == np.float32(labels).tolist()


def _csv_number(token: str) -> float:
    """CSV cells may be blank-padded or hexadecimal integers (pyarrow reads "0x10" as 16)."""
    token = token.strip(" \t")  # pyarrow trims blanks around numbers
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", token):
        return float(int(token, 16))
    return _number(token)


def _letor_file(rng):
    lines = []
    for query in (3, 8, 5):
        for _ in range(rng.randint(2, 3)):
            pairs = " ".join(f"{k}:{rng.randint(0, 99) / 10}" for k in (1, 2, 4))
            lines.append(f"{rng.randint(0, 4)} qid:{query} {pairs}")
    return ("\n".join(lines) + "\n").encode()


def _libsvm_file(rng):
    lines = []
    for _ in range(6):
        ids = sorted(rng.sample(range(1, 30), 3))
        lines.append(f"{rng.randint(0, 1)} " + " ".join(f"{i}:1" for i in ids))
    return ("\n".join(lines) + "\n").encode()


def _criteo_file(rng):
    lines = []
    for _ in range(5):
        ints = [str(rng.randint(0, 500)) if rng.random() > 0.2 else "" for _ in range(13)]
        cats = [f"{rng.getrandbits(32):08x}" if rng.random() > 0.2 else "" for _ in range(26)]
        lines.append("\t".join([str(rng.randint(0, 1)), *ints, *cats]))
    return ("\n".join(lines) + "\n").encode()


def _csv_file(rng):
    rows = [f"{rng.randint(0, 99) / 10},{rng.randint(-5, 5)},{rng.randint(0, 1)}" for _ in range(6)]
    return ("a,b,y\n" + "\n".join(rows) + "\n").encode()


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    if kind == 0:
        return raw[: rng.randrange(len(raw))]
    if kind == 1:
        data = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:
        numbers = list(re.finditer(rb"(?<=[:\s,])-?\d+(\.\d+)?", raw))
        target = rng.choice(numbers)
        bad = rng.choice(BAD_NUMBERS).encode()
        return raw[: target.start()] + bad + raw[target.end() :]
    if kind == 3:
        indices = list(re.finditer(rb"\d+(?=:)", raw)) or list(re.finditer(rb"\d+", raw))
        target = rng.choice(indices)
        return raw[: target.start()] + rng.choice(HUGE_INDICES).encode() + raw[target.end() :]
    if kind == 4:  # interleave: move the first line to the end
        lines = raw.splitlines(keepends=True)
        return b"".join(lines[1:] + lines[:1])
    if kind == 5:
        return raw.replace(b"\n", b"\r\n")
    if kind == 6:
        return b"\xef\xbb\xbf" + raw
    if kind == 7:
        return b""
    if kind == 8:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    lines = raw.splitlines(keepends=True)
    position = rng.randrange(len(lines))
    if kind == 9:
        return b"".join(lines[:position] + lines[position + 1 :])
    if kind == 10:
        return b"".join([*lines[:position], b"\n", b"# comment\n", *lines[position:]])
    return b"".join([*lines[:position], lines[position], *lines[position:]])


TEXT_READERS = {
    "letor": (_letor_file, _check_letor, "f.txt"),
    "libsvm": (_libsvm_file, _check_libsvm, "f.txt"),
    "criteo": (_criteo_file, _check_criteo, "f.tsv"),
    "csv": (_csv_file, _check_csv, "f.csv"),
}
LINE = r":\d+: |file is empty|no data rows"
LOCATED = {  # SVMlight: always the line; CSV-like: the line, or the data row of a column check
    "letor": re.compile(LINE),
    "libsvm": re.compile(LINE),
    "criteo": re.compile(LINE + r"|row \d+"),
    "csv": re.compile(LINE + r"|row \d+"),
}


@pytest.mark.parametrize("reader", sorted(TEXT_READERS))
def test_mutated_text_files_read_correctly_or_fail_naming_file_and_line(tmp_path, reader):
    make, check, name = TEXT_READERS[reader]
    rng = random.Random(f"fuzz-{reader}")
    for case in range(CASES_PER_READER):
        raw = _mutate(make(rng), rng)
        path = tmp_path / f"{case}-{name}"
        path.write_bytes(raw)
        try:
            check(path, raw)
        except ValueError as error:
            message = str(error)
            assert message.startswith(str(path)), (case, raw, message)
            assert LOCATED[reader].search(message), (case, raw, message)
        except Refused as refused:
            pytest.fail(f"case {case}: read data the strict parser refuses ({refused}): {raw!r}")


def test_mutated_parquet_files_read_the_original_or_fail_naming_the_file(tmp_path):
    table = pa.table({"a": [0.5, 1.5, 2.5], "b": [1, 2, 3], "y": [0, 1, 1]})
    pq.write_table(table, tmp_path / "good.parquet")
    good = (tmp_path / "good.parquet").read_bytes()
    rng = random.Random("fuzz-parquet")
    for case in range(CASES_PER_READER):
        kind = rng.randrange(4)
        if kind == 0:
            raw = good[: rng.randrange(len(good))]
        elif kind == 1:
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        elif kind == 2:
            raw = good + bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        else:
            raw = b"PAR1" + good[rng.randrange(4, len(good)) :]
        path = tmp_path / f"{case}.parquet"
        path.write_bytes(raw)
        try:
            ds = read_table(path, features=["a", "b"], label="y")
        except ValueError as error:
            assert str(error).startswith(str(path)), (case, str(error))
        else:
            assert torch.equal(ds.features, torch.tensor([[0.5, 1], [1.5, 2], [2.5, 3]]))
