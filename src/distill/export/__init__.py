"""Ship the student: safetensors, fp16/bf16, int8, low-rank and ONNX exports, the compression
table (size, metric, CPU latency, ratio to the teacher), and the compression chain (shared
embedding/output factorisation → low rank → 16 bit, a row per step)."""

from distill.export._files import atomic_directory
from distill.export.chain import CHAIN_STEPS, ChainSettings, check_chain, run_chain
from distill.export.chain_table import ChainRow, chain_table, print_chain, save_chain
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
from distill.export.shared_factorisation import (
    SharedEmbedding,
    SharedOutput,
    check_share,
    share_embeddings,
)
from distill.export.table import (
    CompressionRow,
    compression_table,
    measure_latency,
    print_table,
    save_table,
    to_markdown,
)

__all__ = [
    "CHAIN_STEPS",
    "FORMATS",
    "ChainRow",
    "ChainSettings",
    "CompressedModel",
    "CompressionRow",
    "ExportResult",
    "Int8Embedding",
    "Int8Linear",
    "OnnxCheck",
    "OnnxModel",
    "SharedEmbedding",
    "SharedOutput",
    "atomic_directory",
    "chain_table",
    "check_chain",
    "check_share",
    "compress",
    "compression_table",
    "energy_rank",
    "export_model",
    "export_onnx",
    "factorize_linear",
    "low_rank",
    "measure_latency",
    "print_chain",
    "print_table",
    "quantize_int8",
    "read_export",
    "recover",
    "run_chain",
    "save_chain",
    "save_table",
    "serving_module",
    "share_embeddings",
    "to_markdown",
]
