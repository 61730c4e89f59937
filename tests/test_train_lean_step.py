"""The lean training step: ``fit`` equals a hand-written AdamW loop bit for bit, and the
offline-teacher shortcut (cached logits gathered per row) equals asking the cache per batch."""

import torch
import torch.nn.functional as F

from distill import teachers
from distill.data import Dataset
from distill.models import MLP
from distill.train import KDTerm, LabelsTerm, Objective, TrainOptions, fit
from distill.train.batches import global_batches
from distill.train.schedule import warmup_cosine

OPTIONS = dict(
    epochs=2, batch_size=32, lr=1e-2, warmup_steps=3, grad_clip=0.5, seed=0, progress=False
)


def data(rows=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(rows, 6, generator=gen)
    labels = (features[:, 0] > 0).long() + (features[:, 1] > 0).long()
    return Dataset(features, labels)


def trained(train, objective, teacher=None, **options):
    torch.manual_seed(0)
    model = MLP(6, (8,), 3)
    fit(
        model,
        train,
        objective=objective,
        options=TrainOptions(**{**OPTIONS, **options}),
        teacher=teacher,
    )
    return model


def test_fit_equals_a_hand_written_adamw_loop_bit_for_bit():
    train = data()
    model = trained(train, Objective([LabelsTerm("ce")]), log_every=3)
    torch.manual_seed(0)
    reference = MLP(6, (8,), 3)
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2)  # default implementation
    epochs = [
        global_batches(train, batch_size=32, groups_per_batch=None, seed=0, epoch=e)
        for e in range(2)
    ]
    schedule = warmup_cosine(optimizer, warmup_steps=3, total_steps=sum(map(len, epochs)))
    for index in (index for batches in epochs for index in batches):
        loss = F.cross_entropy(reference(train.features[index]), train.labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        optimizer.step()
        schedule.step()
    for name, value in model.state_dict().items():
        assert torch.equal(value, reference.state_dict()[name]), name


class PerBatchCache:
    """The same cached scores, asked per batch (not recognised as a cache by ``fit``)."""

    def __init__(self, cache):
        self.cache = cache

    def predict(self, features, ids):
        return self.cache.predict(features, ids)


def test_cached_logits_gathered_per_row_equal_per_batch_lookups(tmp_path):
    train = data(seed=1)
    torch.manual_seed(1)
    teacher = teachers.ModuleTeacher(MLP(6, (16,), 3))
    shard = teachers.score(teacher, train, tmp_path)
    cache = teachers.CachedScores(shard.parent, train, teacher=teacher)
    objective = Objective([KDTerm(temperature=2.0, alpha=0.7)])
    gathered = trained(train, objective, cache)
    per_batch = trained(train, objective, PerBatchCache(cache))
    for name, value in gathered.state_dict().items():
        assert torch.equal(value, per_batch.state_dict()[name]), name


def test_logged_values_are_plain_numbers(tmp_path):
    train = data()
    torch.manual_seed(0)
    result = fit(
        MLP(6, (8,), 3),
        train,
        objective=Objective([LabelsTerm("ce")]),
        options=TrainOptions(**{**OPTIONS, "log_every": 4}),
        run_dir=tmp_path,
    )
    assert all(type(value) is float for value in result.last_train.values())
    assert set(result.last_train) == {"loss", "loss/labels", "grad_norm", "lr"}
