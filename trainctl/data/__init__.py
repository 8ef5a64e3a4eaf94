"""The data layer: sources -> numpy arrays -> fitted preprocessing. numpy only, never torch."""

from trainctl.data.dataset import Dataset, load_data
from trainctl.data.preprocess import Preprocessor
from trainctl.data.splits import take_rows, validation_split

__all__ = ["Dataset", "Preprocessor", "load_data", "take_rows", "validation_split"]
