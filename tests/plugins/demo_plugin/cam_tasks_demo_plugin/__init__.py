"""A tiny cam_tasks plug-in: one executor and one asset provider, found by entry points."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from cam_tasks import StaticAssetProvider


class WordCountParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class WordCountExecutor:
    type = "word_count"
    params_model = WordCountParams

    async def execute(self, params: WordCountParams, ctx: Any) -> dict[str, int]:
        ctx.report(100, "counted")
        return {"words": len(params.text.split())}


def make_provider(context: Any) -> StaticAssetProvider:
    """A factory taking the PluginContext (it could read context.settings)."""
    assert context.settings is not None
    inventory = {"accounts": {"7": {"regions": {"lab-1": {"vm": [{"id": "vm-1", "name": "a"}]}}}}}
    return StaticAssetProvider("lab", inventory)
