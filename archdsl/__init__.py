"""archdsl: a language and compiler for neural-architecture search spaces."""
