"""Bad input to the public API, one row per kind: the call, the exception type, the message.

Kinds: stale or edited teacher scores, import paths without trust, run folders in use, path
traversal in names, infinite or boolean config numbers, non-UTF-8 configs, NaN/inf and empty
loss inputs, a NaN feature during ``fit``, out-of-range ``dim``, empty quantiles, non-finite
G-SmeLU parameters, NDCG without any relevant item, CUDA without a GPU.
"""

import math
import os

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from distill import metrics, models
from distill.config import ConfigError, load_config
from distill.data import Dataset
from distill.experiment.run_folder import RunLockedError, run_lock
from distill.losses import (
    binary_kd_loss,
    kd_loss,
    logit_matching_loss,
    pointwise_distillation_loss,
)
from distill.penalties import gsmelu
from distill.ranking.losses import pairwise_distillation_loss
from distill.ranking.quantile_losses import quantile_ranking_loss
from distill.teachers import CachedScores, ModuleTeacher, StaleCacheError, score
from distill.temperature import log_softmax_t, softmax_t
from distill.train import KDTerm, LabelsTerm, NonFiniteLossError, Objective, TrainOptions, fit
from distill.train.distributed import setup_distributed

CONFIG = os.path.join(os.path.dirname(__file__), "..", "examples", "classification.toml")
NAN, INF = math.nan, math.inf


def _with(values, index, value):
    values = torch.tensor(values, dtype=torch.float32)
    values[index] = value
    return values


def _logits(rows=4, classes=3):
    return torch.randn(rows, classes, generator=torch.Generator().manual_seed(0))


def _stale_cache(tmp_path):
    data = Dataset(features=torch.rand(6, 4), labels=torch.zeros(6))
    torch.manual_seed(0)
    old, new = ModuleTeacher(torch.nn.Linear(4, 1)), ModuleTeacher(torch.nn.Linear(4, 1))
    score(old, data, tmp_path)
    CachedScores(tmp_path, data, teacher=new)


def _locked(tmp_path):
    (tmp_path / "run.lock").write_text(f'{{"pid": {os.getpid()}, "host": "{os.uname()[1]}"}}')
    with run_lock(tmp_path):
        pass


def _non_utf8(tmp_path):
    path = tmp_path / "run.toml"
    path.write_bytes(b'[run]\nname = "caf\xe9"\n')
    load_config(path)


def _nan_feature_fit(tmp_path):
    features = torch.rand(16, 4)
    features[5, 2] = NAN
    data = Dataset(features=features, labels=torch.randint(0, 3, (16,)))
    options = TrainOptions(max_steps=3, batch_size=16, log_every=1, progress=False, device="cpu")
    fit(
        models.MLP(4, out_features=3),
        data,
        objective=Objective([LabelsTerm("ce")]),
        options=options,
    )


def _nan_teacher_fit(tmp_path):
    class NaNTeacher:
        def predict(self, features, ids):
            logits = torch.zeros(len(ids), 3)
            logits[-1, 0] = NAN
            return logits

    data = Dataset(features=torch.rand(16, 4), labels=torch.randint(0, 3, (16,)))
    options = TrainOptions(max_steps=3, batch_size=8, progress=False, device="cpu")
    objective = Objective([KDTerm(temperature=2.0)])
    fit(
        models.MLP(4, out_features=3),
        data,
        objective=objective,
        options=options,
        teacher=NaNTeacher(),
    )


def _config(*overrides):
    return lambda tmp_path: load_config(CONFIG, overrides=list(overrides))


def _call(function, *args, **kwargs):
    return lambda tmp_path: function(*args, **kwargs)


GROUP = torch.zeros(4, dtype=torch.int64)
CASES = [
    # stale or damaged inputs
    (
        "stale teacher",
        _stale_cache,
        StaleCacheError,
        r"stale cache .*: teacher \w{16} \(cache\) != ",
    ),
    # code from files needs trust
    (
        "import path",
        _call(models.build, {"name": "os:path", "kwargs": {}}),
        ValueError,
        r"model 'os:path' is an import path, .*trust=True \(CLI: --trust\)",
    ),
    ("run folder in use", _locked, RunLockedError, r"is in use by another distill run \(pid \d+"),
    # config values
    ("run.name ..", _config("run.name='..'"), ConfigError, r"run.name: must be a single folder"),
    (
        "variant ..",
        _config("variants.1.name='..'"),
        ConfigError,
        r"variants.1.name: must be a single folder name",
    ),
    ("lr inf", _config("train.lr=inf"), ConfigError, r"train.lr: must be in \(0, inf\), got inf"),
    (
        "temperature inf",
        _config("variants.1.objective.kd.temperature=inf"),
        ConfigError,
        r"kd.temperature: must be in \(0, inf\), got inf",
    ),
    (
        "epochs true",
        _config("train.epochs=true"),
        ConfigError,
        r"train.epochs: input should be a valid integer, got True",
    ),
    ("bf16 1", _config("train.bf16=1"), ConfigError, r"train.bf16: input should be a valid bool"),
    ("non-UTF-8 config", _non_utf8, ConfigError, r"run.toml: line 2: not UTF-8 text \(byte 0xe9"),
    (
        "TrainOptions lr inf",
        _call(TrainOptions, lr=INF),
        ValueError,
        r"`lr` must be in \(0, inf\), got inf",
    ),
    # NaN/inf and empty loss inputs: the argument and the first bad index are named
    (
        "kd_loss NaN teacher",
        _call(
            kd_loss,
            _logits(),
            _logits().index_put_((torch.tensor(2), torch.tensor(1)), torch.tensor(NAN)),
        ),
        ValueError,
        r"`teacher_logits` must be finite \(-inf allowed\), got 1 NaN/inf value\(s\), "
        r"first at index \(2, 1\)",
    ),
    (
        "kd_loss inf student",
        _call(
            kd_loss,
            _logits().index_put_((torch.tensor(0), torch.tensor(0)), torch.tensor(INF)),
            _logits(),
        ),
        ValueError,
        r"`student_logits` must be finite, got 1 NaN/inf value\(s\), first at index \(0, 0\)",
    ),
    (
        "kd_loss empty",
        _call(kd_loss, torch.empty(0, 3), torch.empty(0, 3)),
        ValueError,
        r"`student_logits` must be non-empty, got shape \(0, 3\)",
    ),
    (
        "binary_kd_loss NaN student",
        _call(binary_kd_loss, _with([0.0, 1.0, 2.0], 1, NAN), torch.zeros(3)),
        ValueError,
        r"`student_logits` must be finite, .*first at index \(1,\)",
    ),
    (
        "binary_kd_loss NaN label",
        _call(binary_kd_loss, torch.zeros(3), torch.zeros(3), _with([0.0, 1.0, 1.0], 2, NAN)),
        ValueError,
        r"`target` must be finite, .*first at index \(2,\)",
    ),
    (
        "binary_kd_loss empty",
        _call(binary_kd_loss, torch.empty(0), torch.empty(0)),
        ValueError,
        r"`student_logits` must be non-empty, got shape \(0,\)",
    ),
    (
        "logit_matching_loss inf teacher",
        _call(logit_matching_loss, torch.zeros(3), _with([0.0, 0.0, 0.0], 0, -INF)),
        ValueError,
        r"`teacher_logits` must be finite, .*first at index \(0,\)",
    ),
    (
        "logit_matching_loss empty",
        _call(logit_matching_loss, torch.empty(0, 2), torch.empty(0, 2)),
        ValueError,
        r"`student_logits` must be non-empty",
    ),
    (
        "pointwise NaN teacher",
        _call(
            pointwise_distillation_loss, torch.zeros(3), _with([1, 2, 3], 2, NAN), penalty="huber"
        ),
        ValueError,
        r"`teacher` must be finite, .*first at index \(2,\)",
    ),
    (
        "pointwise empty",
        _call(pointwise_distillation_loss, torch.empty(0), torch.empty(0), penalty="squared"),
        ValueError,
        r"`student` must be non-empty",
    ),
    (
        "pairwise NaN (the same wording)",
        _call(
            pairwise_distillation_loss,
            _with([0, 1, 2, 3], 3, NAN),
            torch.zeros(4),
            GROUP,
            penalty="squared",
        ),
        ValueError,
        r"`student_scores` must be finite, .*first at index \(3,\)",
    ),
    (
        "fit NaN feature",
        _nan_feature_fit,
        NonFiniteLossError,
        r"^step 1: loss/labels is nan \(loss = nan\); look for NaN/inf in the features",
    ),
    (
        "fit NaN teacher score",
        _nan_teacher_fit,
        NonFiniteLossError,
        r"^step 1: `teacher_logits` must be finite .*first at index \(7, 0\); look for NaN",
    ),
    # smaller ones
    (
        "softmax_t dim",
        _call(softmax_t, _logits(), 2.0, dim=5),
        ValueError,
        r"`dim` must be in \[-2, 1\] .*got 5",
    ),
    (
        "log_softmax_t dim",
        _call(log_softmax_t, _logits(), 2.0, dim=-3),
        ValueError,
        r"`dim` must be in",
    ),
    (
        "quantile taus empty",
        _call(quantile_ranking_loss, torch.zeros(4, 0), torch.zeros(4), GROUP, taus=[]),
        ValueError,
        r"`taus` must hold at least one quantile, got \[\]",
    ),
    (
        "gsmelu infinite slope",
        _call(gsmelu, torch.zeros(2), alpha=1.0, beta=1.0, g_minus=0.0, g_plus=INF),
        ValueError,
        r"`g_plus` must be in \(-inf, inf\), got inf",
    ),
    (
        "gsmelu center without a minimum",
        _call(gsmelu, torch.zeros(2), alpha=1.0, beta=1.0, g_minus=0.5, g_plus=1.0, center=True),
        ValueError,
        r"`center=True` needs g_minus <= 0 <= g_plus",
    ),
    (
        "ndcg without relevant items",
        _call(metrics.ndcg, torch.rand(4), torch.zeros(4), torch.tensor([0, 0, 1, 1])),
        ValueError,
        r"ndcg is undefined: none of the 2 group\(s\) has a relevant item",
    ),
]
if not torch.cuda.is_available():
    CASES.append(
        (
            "cuda without a GPU",
            _call(setup_distributed, "cuda"),
            ValueError,
            r"`device` is 'cuda' but torch finds no CUDA GPU",
        )
    )


@pytest.mark.parametrize(("kind", "call", "error", "match"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_clearly(tmp_path, kind, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path)


def test_kd_loss_accepts_minus_inf_teacher_logits_of_ruled_out_classes():
    teacher = torch.tensor([[2.0, 0.0, -INF]])
    got = kd_loss(torch.tensor([[1.0, 0.5, 0.0]]), teacher, temperature=1.0, scale_t2=False)
    p = torch.tensor([math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)])
    q = torch.log_softmax(torch.tensor([1.0, 0.5, 0.0]), 0)[:2]
    assert got.item() == pytest.approx(float((p * (p.log() - q)).sum()), rel=1e-6)


def test_ndcg_skips_groups_without_relevant_items_like_the_mean_of_sklearn_over_the_rest():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(6), 5)
    labels = rng.integers(0, 3, len(groups))
    labels[groups == 2] = 0  # no relevant item: skipped
    labels[groups == 4] = 0
    scores = rng.normal(size=len(groups))
    expected = np.mean(
        [
            ndcg_score(labels[groups == g][None], scores[groups == g][None], k=3)
            for g in range(6)
            if labels[groups == g].any()
        ]
    )
    result = metrics.ndcg_per_group(
        torch.tensor(scores), torch.tensor(labels), torch.tensor(groups), k=3, gain="linear"
    )
    assert result.n_groups == 4 and result.n_excluded == 2
    got = metrics.ndcg(
        torch.tensor(scores), torch.tensor(labels), torch.tensor(groups), k=3, gain="linear"
    )
    assert got == pytest.approx(expected, abs=1e-12)


def test_a_non_finite_loss_stops_before_its_checkpoint(tmp_path):
    features = torch.rand(16, 4)
    features[5, 2] = NAN
    data = Dataset(features=features, labels=torch.randint(0, 3, (16,)))
    options = TrainOptions(
        max_steps=6, batch_size=16, log_every=3, checkpoint_every=2, progress=False, device="cpu"
    )
    with pytest.raises(NonFiniteLossError, match=r"^step 2: loss/labels is nan"):
        fit(
            models.MLP(4, out_features=3),
            data,
            objective=Objective([LabelsTerm("ce")]),
            options=options,
            run_dir=tmp_path,
        )
    assert not (tmp_path / "checkpoints" / "student" / "last.pt").exists()


def test_finite_inputs_whose_sum_overflows_pass():
    from distill._validation import check_loss_inputs

    huge = torch.full((4,), 3e38)
    check_loss_inputs({"student": huge, "teacher": huge})  # the sum is inf, every entry finite
    with pytest.raises(ValueError, match=r"`teacher` must be finite, .*first at index \(3,\)"):
        check_loss_inputs({"student": huge, "teacher": _with([1, 2, 3, 4], 3, -INF)})
