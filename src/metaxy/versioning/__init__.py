"""Versioning: hash primitives, the pure resolve plan, and the executors that run it."""
