"""Trusted NumPy reference implementations used by the grader."""
