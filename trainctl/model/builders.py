"""Every layer's torch builder, keyed by Keras class name: one table per layer family."""

from __future__ import annotations

from trainctl.model.augment import AUGMENT_BUILDERS
from trainctl.model.conv import CONV_BUILDERS
from trainctl.model.layers import CORE_BUILDERS, Builder
from trainctl.model.merge import MERGE_BUILDERS
from trainctl.model.norm import NORM_BUILDERS
from trainctl.model.preprocess import PREPROCESS_BUILDERS
from trainctl.model.recurrent import SEQ_BUILDERS

BUILDERS: dict[str, Builder] = {
    **CORE_BUILDERS,
    **CONV_BUILDERS,
    **NORM_BUILDERS,
    **SEQ_BUILDERS,
    **PREPROCESS_BUILDERS,
    **AUGMENT_BUILDERS,
    **MERGE_BUILDERS,
}
