"""Building blocks: one family of update rules per file, each a GradientTransformation."""

from optxform.transforms.adam import *  # noqa: F401,F403
from optxform.transforms.averaging import *  # noqa: F401,F403
from optxform.transforms.clipping import *  # noqa: F401,F403
from optxform.transforms.constraints import *  # noqa: F401,F403
from optxform.transforms.factored import *  # noqa: F401,F403
from optxform.transforms.momentum import *  # noqa: F401,F403
from optxform.transforms.rms import *  # noqa: F401,F403
from optxform.transforms.scaling import *  # noqa: F401,F403
from optxform.transforms.sign import *  # noqa: F401,F403
from optxform.transforms.weight_decay import *  # noqa: F401,F403
from optxform.transforms import adam, averaging, clipping, constraints, factored, momentum, rms, scaling, sign, weight_decay  # noqa: E501

__all__ = [name for module in (adam, averaging, clipping, constraints, factored, momentum, rms,
                               scaling, sign, weight_decay) for name in module.__all__]
