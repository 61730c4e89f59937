"""Data: the in-memory Dataset, readers for common formats, built-ins, splits and batching.

The readers need the ``data`` extra (pyarrow, scikit-learn) and are imported on first use.
"""

from typing import TYPE_CHECKING

from distill._extras import lazy_exports
from distill.data.batching import GroupBatchSampler, RowBatchSampler
from distill.data.builtin import digits, load_builtin, synthetic_ctr, synthetic_recommender
from distill.data.dataset import Dataset, parse_feature_spec, split
from distill.data.synthetic_text import synthetic_text

__getattr__ = lazy_exports(
    "distill.data",
    {
        "read_criteo": ("distill.data.ctr_formats", ("data",)),
        "read_libsvm": ("distill.data.ctr_formats", ("data",)),
        "read_letor": ("distill.data.letor", ("data",)),
        "read_table": ("distill.data.table", ("data",)),
    },
)

if TYPE_CHECKING:
    from distill.data.ctr_formats import read_criteo, read_libsvm
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
    "synthetic_text",
]
