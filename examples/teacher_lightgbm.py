"""Bring your own teacher: the files that examples/teacher_*.toml read.

Writes, into FOLDER (default ``data/rank``):

- a LETOR train/test pair in LightGBM's layout: ``rank.train`` and ``rank.test`` (SVMlight
  rows) each with its ``.query`` file of group sizes; grades 0-4 of a nonlinear relevance;
- ``lambdarank.txt``: a LightGBM lambdarank model trained on ``rank.train`` (the teacher);
- ``scores.parquet``: that model's raw scores of every row, keyed by ``row`` (the train rows
  0 … n−1, then the test rows): the teacher as a scores file;
- ``train.parquet`` and ``test.parquet``: the same rows as tables with the score as a
  ``teacher_logit`` column: the teacher as a logged column, as ads and search pipelines keep
  it;
- ``teacher.onnx``: a small torch ranker trained on ``rank.train``, exported to ONNX.

Then: ``distill run examples/teacher_lightgbm.toml`` (and ``teacher_scores.toml``,
``teacher_onnx.toml``). Needs ``pip install 'distill[gbdt]'``.

Usage: python examples/teacher_lightgbm.py [FOLDER]
"""

import sys
from pathlib import Path

import lightgbm
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

N_FEATURES = 8
FILES = {"train": (280, 0), "test": (80, 2)}
"""File name: (queries, seed)."""


def queries(n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (float32), grades 0-4 and group sizes (6-14 documents) of ``n_queries``."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(6, 15, n_queries)
    x = rng.normal(size=(sizes.sum(), N_FEATURES)).astype(np.float32)
    latent = x[:, 0] + np.sin(2 * x[:, 1]) + x[:, 2] * x[:, 3] - 0.5 * np.abs(x[:, 4])
    noisy = latent + 0.3 * rng.normal(size=len(x))
    grades = np.digitize(noisy, np.quantile(noisy, [0.5, 0.75, 0.9, 0.97])).astype(np.float32)
    return x, grades, sizes


def write_letor(path: Path, x: np.ndarray, grades: np.ndarray, sizes: np.ndarray) -> None:
    """SVMlight rows (no qid) plus LightGBM's ``<file>.query`` group sizes."""
    rows = (
        f"{int(g)} " + " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(row))
        for row, g in zip(x, grades, strict=True)
    )
    path.write_text("\n".join(rows) + "\n")
    path.with_name(path.name + ".query").write_text("\n".join(map(str, sizes)) + "\n")


def write_table(path: Path, x: np.ndarray, grades: np.ndarray, sizes: np.ndarray, scores) -> None:
    """One Parquet table: f1..f8, grade, query and the teacher's logit."""
    columns = {f"f{j + 1}": x[:, j] for j in range(N_FEATURES)}
    columns |= {"grade": grades, "query": np.repeat(np.arange(len(sizes)), sizes)}
    pq.write_table(pa.table({**columns, "teacher_logit": scores}), path)


def lambdarank(folder: Path, parts: dict, rounds: int = 60) -> np.ndarray:
    """Train the LightGBM teacher on rank.train; save it and its raw scores of every row."""
    x, grades, sizes = parts["train"]
    params = {"objective": "lambdarank", "num_leaves": 15, "verbose": -1, "num_threads": 1}
    booster = lightgbm.train(params, lightgbm.Dataset(x, grades, group=sizes), rounds)
    booster.save_model(str(folder / "lambdarank.txt"))
    every_row = np.concatenate([part[0] for part in parts.values()]).astype(np.float64)
    scores = booster.predict(every_row, raw_score=True).astype(np.float32)
    pq.write_table(
        pa.table({"row": np.arange(len(scores)), "lambdarank": scores}),
        folder / "scores.parquet",
    )
    return scores


def onnx_ranker(folder: Path, parts: dict, steps: int = 300) -> None:
    """A small MLP regressing rank.train's grades, exported to ``teacher.onnx``."""
    x, grades, _ = (torch.from_numpy(a) for a in parts["train"])
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x)[:, 0], grades).backward()
        optimizer.step()
    torch.onnx.export(
        model.eval(),
        (x[:2],),
        str(folder / "teacher.onnx"),
        input_names=["features"],
        output_names=["score"],
        dynamic_axes={"features": {0: "rows"}, "score": {0: "rows"}},
        dynamo=False,
    )


def main(folder: str = "data/rank", *, onnx: bool = True) -> Path:
    """Write every file into ``folder``; returns it."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    parts = {name: queries(n, seed) for name, (n, seed) in FILES.items()}
    scores = np.split(lambdarank(out, parts), [len(parts["train"][0])])
    for (name, part), part_scores in zip(parts.items(), scores, strict=True):
        write_letor(out / f"rank.{name}", *part)
        write_table(out / f"{name}.parquet", *part, part_scores)
    if onnx:
        onnx_ranker(out, parts)
    print(f"wrote rank.train, rank.test, lambdarank.txt and the scores files into {out}")
    return out


if __name__ == "__main__":
    main(*sys.argv[1:2])
