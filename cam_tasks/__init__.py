"""cam_tasks: a lightweight asyncio job framework persisted in MongoDB."""

from cam_tasks._version import __version__

__all__ = ["__version__"]
