"""Quality per step: expected values of cases, scores, rates and their statistics, the
paired verdict between the golden run and now, and the quality gate.

Importing this package imports nothing: each module is imported where it is used, and
none of them needs more than the standard library and the package itself.
"""
