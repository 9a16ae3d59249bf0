"""The one error every app's actions raise for a refused request, on the ground floor so any module
may raise or catch it (queries, actions, API base classes, commands) without importing actions."""

from __future__ import annotations


class ActionError(ValueError):
    """A request that cannot be carried out; the message is shown to the user as is."""


__all__ = ["ActionError"]
