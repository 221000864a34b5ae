"""Update rules as declarations, and the lifting that turns one into a transform.

A new elementwise rule is one :class:`Rule` (its math, kind, hyperparameters and state)
in its family file under ``transforms/`` plus a factory that calls :func:`lift`.
"""

from optxform.rules.lift import Declaration as Declaration
from optxform.rules.lift import declaration_of as declaration_of
from optxform.rules.lift import kinds_of as kinds_of
from optxform.rules.lift import lift as lift
from optxform.rules.rule import Buffer as Buffer
from optxform.rules.rule import Hyperparameter as Hyperparameter
from optxform.rules.rule import Kind as Kind
from optxform.rules.rule import Leaf as Leaf
from optxform.rules.rule import Rule as Rule
from optxform.rules.rule import Scalar as Scalar
from optxform.rules.rule import Step as Step
from optxform.rules.rule import beta as beta
from optxform.rules.rule import non_negative as non_negative

__all__ = ["Buffer", "Declaration", "Hyperparameter", "Kind", "Leaf", "Rule", "Scalar",
           "Step", "beta", "declaration_of", "kinds_of", "lift", "non_negative"]
