"""End-to-end commands: `distill demo --quick`, `distill run` on every example config (tiny
sizes; LETOR and Criteo files written to tmp), and the step commands one at a time."""

import json
import random
import runpy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.config import load_config
from distill.data.synthetic_shards import write_criteo_shards, write_criteo_tsv

EXAMPLES = Path(__file__).parents[1] / "examples"
TINY = ["teacher.train.max_steps=4", "train.max_steps=4", "train.log_every=1"]
runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def _sets(*values: str) -> list[str]:
    return [item for value in values for item in ("--set", value)]


def _write_letor_fold(folder: Path) -> None:
    folder.mkdir()
    rng = random.Random(0)
    for name, queries in (("train.txt", 12), ("vali.txt", 4), ("test.txt", 4)):
        lines = []
        for query in range(queries):
            for _ in range(6):
                features = " ".join(f"{k}:{rng.random():.3f}" for k in range(1, 11))
                lines.append(f"{rng.randint(0, 2)} qid:{query + 1} {features}")
        (folder / name).write_text("\n".join(lines) + "\n")


def _write_criteo(path: Path, rows: int = 400) -> None:
    rng = random.Random(0)
    lines = []
    for _ in range(rows):
        ints = [str(rng.randint(0, 50)) if rng.random() > 0.1 else "" for _ in range(13)]
        cats = [f"{rng.randint(0, 30):08x}" if rng.random() > 0.1 else "" for _ in range(26)]
        lines.append("\t".join([str(int(rng.random() < 0.2)), *ints, *cats]))
    path.write_text("\n".join(lines) + "\n")


AVAZU_COLUMNS = ["id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain"]
AVAZU_COLUMNS += ["site_category", "app_id", "app_domain", "app_category", "device_model"]
AVAZU_COLUMNS += ["device_type", "device_conn_type", *(f"C{k}" for k in range(14, 22))]


def _write_avazu(path: Path, rows: int, seed: int) -> None:
    """Avazu's layout: a 0/1 click, hex-string ids (site_id = "1fbe01fe") and integer codes."""
    rng = random.Random(seed)
    lines = [",".join(AVAZU_COLUMNS)]
    for row in range(rows):
        cells = [
            f"{rng.getrandbits(8):08x}" if rng.random() < 0.5 else str(rng.randint(0, 9))
            for _ in AVAZU_COLUMNS[2:]
        ]
        lines.append(",".join([str(row), str(int(rng.random() < 0.2)), *cells]))
    path.write_text("\n".join(lines) + "\n")


def _example_overrides(name: str, tmp_path: Path) -> list[str]:
    if name == "letor_mslr":
        _write_letor_fold(tmp_path / "Fold1")
        return [f"data.path='{tmp_path / 'Fold1'}'", "data.student_features='1-5'"]
    if name == "criteo":
        _write_criteo(tmp_path / "train.txt")
        return [f"data.path='{tmp_path / 'train.txt'}'", "data.options={hash_buckets=64}"]
    if name.startswith("teacher_"):  # files of examples/teacher_lightgbm.py
        write = runpy.run_path(str(EXAMPLES / "teacher_lightgbm.py"))["main"]
        rank = write(str(tmp_path / "rank"), onnx=name == "teacher_onnx")
        pattern = "{}.parquet" if name == "teacher_scores" else "rank.{}"
        files = [f"data.{split}='{rank / pattern.format(split)}'" for split in ("train", "test")]
        model = {"teacher_lightgbm": "lambdarank.txt", "teacher_onnx": "teacher.onnx"}
        teacher = [f"teacher.path='{rank / model[name]}'"] if name in model else []
        return [*files, *teacher]
    if name == "avazu":
        _write_avazu(tmp_path / "train.csv", 300, seed=0)
        _write_avazu(tmp_path / "test.csv", 100, seed=1)
        files = {"train": tmp_path / "train.csv", "test": tmp_path / "test.csv"}
        return [
            *(f"data.{key}='{path}'" for key, path in files.items()),
            "data.options={hash_buckets=64}",
        ]
    if name == "criteo_streaming":  # files of examples/criteo_shards.py, smaller
        for split, rows in (("train", 3000), ("valid", 1000), ("test", 1000)):
            write_criteo_shards(tmp_path / split, rows=rows, shard_rows=1000, seed=len(split))
        files = [f"data.{split}='{tmp_path / split}'" for split in ("train", "valid", "test")]
        return [*files, "data.options={hash_buckets=64}", "data.shuffle_buffer=500"]
    if name == "criteo_pipeline":  # its header's commands: TSV (smaller), convert, run
        for split, rows in (("train", 3000), ("valid", 1000), ("test", 1000)):
            write_criteo_tsv(tmp_path / f"{split}.tsv", rows=rows, seed=len(split))
            _invoke("convert", str(tmp_path / f"{split}.tsv"), "--out", str(tmp_path / split))
        files = [f"data.{split}='{tmp_path / split}'" for split in ("train", "valid", "test")]
        return [*files, "data.options={hash_buckets=64, impute=0.0}", "data.shuffle_buffer=500"]
    sizes = {"ranking": "{n_groups=30}", "ctr_joint": "{n_rows=1200}", "keyboard": "{n_rows=2000}"}
    return [f"data.options={sizes[name]}"] if name in sizes else []


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.toml")))
def test_run_every_example_config(name, tmp_path):
    extra = _example_overrides(name, tmp_path)
    config = str(EXAMPLES / f"{name}.toml")
    sets = _sets(*TINY, f"run.out_dir='{tmp_path}'", *extra)
    report = name == "ctr_joint"  # the report and compression table once (figures are slow)
    result = _invoke("run", config, *sets, "--report" if report else "--no-report")
    folder = tmp_path / name
    results = json.loads((folder / "results.json").read_text())
    assert results["teacher"]["name"] in result.stdout
    cfg = load_config(config, overrides=[*TINY, f"run.out_dir='{tmp_path}'", *extra])
    expected = [v.name for v in cfg.variants] + (["joint"] if cfg.joint else [])
    assert [row["name"] for row in results["variants"]] == expected
    assert load_config(folder / "config.toml") == cfg
    assert (folder / "report.html").is_file() == report
    if report:
        assert (folder / "summary.md").is_file()
        assert [row["name"] for row in results["compression"]] == ["teacher", *expected]


def test_resolved_config_reproduces_the_run(tmp_path):
    config = str(EXAMPLES / "classification.toml")
    _invoke("run", config, "--no-report", *_sets(*TINY, f"run.out_dir='{tmp_path / 'a'}'"))
    first = json.loads((tmp_path / "a" / "classification" / "results.json").read_text())
    resolved = tmp_path / "a" / "classification" / "config.toml"
    _invoke("run", str(resolved), "--no-report", *_sets(f"run.out_dir='{tmp_path / 'b'}'"))
    second = json.loads((tmp_path / "b" / "classification" / "results.json").read_text())
    for left, right in zip(first["variants"], second["variants"], strict=True):
        assert left["metrics"] == right["metrics"]


def test_step_commands_one_at_a_time(tmp_path):
    config = str(EXAMPLES / "classification.toml")
    sets = _sets(*TINY, f"run.out_dir='{tmp_path}'")
    assert "Teacher: accuracy" in _invoke("teacher", config, *sets).stdout
    assert "scores" in _invoke("score", config, *sets).stdout
    result = _invoke("student", config, "--variant", "kd_T4", *sets)
    lines = result.stdout.splitlines()  # progress lines (not a terminal), then the result
    assert lines[0].startswith("kd_T4  step 1/4") and "ETA" in lines[0]
    assert any(line.startswith("kd_T4: accuracy") for line in lines)
    model = str(tmp_path / "classification" / "students" / "kd_T4")
    result = _invoke("evaluate", model, config, "--split", "valid", *sets)
    assert {line.split(":")[0] for line in result.stdout.splitlines()} == {"accuracy", "nll", "ece"}


def test_student_without_scores_explains_the_missing_step(tmp_path):
    config = str(EXAMPLES / "classification.toml")
    sets = _sets(*TINY, f"run.out_dir='{tmp_path}'")
    result = runner.invoke(app, ["student", config, "--variant", "kd_T4", *sets])
    assert result.exit_code == 2
    assert "run `distill score` first" in result.stderr
