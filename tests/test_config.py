"""Run-config schema, overrides, error lines and the TOML writer."""

from pathlib import Path

import pytest
import tomllib

from distill.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    config_to_toml,
    load_config,
    parse_config,
    write_config,
)

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))


def _raw() -> dict:
    return {
        "run": {"name": "t", "track": "ranking"},
        "data": {"source": "builtin", "name": "synthetic_recommender"},
        "teacher": {"model": {"name": "MLP", "kwargs": {"hidden": [8]}}},
        "student": {"model": {"name": "MLP"}},
        "variants": [
            {"name": "labels", "objective": {"labels": {}}},
            {"name": "l2", "objective": {"pairwise": {"penalty": "squared"}}},
        ],
    }


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return "\n".join(info.value.lines)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load_and_round_trip_through_toml(path):
    cfg = load_config(path)
    assert parse_config(tomllib.loads(config_to_toml(cfg))) == cfg


def test_defaults_metric_and_baseline():
    cfg = parse_config(_raw())
    assert cfg.metric == "ndcg@10"
    assert cfg.baseline == "labels"
    assert cfg.run.directory == Path("runs/t")
    assert list(cfg.variants[1].objective.terms()) == ["pairwise"]
    assert cfg.variants[1].objective.uses_teacher
    assert not cfg.variants[0].objective.uses_teacher


def test_out_of_range_value_is_reported_with_its_dotted_path():
    raw = _raw()
    raw["variants"][1]["objective"]["pairwise"]["penalty"] = {"name": "huber", "beta": -1.0}
    assert "variants.1.objective.pairwise.penalty.beta: must be in (0, inf), got -1" in _error(raw)


def test_error_paths_are_the_paths_set_accepts():
    raw = _raw()
    raw["variants"][1]["objective"]["pairwise"]["penalty"] = {"name": "huber", "beta": -1.0}
    path = _error(raw).split(":")[0]
    fixed = parse_config(apply_overrides(raw, [f"{path}=0.5"]))
    assert fixed.variants[1].objective.pairwise.penalty == {"name": "huber", "beta": 0.5}


def test_quantile_taus_outside_unit_interval():
    raw = _raw()
    raw["variants"][1]["objective"] = {"quantile_heads": {"taus": [0.5, 1.5]}}
    assert _error(raw) == "variants.1.objective.quantile_heads.taus.1: must be in (0, 1), got 1.5"


def test_pair_bound_is_validated_and_round_trips():
    raw = _raw()
    raw["variants"][1]["objective"]["pairwise"]["max_pairs_per_group"] = 0
    assert _error(raw) == (
        "variants.1.objective.pairwise.max_pairs_per_group: "
        "input should be greater than or equal to 1, got 0"
    )
    raw["variants"][1]["objective"]["pairwise"]["max_pairs_per_group"] = 50
    cfg = parse_config(raw)
    assert cfg.variants[1].objective.pairwise.max_pairs_per_group == 50
    assert parse_config(tomllib.loads(config_to_toml(cfg))) == cfg
    quantile = {"target": "pointwise", "max_pairs_per_group": 5}
    raw["variants"][1]["objective"] = {"quantile_heads": quantile}
    assert "applies only to target = 'pairwise'" in _error(raw)


def test_mistyped_key_is_named_with_a_suggestion():
    raw = _raw()
    raw["train"] = {"lrr": 0.1}
    assert _error(raw) == "train.lrr: unknown key (did you mean 'lr'?)"


def test_wrong_type_and_bad_option():
    raw = _raw()
    raw["run"]["track"] = "vision"
    raw["train"] = {"epochs": "many"}
    lines = _error(raw).splitlines()
    assert (
        lines[0] == "run.track: input should be 'classification', 'ranking' or 'ctr', got 'vision'"
    )
    assert lines[1].startswith("train.epochs: input should be a valid integer")


def test_unknown_penalty_and_missing_key():
    raw = _raw()
    raw["variants"][1]["objective"]["pairwise"]["penalty"] = "pinbal"
    assert _error(raw).startswith("variants.1.objective.pairwise.penalty: must be one of")
    raw["variants"][1]["objective"]["pairwise"]["penalty"] = {"name": "pinball"}
    assert "needs key(s) ['tau']" in _error(raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["teacher"].update(path="t/"),
            "teacher: a teacher to train (`model`) takes no `path`",
        ),
        (lambda r: r["variants"][1].update(objective={}), "objective: needs at least one term"),
        (lambda r: r["variants"][1].update(name="labels"), "variant names must be unique"),
        (lambda r: r["run"].update(baseline="nope"), "run.baseline: 'nope' is not a variant"),
        (lambda r: r["data"].update(split=[0.5, 0.4]), "data.split: must be 3 fractions"),
        (lambda r: r["data"].update(source="letor"), "data.path: is required"),
        (lambda r: r.pop("student"), "student: required key is missing"),
        (lambda r: r["run"].update(name="a b"), "run.name: string should match pattern"),
        (
            lambda r: r["variants"][1]["objective"].update(two_step_median={}),
            "variants.1.objective.two_step_median: combines only with a `labels` term",
        ),
    ],
)
def test_structural_errors(change, message):
    raw = _raw()
    change(raw)
    assert message in _error(raw)


def test_overrides_parse_toml_values_and_index_lists():
    raw = apply_overrides(
        _raw(),
        [
            "train.epochs=3",
            "variants.1.objective.pairwise.penalty={name='huber', beta=0.5}",
            "run.name=other",
            "data.split=[0.6, 0.2, 0.2]",
        ],
    )
    cfg = parse_config(raw)
    assert cfg.train.epochs == 3
    assert cfg.variants[1].objective.pairwise.penalty == {"name": "huber", "beta": 0.5}
    assert cfg.run.name == "other"
    assert cfg.data.split == [0.6, 0.2, 0.2]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs", "expected KEY.PATH=VALUE"),
        ("variants.5.name=x", "no list item '5' (has 2)"),
        ("run.name.first=x", "run.name is not a table"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(_raw(), [override])


def test_load_config_reports_file_problems(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nname = 1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: invalid TOML: .*line 1"):
        load_config(bad)


def test_write_config_is_reloadable_and_reproduces(tmp_path):
    cfg = parse_config(_raw())
    path = write_config(cfg, tmp_path / "runs" / "t" / "config.toml")
    assert load_config(path) == cfg
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]


def test_schema_is_strict_everywhere():
    def models(model, seen):
        if model in seen:
            return
        seen.add(model)
        assert model.model_config.get("extra") == "forbid", model.__name__
        for field in model.model_fields.values():
            for arg in [field.annotation, *getattr(field.annotation, "__args__", ())]:
                if isinstance(arg, type) and hasattr(arg, "model_fields"):
                    models(arg, seen)

    seen: set = set()
    models(RunConfig, seen)
    assert len(seen) >= 15


def test_teacher_transform_is_validated_and_needs_labelled_rows():
    raw = _raw()
    raw["run"]["track"] = "classification"
    raw["variants"][1] = {"name": "pt", "objective": {"kd": {"teacher_transform": "reweight"}}}
    assert parse_config(raw).variants[1].objective.kd.teacher_transform == "reweight"
    raw["variants"][1]["objective"]["kd"]["teacher_transform"] = {"name": "top_k"}
    assert "needs key 'k'" in _error(raw)
    raw["variants"][1]["objective"]["kd"]["teacher_transform"] = {"name": "top_k", "k": 3}
    raw["data"]["label_fraction"] = 0.5
    raw["variants"][1]["transfer"] = "all"
    assert "kd.teacher_transform needs the class of every row" in _error(raw)
