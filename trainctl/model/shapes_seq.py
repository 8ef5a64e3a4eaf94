"""Shape rules (output shape, trainable and non-trainable params) for Embedding, SimpleRNN, LSTM,
GRU, Bidirectional, TimeDistributed.

Pure Python, like :mod:`trainctl.model.shapes`, so summaries need no torch.
"""

from __future__ import annotations

from trainctl.model.shapes import Rule

SEQ_RULES: dict[str, Rule] = {}
