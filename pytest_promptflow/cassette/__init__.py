"""Recorded runs: one reviewable JSON file per test case, on top of vcrpy."""
