"""Data: the in-memory Dataset, readers for common formats, built-ins, splits and batching."""

from distill.data.batching import GroupBatchSampler, RowBatchSampler
from distill.data.builtin import digits, load_builtin, synthetic_ctr, synthetic_recommender
from distill.data.ctr_formats import read_criteo, read_libsvm
from distill.data.dataset import Dataset, parse_feature_spec, split
from distill.data.letor import read_letor
from distill.data.table import read_table

__all__ = [
    "Dataset",
    "GroupBatchSampler",
    "RowBatchSampler",
    "digits",
    "load_builtin",
    "parse_feature_spec",
    "read_criteo",
    "read_letor",
    "read_libsvm",
    "read_table",
    "split",
    "synthetic_ctr",
    "synthetic_recommender",
]
