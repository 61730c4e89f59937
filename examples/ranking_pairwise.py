"""Pairwise ranking distillation in your own loop: ``distill.pairwise_distillation_loss``.

The teacher sees all 16 features of the built-in synthetic recommender; the student only the
first 4 (a misspecified student). It matches the teacher's score differences inside each group
with an L1 penalty (US 2023/0252281 Eq. 8). Run: ``python examples/ranking_pairwise.py``.
"""

import torch

import distill
from distill.data import GroupBatchSampler, split
from distill.metrics import ndcg
from distill.models import MLP

torch.manual_seed(0)
data = distill.load_builtin("synthetic_recommender", n_groups=300, noise="skewed")
train_set, test_set = split(data, (0.8, 0.2), seed=0)
student_columns = data.meta["student_features"]  # "1-4"
x_student = train_set.select_features(student_columns).features


def train(model, features, loss_fn, epochs=10):
    """AdamW over batches of whole groups; ``loss_fn(scores, batch_index)``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003)
    sampler = GroupBatchSampler(train_set.groups, groups_per_batch=16, seed=0)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for index in sampler:
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


baseline = train(MLP(4, (16,)), x_student, ranknet)
student = train(MLP(4, (16,)), x_student, pairwise_l1)

x_test = test_set.select_features(student_columns).features
with torch.no_grad():
    for name, model, x in (
        ("teacher", teacher, test_set.features),
        ("labels only", baseline, x_test),
        ("pairwise L1", student, x_test),
    ):
        value = ndcg(model(x), test_set.labels, test_set.groups, k=10)
        print(f"{name:>11}: test NDCG@10 {value:.3f}")
