"""Measurement only: the benchmark runners and their report."""
