"""Transforms that take a transform: masking, param groups, hyperparameter injection, ..."""

from optxform.wrappers.accumulation import *  # noqa: F401,F403
from optxform.wrappers.apply_if_finite import *  # noqa: F401,F403
from optxform.wrappers.ema import *  # noqa: F401,F403
from optxform.wrappers.flatten import *  # noqa: F401,F403
from optxform.wrappers.inject import *  # noqa: F401,F403
from optxform.wrappers.lookahead import *  # noqa: F401,F403
from optxform.wrappers.masked import *  # noqa: F401,F403
from optxform.wrappers.multi_transform import *  # noqa: F401,F403
from optxform.wrappers import accumulation, apply_if_finite, ema, flatten, inject, lookahead, masked, multi_transform  # noqa: E501

__all__ = [name for module in (accumulation, apply_if_finite, ema, flatten, inject, lookahead,
                               masked, multi_transform) for name in module.__all__]
