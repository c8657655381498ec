"""Quality figures of step outputs: how often a step is right, per case and per sample.

Importing this package imports nothing: each module is imported where it is used, and
none of them needs more than the standard library.
"""
