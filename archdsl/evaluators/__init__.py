"""Evaluators: what a search optimises. `nb201` looks architectures up in NAS-Bench-201."""
