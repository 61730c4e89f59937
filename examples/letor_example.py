"""LETOR file -> tiny teacher -> cached scores -> NDCG@10. Usage: letor_example.py [train.txt]"""

import sys
import tempfile
from pathlib import Path

import torch
from sklearn.datasets import dump_svmlight_file

from distill.data import read_letor, synthetic_recommender
from distill.metrics import ndcg
from distill.models import MLP
from distill.teachers import CachedScores, ModuleTeacher, score


def main(path: str | None = None, work: str | None = None) -> float:
    work = Path(work or tempfile.mkdtemp())
    if path is None:  # write a small LETOR file: 60 queries x 12 documents, grades 0-4
        path, ds = str(work / "train.txt"), synthetic_recommender(60, 12, 8, 2, seed=0)
        grades = (ds.extras["true_prob"] * 5).floor().clamp(max=4).numpy()
        dump_svmlight_file(ds.features.numpy(), grades, path, query_id=ds.groups.numpy())
    data = read_letor(path, label_range=(0, 4))
    torch.manual_seed(0)
    teacher = MLP(data.features.shape[1], hidden=(32,))
    optimizer = torch.optim.Adam(teacher.parameters(), lr=0.01)
    for _ in range(100):  # a few full-batch steps regressing the grades
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(teacher(data.features), data.labels).backward()
        optimizer.step()
    source = ModuleTeacher(teacher)
    score(source, data, work / "scores")
    cached = CachedScores(work / "scores", data, teacher=source)  # no teacher forward pass
    value = ndcg(cached.predict(data.features, data.ids), data.labels, data.groups, k=10)
    print(f"teacher NDCG@10 from cached scores: {value:.4f}")
    return value


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
