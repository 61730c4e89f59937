"""GBDT teachers: raw margins equal each library's own margin prediction (the oracle)."""

import numpy as np
import pytest
import torch

from distill.teachers import (
    CatBoostTeacher,
    LightGBMTeacher,
    XGBoostTeacher,
    detect_kind,
    load_teacher,
)

lightgbm = pytest.importorskip("lightgbm")
xgboost = pytest.importorskip("xgboost")


def _data(n=300, d=6, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3]
    if classes == 2:
        y = (score + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    else:
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return x, y


def _lightgbm(path, classes=2, rounds=5):
    x, y = _data(classes=classes)
    params = {"verbose": -1, "num_leaves": 7, "min_data_in_leaf": 5, "num_threads": 1}
    params |= {"objective": "binary"} if classes == 2 else {"objective": "multiclass"}
    if classes > 2:
        params["num_class"] = classes
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=rounds)
    booster.save_model(str(path))
    return booster, x


def _xgboost(path, classes=2, rounds=5):
    x, y = _data(classes=classes)
    params = {"max_depth": 3, "nthread": 1, "base_score": 0.3}
    params |= (
        {"objective": "binary:logistic"}
        if classes == 2
        else {"objective": "multi:softprob", "num_class": classes}
    )
    booster = xgboost.train(params, xgboost.DMatrix(x, label=y), rounds)
    booster.save_model(str(path))
    return booster, x


@pytest.mark.parametrize("classes", [2, 3])
def test_lightgbm_teacher_returns_raw_scores(tmp_path, classes):
    path = tmp_path / "model.txt"
    booster, x = _lightgbm(path, classes)
    teacher = load_teacher(path)
    assert isinstance(teacher, LightGBMTeacher)
    got = teacher.predict(torch.from_numpy(x), torch.arange(len(x)))
    expected = booster.predict(x, raw_score=True)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-6)
    probabilities = booster.predict(x)  # margins, not probabilities
    assert not np.allclose(got.numpy(), probabilities, atol=1e-3)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_teacher_returns_margins(tmp_path, classes, suffix):
    path = tmp_path / f"model{suffix}"
    booster, x = _xgboost(path, classes)
    assert detect_kind(path) == "xgboost"
    teacher = load_teacher(path)
    got = teacher.predict(torch.from_numpy(x), torch.arange(len(x)))
    expected = booster.predict(xgboost.DMatrix(x), output_margin=True)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("classes", [2, 3])
def test_catboost_teacher_returns_raw_formula_values(tmp_path, classes):
    catboost = pytest.importorskip("catboost")
    x, y = _data(classes=classes)
    loss = "Logloss" if classes == 2 else "MultiClass"
    model = catboost.CatBoostClassifier(
        iterations=5,
        depth=3,
        loss_function=loss,
        verbose=0,
        thread_count=1,
        random_seed=0,
        allow_writing_files=False,
    ).fit(x, y)
    path = tmp_path / "model.cbm"
    model.save_model(str(path))
    teacher = load_teacher(path)
    assert isinstance(teacher, CatBoostTeacher)
    got = teacher.predict(torch.from_numpy(x), torch.arange(len(x)))
    expected = model.predict(x, prediction_type="RawFormulaVal")
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    size = teacher.size()
    assert size.trees == 5 and size.leaves == 5 * 2**3
    assert size.params == len(model.get_leaf_values()) + size.leaves - size.trees


def test_tree_sizes_count_the_dumped_trees(tmp_path):
    booster, _ = _lightgbm(tmp_path / "l.txt", classes=3, rounds=4)
    size = LightGBMTeacher(tmp_path / "l.txt").size()
    dump = booster.dump_model()["tree_info"]
    assert size.trees == 12 == len(dump)
    assert size.leaves == sum(tree["num_leaves"] for tree in dump)
    assert size.params == 2 * size.leaves - size.trees  # leaf values + split nodes
    assert size.size_bytes == (tmp_path / "l.txt").stat().st_size
    booster, _ = _xgboost(tmp_path / "x.json", rounds=3)
    size = XGBoostTeacher(tmp_path / "x.json").size()
    leaves = sum(tree.count("leaf=") for tree in booster.get_dump())
    splits = sum(tree.count("yes=") for tree in booster.get_dump())
    assert (size.trees, size.leaves, size.params) == (3, leaves, leaves + splits)


def test_teacher_reads_its_own_columns(tmp_path):
    _, x = _lightgbm(tmp_path / "model.txt")
    wide = np.concatenate([np.zeros((len(x), 2), np.float32), x], axis=1)
    teacher = LightGBMTeacher(tmp_path / "model.txt", feature_columns=range(2, 8))
    full = LightGBMTeacher(tmp_path / "model.txt")
    ids = torch.arange(len(x))
    assert torch.equal(
        teacher.predict(torch.from_numpy(wide), ids), full.predict(torch.from_numpy(x), ids)
    )


def test_fingerprint_follows_the_file(tmp_path):
    path = tmp_path / "model.txt"
    _lightgbm(path, rounds=3)
    first = LightGBMTeacher(path).fingerprint()
    assert first == LightGBMTeacher(path).fingerprint()
    _lightgbm(path, rounds=4)
    assert LightGBMTeacher(path).fingerprint() != first


def test_feature_count_mismatch_names_file_and_counts(tmp_path):
    _lightgbm(tmp_path / "model.txt")
    teacher = LightGBMTeacher(tmp_path / "model.txt")
    with pytest.raises(ValueError, match=r"model.txt: the LightGBM model expects 6 features, "):
        teacher.predict(torch.zeros(3, 4), torch.arange(3))
    _xgboost(tmp_path / "model.json")
    with pytest.raises(ValueError, match="the XGBoost model expects 6 features, the data gives"):
        XGBoostTeacher(tmp_path / "model.json").predict(torch.zeros(3, 9), torch.arange(3))
    with pytest.raises(TypeError, match="reads dense float features, got int64 feature ids"):
        teacher.predict(torch.zeros(3, 6, dtype=torch.int64), torch.arange(3))


def test_wrong_kind_names_expected_and_found(tmp_path):
    _lightgbm(tmp_path / "model.txt")
    _xgboost(tmp_path / "model.json")
    with pytest.raises(
        ValueError, match=r"model.txt: kind = 'xgboost' expects an XGBoost .*found a LightGBM"
    ):
        load_teacher(tmp_path / "model.txt", kind="xgboost")
    with pytest.raises(ValueError, match=r"kind = 'lightgbm' expects a LightGBM text model"):
        load_teacher(tmp_path / "model.json", kind="lightgbm")
    (tmp_path / "junk.model").write_text("not a model\n")
    with pytest.raises(ValueError, match=r"junk.model: not a LightGBM model file"):
        load_teacher(tmp_path / "junk.model", kind="lightgbm")


def test_missing_library_names_the_pip_line(tmp_path, monkeypatch):
    import sys

    _lightgbm(tmp_path / "model.txt")
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import fails as if not installed
    message = r"needs `lightgbm`, not installed: pip install 'distill\[gbdt\]'"
    with pytest.raises(ImportError, match=message):
        load_teacher(tmp_path / "model.txt")
