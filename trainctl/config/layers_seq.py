"""Layer specs, Keras 3 names and defaults:
Embedding, SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed."""

from __future__ import annotations
