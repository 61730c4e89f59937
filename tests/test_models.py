import pytest
import torch
from torch import nn

from distill.models import (
    MLP,
    DeepCTRTower,
    DeepTower,
    FieldEmbedding,
    JointModel,
    StackedModel,
    WideAndDeep,
    WideAndDeepTower,
    count_parameters,
    ctr_joint_model,
    size_bytes,
)


def _manual_mlp(model: MLP, x: torch.Tensor) -> torch.Tensor:
    """Independent forward: explicit matrix products over the Linear weights (ReLU, no norm)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    h = x
    for layer in linears[:-1]:
        h = torch.clamp(h @ layer.weight.T + layer.bias, min=0)
    return h @ linears[-1].weight.T + linears[-1].bias


def test_mlp_matches_manual_forward_and_shapes():
    model = MLP(5, hidden=(7, 3), out_features=4)
    x = torch.randn(6, 5)
    torch.testing.assert_close(model(x), _manual_mlp(model, x))
    assert model.forward_features(x).shape == (6, 3)
    assert model.num_features == 3 and model.head.out_features == 4


def test_mlp_scorer_squeezes_and_head_is_last_layer():
    model = MLP(5, hidden=(8,))
    x = torch.randn(4, 5)
    assert model(x).shape == (4,)
    h = model.forward_features(x)
    torch.testing.assert_close(model(x), h @ model.head.weight[0] + model.head.bias[0])


def test_mlp_without_hidden_is_linear():
    model = MLP(3, hidden=())
    assert model.num_features == 3 and count_parameters(model) == 4


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh"])
def test_mlp_options_run_and_backprop(norm, activation):
    model = MLP(4, hidden=(6, 6), out_features=2, norm=norm, activation=activation, dropout=0.2)
    model(torch.randn(8, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_mlp_gradcheck_float64():
    model = MLP(3, hidden=(4,), activation="tanh").double()
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 0}, ValueError, r"`in_features` must be >= 1, got 0"),
        ({"in_features": 3, "hidden": (4, 0)}, ValueError, r"`hidden` must be >= 1, got 0"),
        ({"in_features": 3, "hidden": 4}, TypeError, r"`hidden` must be a sequence"),
        ({"in_features": 3, "dropout": 1.0}, ValueError, r"`dropout` must be in \[0, 1\), got 1"),
        ({"in_features": 3, "norm": "group"}, ValueError, r"`norm` must be one of"),
        ({"in_features": 3, "activation": "elu"}, ValueError, r"`activation` must be one of"),
    ],
)
def test_mlp_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        MLP(**kwargs)


def test_mlp_rejects_bad_input():
    model = MLP(3)
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 3\), got \(2, 4\)"):
        model(torch.randn(2, 4))
    with pytest.raises(TypeError, match="`x` must be a floating-point tensor"):
        model(torch.ones(2, 3, dtype=torch.int64))


def test_deep_tower_is_bigger_teacher_default():
    teacher, student = DeepTower(10, out_features=3), MLP(10, out_features=3)
    assert count_parameters(teacher) > 10 * count_parameters(student)
    assert teacher.spec()["name"] == "DeepTower"
    assert teacher(torch.randn(2, 10)).shape == (2, 3)


def test_count_parameters_and_size_bytes():
    model = MLP(4, hidden=(8,), norm="batch")
    # linear 4·8+8, batchnorm 8+8, head 8+1
    assert count_parameters(model) == 40 + 16 + 9
    model.head.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 56
    buffers = 8 * 4 + 8 * 4 + 8  # running mean, var (float32), num_batches_tracked (int64)
    assert size_bytes(model) == 65 * 4 + buffers
    assert size_bytes(model.half()) == 65 * 2 + 8 * 2 * 2 + 8


def test_field_embedding_padding_values_and_validation():
    bottom = FieldEmbedding(10, 3, embed_dim=4)
    ids = torch.tensor([[1, 0, 9], [2, 2, 0]])
    values = torch.tensor([[0.5, 3.0, 1.0], [1.0, 2.0, 7.0]])
    out = bottom(ids, values)
    table = bottom.embedding.weight
    torch.testing.assert_close(out.vectors[0, 0], 0.5 * table[1])
    torch.testing.assert_close(out.vectors[1, 1], 2.0 * table[2])
    assert torch.all(out.vectors[0, 1] == 0) and torch.all(out.vectors[1, 2] == 0)
    assert out.values[0, 1] == 0
    with pytest.raises(ValueError, match=r"`ids` must be in \[0, 10\), got values in \[1, 10\]"):
        bottom(torch.tensor([[1, 2, 10]]))
    with pytest.raises(TypeError, match="`ids` must be an int64 tensor, got torch.float32"):
        bottom(torch.ones(1, 3))
    with pytest.raises(ValueError, match=r"`ids` must have shape \(N, 3\), got \(1, 2\)"):
        bottom(torch.ones(1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"`values` must have shape \(2, 3\), got \(2, 2\)"):
        bottom(ids, values[:, :2])
    with pytest.raises(ValueError, match="`dense` was given but the model has dense_features=0"):
        bottom(ids, None, torch.ones(2, 1))


def test_wide_and_deep_matches_manual_formula():
    model = WideAndDeep(12, 2, embed_dim=3, hidden=(5,), dense_features=2)
    with torch.no_grad():
        model.tower.wide.weight.normal_()
        model.tower.wide.weight[0] = 0
        model.tower.bias.fill_(0.3)
    ids = torch.tensor([[3, 0], [11, 4]])
    values = torch.tensor([[2.0, 1.0], [1.0, 0.5]])
    dense = torch.randn(2, 2)
    table, wide = model.bottom.embedding.weight, model.tower.wide.weight[:, 0]
    deep_in = torch.cat([(table[ids] * values[..., None]).flatten(1), dense], dim=1)
    expected = (
        0.3
        + (wide[ids] * values).sum(1)
        + dense @ model.tower.wide_dense.weight[0]
        + model.tower.wide_dense.bias
        + _manual_mlp(model.tower.deep, deep_in)[:, 0]
    )
    torch.testing.assert_close(model(ids, values, dense), expected)
    with pytest.raises(ValueError, match="`dense` is required: the model has dense_features=2"):
        model(ids, values)


def test_deep_ctr_tower_shape_and_gradients_reach_embeddings():
    bottom, tower = FieldEmbedding(20, 4), DeepCTRTower(4, hidden=(16, 8))
    out = tower(bottom(torch.randint(1, 20, (5, 4))))
    assert out.shape == (5,)
    out.sum().backward()
    assert bottom.embedding.weight.grad.abs().sum() > 0


def test_joint_model_forward_and_student_has_no_teacher_weights():
    joint = ctr_joint_model(50, 3, embed_dim=4, student_hidden=(8,), teacher_hidden=(32, 16))
    ids = torch.randint(0, 50, (6, 3))
    teacher_logit, student_logit = joint(ids)
    student = joint.student()
    assert isinstance(student, StackedModel)
    torch.testing.assert_close(student(ids), student_logit)
    torch.testing.assert_close(joint.teacher()(ids), teacher_logit)
    teacher_params = {id(p) for p in joint.teacher_tower.parameters()}
    assert not teacher_params & {id(p) for p in student.parameters()}
    assert count_parameters(student) == count_parameters(joint) - count_parameters(
        joint.teacher_tower
    )
    reference = WideAndDeep(50, 3, embed_dim=4, hidden=(8,))
    assert reference.state_dict().keys() == student.state_dict().keys()


def test_joint_model_generic_parts_and_shared_bottom_gets_both_gradients():
    joint = JointModel(MLP(6, (8,), 4), MLP(4, (16,)), MLP(4, ()))
    teacher_logit, student_logit = joint(torch.randn(3, 6))
    teacher_logit.sum().backward(retain_graph=True)
    grad_from_teacher = joint.shared_bottom.head.weight.grad.clone()
    assert joint.student_tower.head.weight.grad is None
    student_logit.sum().backward()
    assert not torch.equal(joint.shared_bottom.head.weight.grad, grad_from_teacher)


def test_spec_of_composite_requires_part_specs():
    model = StackedModel(nn.Linear(3, 2), MLP(2))
    with pytest.raises(TypeError, match=r"`bottom` \(Linear\) has no spec\(\)"):
        model.spec()


def test_wide_and_deep_tower_spec_round_trips_kwargs():
    tower = WideAndDeepTower(30, 2, embed_dim=4, hidden=(6,), dense_features=1, norm="layer")
    assert tower.spec() == {
        "name": "WideAndDeepTower",
        "kwargs": {
            "num_embeddings": 30,
            "num_fields": 2,
            "embed_dim": 4,
            "hidden": [6],
            "dense_features": 1,
            "dropout": 0.0,
            "norm": "layer",
        },
    }


def test_wide_and_deep_exports_with_dynamic_batch():
    model = WideAndDeep(30, 3, hidden=(4,)).eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        model, (torch.randint(0, 30, (4, 3)),), dynamic_shapes={"ids": {0: batch}}
    )
    ids = torch.randint(0, 30, (9, 3))
    torch.testing.assert_close(program.module()(ids), model(ids))
