"""Ship the student: safetensors, fp16/bf16, int8, low-rank and ONNX exports, and the
compression table (size, metric, CPU latency, ratio to the teacher)."""

from distill.export._files import atomic_directory
from distill.export.formats import (
    FORMATS,
    CompressedModel,
    ExportResult,
    compress,
    export_model,
    read_export,
    serving_module,
)
from distill.export.int8 import Int8Embedding, Int8Linear, quantize_int8
from distill.export.lowrank import energy_rank, factorize_linear, low_rank, recover
from distill.export.onnx_export import OnnxCheck, OnnxModel, export_onnx
from distill.export.table import (
    CompressionRow,
    compression_table,
    measure_latency,
    print_table,
    save_table,
    to_markdown,
)

__all__ = [
    "FORMATS",
    "CompressedModel",
    "CompressionRow",
    "ExportResult",
    "Int8Embedding",
    "Int8Linear",
    "OnnxCheck",
    "OnnxModel",
    "atomic_directory",
    "compress",
    "compression_table",
    "energy_rank",
    "export_model",
    "export_onnx",
    "factorize_linear",
    "low_rank",
    "measure_latency",
    "print_table",
    "quantize_int8",
    "read_export",
    "recover",
    "save_table",
    "serving_module",
    "to_markdown",
]
