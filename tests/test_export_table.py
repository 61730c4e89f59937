"""The compression table: counts, sizes, metric, ratios, per-model inputs, saved files."""

import json

import pytest
import torch
from rich.console import Console

from distill.export import (
    compression_table,
    export_model,
    measure_latency,
    print_table,
    save_table,
    to_markdown,
)
from distill.models import MLP


def _accuracy_on(x, labels):
    def evaluate(predict):
        return float((predict(x).argmax(1) == labels).float().mean())

    return evaluate


@pytest.fixture
def setting(tmp_path):
    torch.manual_seed(0)
    teacher, student = MLP(8, (64, 64), 3).eval(), MLP(8, (16,), 3).eval()
    int8 = export_model(student, tmp_path / "int8", format="int8")
    x, labels = torch.randn(40, 8), torch.randint(0, 3, (40,))
    return teacher, student, int8, x, labels


def test_rows_hold_params_bytes_metric_and_ratios(setting, tmp_path):
    teacher, student, _, x, labels = setting
    rows = compression_table(
        {"teacher": teacher, "student": student, "student-int8": tmp_path / "int8"},
        example_input=x,
        evaluate=_accuracy_on(x, labels),
        repeats=3,
    )
    by_name = {row.name: row for row in rows}
    assert [row.name for row in rows] == ["teacher", "student", "student-int8"]
    assert by_name["teacher"].params == 8 * 64 + 64 + 64 * 64 + 64 + 64 * 3 + 3
    assert by_name["student-int8"].params == by_name["student"].params == 8 * 16 + 16 + 16 * 3 + 3
    assert by_name["student-int8"].bytes == (tmp_path / "int8" / "model.safetensors").stat().st_size
    assert by_name["student-int8"].format == "int8" and by_name["teacher"].format == "torch"
    expected = float((student(x).argmax(1) == labels).float().mean())
    assert by_name["student"].metric == pytest.approx(expected)
    teacher_row = by_name["teacher"]
    assert teacher_row.size_ratio == 1.0 and teacher_row.speedup_256 == 1.0
    for row in rows:
        assert row.size_ratio == pytest.approx(teacher_row.bytes / row.bytes)
        assert row.speedup_1 == pytest.approx(teacher_row.latency_ms_1 / row.latency_ms_1)
        assert row.latency_ms_1 > 0 and row.latency_ms_256 > 0
    assert by_name["student-int8"].size_ratio > by_name["student"].size_ratio > 1


def test_per_model_inputs_and_evaluators(setting):
    _, student, _, x, _ = setting
    wide = MLP(12, (4,), 3).eval()
    rows = compression_table(
        {"student": student, "wide": wide},
        example_input={"student": x, "wide": torch.randn(5, 12)},
        evaluate={"student": lambda predict: 1.0, "wide": lambda predict: 0.5},
        repeats=1,
    )
    assert [row.metric for row in rows] == [1.0, 0.5]
    assert rows[0].size_ratio == 1.0  # no teacher row: the first row is the reference


def test_table_errors(setting):
    teacher, student, _, x, _ = setting
    with pytest.raises(ValueError, match="`models` must name at least one model"):
        compression_table({}, example_input=x)
    with pytest.raises(ValueError, match="`reference` must be one of teacher, student, got 'x'"):
        compression_table({"teacher": teacher, "student": student}, example_input=x, reference="x")
    with pytest.raises(ValueError, match="no entry for model 'student'"):
        compression_table({"student": student}, example_input={"teacher": x})
    with pytest.raises(ValueError, match="`repeats` must be >= 1, got 0"):
        compression_table({"student": student}, example_input=x, repeats=0)


def test_measure_latency_warms_up_then_times_each_repeat():
    calls = []
    milliseconds = measure_latency(
        lambda *inputs: calls.append(inputs), (torch.ones(1),), repeats=7
    )
    assert len(calls) == 10 and milliseconds >= 0


def test_saved_json_markdown_and_printed_table(setting, tmp_path):
    teacher, student, _, x, labels = setting
    rows = compression_table(
        {"teacher": teacher, "student": student},
        example_input=x,
        evaluate=_accuracy_on(x, labels),
        repeats=2,
    )
    json_path, markdown_path = save_table(rows, tmp_path / "table", metric="accuracy")
    document = json.loads(json_path.read_text())
    assert document["metric"] == "accuracy" and document["torch_threads"] >= 1
    assert [row["name"] for row in document["rows"]] == ["teacher", "student"]
    lines = markdown_path.read_text().splitlines()
    assert lines[0].startswith("| model | format | params | bytes | × smaller | accuracy |")
    assert len(lines) == 4 and lines[3].startswith("| student | torch |")
    assert markdown_path.read_text() == to_markdown(rows, metric="accuracy")
    console = Console(record=True, width=160)
    print_table(rows, metric="accuracy", console=console)
    text = console.export_text()
    assert "teacher" in text and "student" in text and "accuracy" in text
