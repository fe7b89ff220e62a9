"""LLM inference for the Dagster layer: one configuration (backend, model, sampling, guards, cache), two backends."""
