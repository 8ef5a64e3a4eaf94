"""trainctl: Keras-style training runs on PyTorch, driven by YAML files.

Importing the package is cheap: torch, numpy and scikit-learn load only when a command needs them.
"""

__version__ = "0.1.0"
