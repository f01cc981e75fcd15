"""Environments: construction, checks and the three families d3q plays (envs/core.py)."""

from d3q_core.envs.core import (
    EXTRAS,
    FAMILIES,
    EnvError,
    EnvInfo,
    family_of,
    import_env_module,
    inspect_env,
    make_env,
    make_vector_env,
    prepare_family,
    seeds_for,
)

__all__ = ["EXTRAS", "FAMILIES", "EnvError", "EnvInfo", "family_of", "import_env_module",
           "inspect_env", "make_env", "make_vector_env", "prepare_family", "seeds_for"]
