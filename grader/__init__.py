"""Trusted grading core: specs, checks, comparison, scoring, results, safe extraction."""
