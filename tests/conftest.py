"""Strict settings for every test: 8 host CPU devices, strict dtype and rank promotion."""

import os

# Must be set before jax is imported anywhere.
_flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
# The suite compiles thousands of small programs, and LLVM's optimizations take about
# two thirds of XLA:CPU's compile time while the tests check numbers, not speed. Without
# them XLA rounds some sums and products differently in the last bit (contraction,
# vectorized reductions), so what is compared with torch and the reference packages
# compiles at XLA's default level (tests/oracles.py, AS_USERS_COMPILE), and the docs'
# number scripts run without this flag (tests/test_docs_numbers.py).
if "xla_backend_optimization_level" not in _flags:
    _flags += " --xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = _flags.strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# torch.optim is our oracle, and its float32 results depend on which CPU kernels it
# dispatches to (AVX-512, AVX2 or the portable "default" build): rows that agree with one
# differ from another by more than the parity tolerance. Pin the portable kernels, so the
# suite gives the same verdict on every x86 machine, unless a run asks for others
# (.ci/run also runs the parity rows under the machine's own kernels; see
# tests/test_aliases.py for how those are judged).
os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run a test with 64-bit floats enabled (restored afterwards)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
