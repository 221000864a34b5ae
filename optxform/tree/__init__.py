"""Tree plumbing: leaf-wise math and readable paths. Transforms import this as ``otu``."""

from optxform.core.trees import check_same_structure as check_same_structure
from optxform.core.trees import leaves_with_paths as leaves_with_paths
from optxform.core.trees import path_to_str as path_to_str
from optxform.tree.math import add as add
from optxform.tree.math import add_scaled as add_scaled
from optxform.tree.math import all_finite as all_finite
from optxform.tree.math import as_dtype_of as as_dtype_of
from optxform.tree.math import at_least_float32 as at_least_float32
from optxform.tree.math import cast as cast
from optxform.tree.math import cast_like as cast_like
from optxform.tree.math import complex_from_real_view as complex_from_real_view
from optxform.tree.math import div as div
from optxform.tree.math import flat_dtype as flat_dtype
from optxform.tree.math import full_like as full_like
from optxform.tree.math import global_norm as global_norm
from optxform.tree.math import leaves as leaves
from optxform.tree.math import max_abs as max_abs
from optxform.tree.math import mul as mul
from optxform.tree.math import neg as neg
from optxform.tree.math import ravel as ravel
from optxform.tree.math import real_view as real_view
from optxform.tree.math import scale as scale
from optxform.tree.math import sub as sub
from optxform.tree.math import sum_of_squares as sum_of_squares
from optxform.tree.math import tree_map as tree_map
from optxform.tree.math import unfused as unfused
from optxform.tree.math import unravel_like as unravel_like
from optxform.tree.math import vdot as vdot
from optxform.tree.math import where as where
from optxform.tree.math import wider_dtype as wider_dtype
from optxform.tree.math import zeros_like as zeros_like

__all__: list[str] = []  # internal helpers; not re-exported at the top level
