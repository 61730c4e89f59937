"""Layer capture against a manual forward, layer maps and their errors, the transformer model."""

import math

import pytest
import torch
from torch import nn

from distill.hooks import LayerRecorder, capture, layer_pairs, parse_layer, uniform_layer_map
from distill.models import TransformerClassifier, build


def _manual(model: TransformerClassifier, x: torch.Tensor):
    """Embedding, hidden states and attention scores recomputed from the weights by hand."""
    tokens = x.reshape(x.shape[0], 8, -1)
    emb = model.embedding
    hidden = tokens @ emb.linear.weight.T + emb.linear.bias + emb.position
    states, scores = [hidden], []
    for block in model.blocks:
        attn = block.attention
        h, d = attn.num_heads, attn.head_dim
        q, k, v = (hidden @ attn.qkv.weight.T + attn.qkv.bias).split(h * d, dim=-1)
        q, k, v = (t.reshape(x.shape[0], 8, h, d).transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / math.sqrt(d)
        scores.append(s)
        context = (s.softmax(-1) @ v).transpose(1, 2).reshape(x.shape[0], 8, h * d)
        a = block.norm1(hidden + attn.out(context))
        hidden = block.norm2(a + block.ff(a))
        states.append(hidden)
    return states, scores


def test_capture_matches_a_manual_forward():
    torch.manual_seed(0)
    student = TransformerClassifier(64, 10, d_model=16, num_layers=2, num_heads=2)
    teacher = TransformerClassifier(64, 10, d_model=32, num_layers=4, num_heads=2)
    x = torch.rand(3, 64)
    s_names, t_names = student.layer_names(), teacher.layer_names()
    with capture(
        student=student,
        teacher=teacher,
        student_layers=[s_names["embedding"], *s_names["hidden"], *s_names["attention"]],
        teacher_layers=t_names["hidden"],
    ) as captured:
        student_out, teacher_out = captured.forward(x)
    states, scores = _manual(student, x)
    torch.testing.assert_close(captured.student["embedding"], states[0])
    for i in range(2):
        torch.testing.assert_close(captured.student[f"blocks.{i}"], states[i + 1])
        torch.testing.assert_close(captured.student[f"blocks.{i}.attention.scores"], scores[i])
    teacher_states, _ = _manual(teacher, x)
    torch.testing.assert_close(captured.teacher["blocks.3"], teacher_states[4])
    assert captured.student["blocks.0"].requires_grad
    assert not captured.teacher["blocks.0"].requires_grad and not teacher_out.requires_grad
    assert student_out.shape == teacher_out.shape == (3, 10)
    assert teacher.training  # its mode is restored
    assert not teacher.blocks[0]._forward_hooks  # hooks removed on exit


def test_probs_are_the_softmax_of_the_scores():
    model = TransformerClassifier(64, 3, d_model=16, num_heads=4)
    names = ["blocks.0.attention.scores", "blocks.0.attention.probs"]
    with LayerRecorder(model, names) as recorder:
        model(torch.rand(2, 64))
    scores, probs = (recorder.get(name) for name in names)
    assert probs.shape == (2, 4, 8, 8)
    torch.testing.assert_close(probs, scores.softmax(-1))


def test_unknown_names_list_the_available_ones_with_a_did_you_mean():
    model = TransformerClassifier(64, 3, d_model=16, num_heads=4)
    with (
        pytest.raises(
            ValueError,
            match=r"student \(TransformerClassifier\) has no submodule "
            r"'block.0'; did you mean 'blocks.0'.*Available: embedding, ",
        ),
        capture(student=model, teacher=model, student_layers=["block.0"], teacher_layers=[]),
    ):
        pass
    assert not model.blocks[0]._forward_hooks


def test_tuple_items_none_and_layers_that_did_not_run():
    class Pair(nn.Module):
        def forward(self, x):
            return x + 1, None

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair, self.unused = Pair(), nn.Linear(2, 2)

        def forward(self, x):
            return self.pair(x)[0]

    net = Net()
    with LayerRecorder(net, ["pair", "pair[1]", "pair[2]", "unused"], what="teacher") as rec:
        net(torch.zeros(1, 2))
    torch.testing.assert_close(rec.get("pair"), torch.ones(1, 2))
    with pytest.raises(
        ValueError,
        match=r"teacher layer 'pair\[1\]' returned None: the module "
        "does not expose this output",
    ):
        rec.get("pair[1]")
    with pytest.raises(ValueError, match="the output has 2 items, no item 2"):
        rec.get("pair[2]")
    with pytest.raises(ValueError, match="teacher layer 'unused' produced no output"):
        rec.get("unused")
    with pytest.raises(ValueError, match=r"must be 'name' or 'name\[k\]'"):
        parse_layer("pair[x]")


def test_uniform_and_explicit_layer_maps():
    assert uniform_layer_map(2, 4) == [(1, 2), (2, 4)]
    assert uniform_layer_map(4, 12) == [(1, 3), (2, 6), (3, 9), (4, 12)]
    assert uniform_layer_map(2, 3) == [(1, 1), (2, 3)]
    assert layer_pairs("uniform", 3, 3) == [(1, 1), (2, 2), (3, 3)]
    assert layer_pairs([[2, 1], [1, 4]], 2, 4) == [(2, 1), (1, 4)]


@pytest.mark.parametrize(
    ("layer_map", "student", "teacher", "message"),
    [
        ("uniform", 4, 2, "needs num_student <= num_teacher, got 4 > 2"),
        ([[1, 1], [2, 2], [3, 3]], 3, 2, r"1 to min\(student, teacher\) = 2 pairs .* got 3"),
        ([[1, 1], [2, 2], [3, 3]], 2, 4, r"1 to min\(student, teacher\) = 2 pairs .* got 3"),
        ([[1, 5]], 2, 4, r"pair \(1, 5\) is out of range: student layers are 1..2, teacher"),
        ([[0, 1]], 2, 4, r"pair \(0, 1\) is out of range"),
        ([[1, 1], [1, 2]], 2, 4, "lists a student layer twice"),
        ([[1]], 2, 4, r"entries must be \[student_layer, teacher_layer\], got \[1\]"),
        ("every", 2, 4, "must be 'uniform' or a list of pairs, got 'every'"),
    ],
)
def test_layer_map_errors(layer_map, student, teacher, message):
    with pytest.raises(ValueError, match=message):
        layer_pairs(layer_map, student, teacher)


def test_transformer_builds_from_its_spec_and_rejects_bad_sizes():
    model = TransformerClassifier(64, 10, d_model=32, num_layers=3, num_heads=4)
    copy = build(model.spec())
    copy.load_state_dict(model.state_dict())
    x = torch.rand(2, 64)
    torch.testing.assert_close(copy(x), model(x))
    assert TransformerClassifier(64, 1)(x).shape == (2,)
    with pytest.raises(ValueError, match=r"`in_features` \(60\) must be divisible by `seq_len`"):
        TransformerClassifier(60, 3)
    with pytest.raises(ValueError, match=r"`d_model` \(30\) must be divisible by `num_heads`"):
        TransformerClassifier(64, 3, d_model=30, num_heads=4)


def test_hugging_face_layers_are_captured_by_name():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=20,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    bert = transformers.BertModel(config).eval()
    ids = torch.randint(0, 20, (2, 6))
    names = ["encoder.layer.1", "encoder.layer.0.attention.self[1]"]
    with LayerRecorder(bert, names) as recorder:
        out = bert(input_ids=ids, output_hidden_states=True, output_attentions=True)
    torch.testing.assert_close(recorder.get(names[0]), out.hidden_states[2])
    torch.testing.assert_close(recorder.get(names[1]), out.attentions[0])
