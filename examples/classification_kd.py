"""Classification KD in your own training loop: one call to ``distill.kd_loss`` per step.

A teacher MLP learns the built-in digits; a 12-unit student sees 10 % of the labels plus the
teacher's soft targets (T = 4) on every training image (the unlabeled rows are a transfer
set). Run: ``python examples/classification_kd.py`` (seconds on a CPU).
"""

import torch
import torch.nn.functional as F

import distill
from distill.data import split
from distill.metrics import accuracy
from distill.models import MLP


def train(model, features, loss_fn, steps=400):
    """Plain AdamW on random batches; ``loss_fn(outputs, batch_index)``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.005)
    for _ in range(steps):
        index = torch.randint(len(features), (64,))
        loss = loss_fn(model(features[index]), index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


torch.manual_seed(0)
train_set, test_set = split(distill.load_builtin("digits"), (0.8, 0.2), seed=0)
x, y = train_set.features, train_set.labels
labeled = torch.rand(len(y)) < 0.1

teacher = train(MLP(64, (256, 128), 10), x, lambda out, i: F.cross_entropy(out, y[i]))
with torch.no_grad():
    soft = teacher(x)
hard = torch.where(labeled, y, -100)  # -100: unlabeled row, the soft term alone

kd_student = train(
    MLP(64, (12,), 10),
    x,
    lambda out, i: distill.kd_loss(out, soft[i], hard[i], temperature=4.0, alpha=0.9),
)
x_labeled, y_labeled = x[labeled], y[labeled]
baseline = train(MLP(64, (12,), 10), x_labeled, lambda out, i: F.cross_entropy(out, y_labeled[i]))

with torch.no_grad():
    for name, model in (("teacher", teacher), ("labels only", baseline), ("KD", kd_student)):
        print(
            f"{name:>11}: test accuracy {accuracy(model(test_set.features), test_set.labels):.3f}"
        )
