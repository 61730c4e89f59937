"""Joint CTR training with dynamic distillation in your own loop (docs/formulas.md#binary-kd).

One model: shared embeddings, a deep teacher tower and a small Wide & Deep student tower. Each
step the teacher learns the clicks and the student learns ``distill.binary_kd_loss`` =
W·H(σ(teacher/T), σ(student)) + (1 − W)·H(click, σ(student)) from the *concurrent* teacher
(detached). After training only ``joint.student()`` is served. Compared with the same student
trained alone on clicks.

The clicks depend on crosses of field values (``synthetic_ctr``). The student's deep part has
2 units, so on its own it can hardly cross fields; the teacher tower can, and through the
shared embeddings it helps the joint student. T = 1: at T > 1 without a tempered student the
student learns flattened click rates (worse log loss). One seed, one split: the paired result
over 5 seeds is in ``distill demo``'s CTR track. Run: ``python examples/ctr_joint.py``; it
prints test AUC of about 0.787 (teacher tower), 0.767 (student alone) and 0.773 (joint
student), with a lower log loss for the joint student.
"""

import torch
import torch.nn.functional as F

import distill
from distill.data import split
from distill.metrics import auc, nll
from distill.models import WideAndDeep, ctr_joint_model

torch.manual_seed(0)
data = distill.load_builtin(
    "synthetic_ctr", n_rows=80_000, fields=8, cardinality=30, click_rate=0.3
)
train_set, test_set = split(data, (0.8, 0.2), seed=0)
ids, clicks = train_set.features, train_set.labels


def train(model, loss_fn, steps=1000):
    """AdamW on random batches of 256 rows; ``loss_fn(outputs, clicks)``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
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
        student_logit, teacher_logit.detach(), y, temperature=1.0, soft_weight=0.5
    )
    return teacher_loss + student_loss


sizes = (data.num_embeddings, ids.shape[1])
joint = train(
    ctr_joint_model(*sizes, embed_dim=8, student_hidden=(2,), teacher_hidden=(256, 128, 64)),
    joint_loss,
)
torch.manual_seed(0)
alone = train(WideAndDeep(*sizes, embed_dim=8, hidden=(2,)), F.binary_cross_entropy_with_logits)

with torch.no_grad():
    for name, model in (
        ("teacher tower", joint.teacher()),
        ("student alone", alone),
        ("joint student", joint.student()),
    ):
        logits = model(test_set.features)
        print(
            f"{name:>13}: test AUC {auc(logits, test_set.labels):.4f}, "
            f"log loss {nll(logits, test_set.labels):.4f}"
        )
