"""Pairwise ranking distillation in your own loop: ``distill.pairwise_distillation_loss``.

The teacher sees all 16 features of the built-in synthetic recommender and every click; the
student sees the first 8 features and the clicks of only 5 % of the training groups. The
distilled student matches the teacher's score differences inside every training group with
an L1 penalty (US 2023/0252281 Eq. 8), so it learns from all groups, not just the labelled 5 %.
Distillation helps in this setting (few labels, a student that can still use what the teacher
knows); with every click labelled, or a student that sees 4 of 16 features, labels alone
reach what the student's features allow and distillation gains nothing (BENCHMARKS.md,
"Ranking demo"). Run: ``python examples/ranking_pairwise.py``; it prints test NDCG@10 of
about 0.736 (teacher), 0.616 (labels only) and 0.678 (pairwise L1), one seed.
"""

import torch

import distill
from distill.data import GroupBatchSampler, split
from distill.metrics import ndcg
from distill.models import MLP

torch.manual_seed(0)
data = distill.load_builtin(
    "synthetic_recommender", n_groups=1000, noise="skewed", student_features=8
)
train_set, test_set = split(data, (0.8, 0.2), seed=0)
student_columns = data.meta["student_features"]  # "1-8"
x_student = train_set.select_features(student_columns).features
labelled = train_set.groups % 20 == 0  # the clicks of every 20th group: 5 %


def train(model, features, loss_fn, epochs=10, rows=None):
    """AdamW over batches of whole groups (of ``rows`` only); ``loss_fn(scores, batch_index)``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003)
    keep = torch.ones(len(train_set), dtype=torch.bool) if rows is None else rows
    sampler = GroupBatchSampler(train_set.groups[keep], groups_per_batch=16, seed=0)
    positions = keep.nonzero().squeeze(1)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in sampler:
            index = positions[batch]
            loss = loss_fn(model(features[index]), index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def ranknet(scores, index):
    return distill.pairwise_logistic_loss(scores, train_set.groups[index], train_set.labels[index])


teacher = train(MLP(16, (128, 64)), train_set.features, ranknet)
with torch.no_grad():
    teacher_scores = teacher(train_set.features)


def pairwise_l1(scores, index):
    groups = train_set.groups[index]
    return distill.pairwise_distillation_loss(
        scores, teacher_scores[index], groups, penalty="absolute"
    )


# the same number of steps: 20× the epochs over 1/20 of the groups
baseline = train(MLP(8, (16,)), x_student, ranknet, epochs=200, rows=labelled)
student = train(MLP(8, (16,)), x_student, pairwise_l1)

x_test = test_set.select_features(student_columns).features
with torch.no_grad():
    for name, model, x in (
        ("teacher", teacher, test_set.features),
        ("labels only", baseline, x_test),
        ("pairwise L1", student, x_test),
    ):
        value = ndcg(model(x), test_set.labels, test_set.groups, k=10)
        print(f"{name:>11}: test NDCG@10 {value:.3f}")
