"""Backends that consume the architecture graph (PyTorch, diagrams)."""
