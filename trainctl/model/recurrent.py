"""torch modules for Embedding, recurrent layers and their wrappers, with Keras semantics and Keras weight layout."""

from __future__ import annotations

from trainctl.model.layers import Builder

SEQ_BUILDERS: dict[str, Builder] = {}
