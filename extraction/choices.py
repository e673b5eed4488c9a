"""The named choices of the model's configuration, as `Literal` types (one home, no torch):
what a `TrainConfig` field may hold is what the model accepts, checked once when it is made."""

from typing import Literal, get_args

Mode = Literal["joint", "ner_only", "rc_only"]  # which tasks train (Table VI: joint vs separate)
RcMask = Literal["eq13", "eq14"]  # the relation mask of the task layers (Eq. 13 / Eq. 14)
RcStrategy = Literal["literal", "batched", "exact"]  # how RC pairs are computed (bench_rc)

MODES: tuple[str, ...] = get_args(Mode)
RC_MASKS: tuple[str, ...] = get_args(RcMask)
RC_STRATEGIES: tuple[str, ...] = get_args(RcStrategy)
