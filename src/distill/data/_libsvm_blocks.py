"""A libsvm file parsed block by block (bounded memory) into the Arrow rows of the shard layout.

Each block of whole lines is parsed by scikit-learn's SVMlight reader; a problem is located by
scanning the file for the first bad line (``file:line: ...``), as the whole-file reader does.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
import pyarrow as pa

from distill.data._checks import check_file, check_has_rows, raise_at_row, raise_located
from distill.data._svmlight import BAD_QID, svmlight_line_problem
from distill.data.ctr_formats import LIBSVM_MAX_INDEX
from distill.data.sparse_rows import INDEX, LABEL, QID, VALUE


def libsvm_schema(has_qid: bool) -> pa.Schema:
    """The shard columns: ``label``, ``qid`` (with query ids), ``index`` and ``value`` lists."""
    fields = [(LABEL, pa.float64())] + ([(QID, pa.int64())] if has_qid else [])
    fields += [(INDEX, pa.list_(pa.int64())), (VALUE, pa.list_(pa.float32()))]
    return pa.schema(fields)


def libsvm_blocks(path: str | Path, block_bytes: int) -> Iterator[pa.Table]:
    """The rows of a libsvm file, one Arrow table per block of about ``block_bytes`` of text.

    Raises:
        ValueError: ``file:line: problem`` for a malformed line, an index above ``2**24``, a
            NaN/inf label, a mangled ``qid`` token, lines with and without ``qid:`` in one
            file, or a query id that reappears after another; a file without rows.
    """
    path = check_file(path)
    rows, has_qid, seen, last = 0, None, set(), None
    for block in _text_blocks(path, block_bytes):
        table = _parse(path, block)
        if table.num_rows == 0:
            continue
        if has_qid is None:
            has_qid = QID in table.column_names
        elif has_qid != (QID in table.column_names):
            _raise_mixed_qid(path)
        if has_qid:
            last = _check_consecutive(path, table[QID].to_numpy(), rows, seen, last)
        rows += table.num_rows
        yield table
    check_has_rows(path, rows)


def _text_blocks(path: str, block_bytes: int) -> Iterator[bytes]:
    """The file's bytes in blocks of whole lines (the last one may lack its newline)."""
    with open(path, "rb") as file:
        carry = b""
        while data := file.read(block_bytes):
            data = carry + data
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]
            if cut:
                yield data[:cut]
        if carry:
            yield carry


def _parse(path: str, block: bytes) -> pa.Table:
    from sklearn.datasets import load_svmlight_file  # deferred: sklearn.datasets imports slowly

    problem = _line_problem
    if BAD_QID.search(block) is not None:
        raise_located(path, problem, ValueError("a mangled 'qid' token"))
    try:
        matrix, labels, qid = load_svmlight_file(
            io.BytesIO(block), zero_based=True, query_id=True, dtype=np.float32
        )
    except (ValueError, OverflowError) as error:
        raise_located(path, problem, error)
    if matrix.shape[1] - 1 > LIBSVM_MAX_INDEX:
        raise_located(path, problem, ValueError(f"feature index above {LIBSVM_MAX_INDEX}"))
    if not np.isfinite(labels).all():
        raise_located(path, problem, ValueError("NaN/inf label"))
    if 0 < len(qid) != matrix.shape[0]:
        _raise_mixed_qid(path)
    offsets = pa.array(matrix.indptr.astype(np.int32))
    columns = {LABEL: pa.array(labels.astype(np.float64))}
    if len(qid):
        columns[QID] = pa.array(qid.astype(np.int64))
    columns[INDEX] = pa.ListArray.from_arrays(offsets, pa.array(matrix.indices.astype(np.int64)))
    columns[VALUE] = pa.ListArray.from_arrays(offsets, pa.array(matrix.data.astype(np.float32)))
    return pa.table(columns, schema=libsvm_schema(bool(len(qid))))


def _line_problem(line: str) -> str | None:
    return svmlight_line_problem(line, max_index=LIBSVM_MAX_INDEX)


def _raise_mixed_qid(path: str) -> NoReturn:
    """Name the first line whose ``qid:`` token (or its absence) differs from the first row's."""
    first: list[bool] = []

    def problem(line: str) -> str | None:
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            return None
        has = any(token.startswith("qid:") for token in tokens)
        if not first:
            first.append(has)
        if has == first[0]:
            return None
        if has:
            return "line has a 'qid:' token while the first lines of the file do not"
        return "line has no 'qid:' token while the first lines of the file do"

    raise_located(path, problem, ValueError("lines with and without 'qid:'"))


def _check_consecutive(path: str, qid: np.ndarray, first_row: int, seen: set, last) -> int:
    """Each query's lines are consecutive: a qid never reappears after another one."""
    starts = np.flatnonzero(np.r_[qid[0] != last, qid[1:] != qid[:-1]])
    for start in starts:
        value = int(qid[start])
        if value in seen:
            raise_at_row(
                path,
                first_row + int(start),
                f"qid {value} appears again after other queries (a query's lines must be "
                "consecutive)",
            )
        seen.add(value)
    return int(qid[-1])
