"""Joint CTR training with dynamic distillation in your own loop (docs/formulas.md#binary-kd).

One model: shared embeddings, a deep teacher tower and a small Wide & Deep student tower. Each
step the teacher learns the clicks and the student learns ``distill.binary_kd_loss`` =
W·H(σ(teacher/T), σ(student)) + (1 − W)·H(click, σ(student)) from the *concurrent* teacher
(detached). After training only ``joint.student()`` is served. Compared with the same student
trained alone on clicks. Run: ``python examples/ctr_joint.py``.
"""

import torch
import torch.nn.functional as F

import distill
from distill.data import split
from distill.metrics import auc
from distill.models import WideAndDeep, ctr_joint_model

torch.manual_seed(0)
data = distill.load_builtin("synthetic_ctr", n_rows=40_000, fields=8, click_rate=0.1)
train_set, test_set = split(data, (0.8, 0.2), seed=0)
ids, clicks = train_set.features, train_set.labels


def train(model, loss_fn, steps=1500):
    """AdamW on random batches of 256 rows; ``loss_fn(outputs, clicks)``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003)
    for _ in range(steps):
        index = torch.randint(len(ids), (256,))
        loss = loss_fn(model(ids[index]), clicks[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def joint_loss(outputs, y):
    teacher_logit, student_logit = outputs
    teacher_loss = F.binary_cross_entropy_with_logits(teacher_logit, y)
    student_loss = distill.binary_kd_loss(
        student_logit, teacher_logit.detach(), y, temperature=2.0, soft_weight=0.5
    )
    return teacher_loss + student_loss


sizes = (data.num_embeddings, ids.shape[1])
joint = train(
    ctr_joint_model(*sizes, embed_dim=8, student_hidden=(8,), teacher_hidden=(128, 64)), joint_loss
)
alone = train(WideAndDeep(*sizes, embed_dim=8, hidden=(8,)), F.binary_cross_entropy_with_logits)

with torch.no_grad():
    for name, model in (
        ("teacher tower", joint.teacher()),
        ("student alone", alone),
        ("joint student", joint.student()),
    ):
        print(f"{name:>13}: test AUC {auc(model(test_set.features), test_set.labels):.4f}")
