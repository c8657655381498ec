"""Review of pending changes case by case and step by step, as snapshot tools do:
``python -m pytest_promptflow review`` and ``python -m pytest_promptflow accept``."""
