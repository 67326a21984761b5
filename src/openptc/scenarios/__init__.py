"""Scenarios: deterministic data, the tools over it, a question, a checker, and scripted brains.

Used by the demo, the scripted model, the proxy's offline mode, the tests and the benchmarks.
"""
