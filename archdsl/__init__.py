"""archdsl: a language and compiler for neural-architecture search spaces.

    >>> import archdsl
    >>> space = archdsl.load("examples/digits.arch")
    >>> space.count()
    >>> config = space.sample(seed=0)
    >>> arch = space.materialize(config)   # a networkx graph of layers
"""

from .errors import (
    ArchDSLError,
    ArchImportError,
    ArchLimitError,
    ArchNameError,
    ArchRecursionError,
    ArchSyntaxError,
    ArchTypeError,
    ArchValueError,
    ConfigError,
    ConstraintError,
    EmptySpaceError,
    ShapeError,
    Span,
)
from .graph import Architecture, canonical_hash
from .layers import ArgSpec, register_layer
from .space import Space, load, loads, read_config
from .values import Decision

__all__ = [
    "load", "loads", "Space", "Architecture", "Decision", "read_config", "canonical_hash",
    "register_layer", "ArgSpec", "Span",
    "ArchDSLError", "ArchSyntaxError", "ArchNameError", "ArchTypeError", "ArchValueError",
    "ArchImportError", "ArchRecursionError", "ArchLimitError", "ConfigError", "ConstraintError",
    "EmptySpaceError", "ShapeError",
]
__version__ = "0.1.0"
