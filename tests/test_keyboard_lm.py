"""The keyboard example's pieces: the synthetic next-token data and the NextTokenLM model."""

import numpy as np
import pytest
import torch

from distill import models
from distill.data import load_builtin, synthetic_text
from distill.models import NextTokenLM


def test_data_layout_and_seed():
    data = synthetic_text(500, vocab_size=20, context=3, seed=4, stream_length=50)
    assert data.features.shape == (500, 3) and data.features.dtype == torch.int64
    assert data.num_embeddings == 20 and data.meta["num_classes"] == 20
    assert data.feature_names == ["t-3", "t-2", "t-1"]
    assert data.features.max() < 20 and data.labels.max() < 20
    # each stream starts from boundary tokens, and the window slides by one token
    assert torch.equal(data.features[0], torch.zeros(3, dtype=torch.long))
    assert torch.equal(data.features[1, :2], torch.zeros(2, dtype=torch.long))
    assert torch.equal(data.features[1:49, -1], data.labels[:48])
    assert torch.equal(data.features[50], torch.zeros(3, dtype=torch.long))
    again = load_builtin("synthetic_text", n_rows=500, vocab_size=20, context=3, seed=4)
    assert torch.equal(again.labels[:10], synthetic_text(500, 20, 3, 4).labels[:10])
    assert not torch.equal(
        synthetic_text(500, 20, 3, 5).labels, synthetic_text(500, 20, 3, 4).labels
    )


@pytest.mark.parametrize(("weight", "column"), [(0.0, -1), (1.0, -2)])
def test_a_steep_law_makes_the_next_token_a_function_of_one_earlier_token(weight, column):
    data = synthetic_text(3000, 30, 3, seed=0, zipf_exponent=60.0, order2_weight=weight)
    seen: dict[int, set[int]] = {}
    for previous, label in zip(
        data.features[:, column].tolist(), data.labels.tolist(), strict=True
    ):
        seen.setdefault(previous, set()).add(label)
    assert all(len(labels) == 1 for labels in seen.values())


def test_successor_frequencies_follow_the_zipf_law():
    exponent, vocab = 1.5, 16
    data = synthetic_text(60_000, vocab, 2, seed=1, zipf_exponent=exponent, order2_weight=0.0)
    counts = np.zeros((vocab, vocab))
    np.add.at(counts, (data.features[:, -1].numpy(), data.labels.numpy()), 1)
    by_rank = np.sort(counts, axis=1)[:, ::-1].sum(0) / counts.sum()
    law = np.arange(1, vocab + 1, dtype=float) ** -exponent
    np.testing.assert_allclose(by_rank[:3], (law / law.sum())[:3], atol=0.01)


def test_bad_data_options_name_the_argument():
    with pytest.raises(ValueError, match=r"`vocab_size` must be >= 2, got 1"):
        synthetic_text(10, vocab_size=1)
    with pytest.raises(ValueError, match=r"`order2_weight` must be in \[0, 1\], got 1.5"):
        synthetic_text(10, order2_weight=1.5)


def test_model_matches_a_numpy_forward_and_rebuilds_from_its_spec():
    torch.manual_seed(0)
    model = NextTokenLM(12, 3, 12, embedding_dim=4, hidden=(5,)).eval()
    tokens = torch.randint(0, 12, (6, 3))
    p = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    window = p["embedding.weight"][tokens.numpy()].reshape(6, 12)
    hidden = np.tanh(window @ p["body.0.weight"].T + p["body.0.bias"])
    projected = hidden @ p["project.weight"].T + p["project.bias"]
    logits = projected @ p["head.weight"].T + p["head.bias"]
    np.testing.assert_allclose(model(tokens).detach().numpy(), logits, atol=1e-5)
    rebuilt = models.build(model.spec())
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt.eval()(tokens), model(tokens))


def test_model_refuses_a_vocabulary_mismatch_and_float_inputs():
    with pytest.raises(
        ValueError, match=r"`out_features` must equal `num_embeddings` \(12\).*got 10"
    ):
        NextTokenLM(12, 3, 10)
    with pytest.raises(TypeError, match=r"`tokens` must be int64 token ids"):
        NextTokenLM(12, 3, 12)(torch.zeros(2, 3))
