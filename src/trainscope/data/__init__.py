"""Datasets as train/val/test batch sources: `build_data` (`build_custom_data` for data=custom,
`build_table_data` for data=table) is the `_target_` of every `conf/data/*.yaml`; `build_text_data` batches text
for language models."""

from trainscope.data.augment import AugmentConfig
from trainscope.data.batching import BatchSource
from trainscope.data.build import DataModule, build_data
from trainscope.data.custom import build_custom_data
from trainscope.data.table import build_table_data
from trainscope.data.text import build_text_data

__all__ = [
    "AugmentConfig",
    "BatchSource",
    "DataModule",
    "build_custom_data",
    "build_data",
    "build_table_data",
    "build_text_data",
]
