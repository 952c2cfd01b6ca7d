"""Texts to ProX programs with a model: `prompts` (the exact prompts of the
released refining models), `engine` (one cached vLLM engine per Spark Python
worker) and `batch` (one batch of texts to programs, no Spark).
"""
