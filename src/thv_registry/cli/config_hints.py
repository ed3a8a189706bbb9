"""The CLI's advice for configuration errors: the ``--config`` and ``--database-url`` flags.

``thv_registry.config`` raises ConfigError with a ``reason`` and a hint in library terms; where
the way out is a flag of this CLI, the sentence is written here. Imported only on the error path.
"""

from __future__ import annotations

from thv_registry.errors import ConfigError

__all__ = ["config_hint"]

_EMBEDDED = "or run without --config to use the embedded PostgreSQL"


def config_hint(exc: ConfigError) -> str | None:
    """The hint in CLI terms for a ConfigError; None: the library's hint stands."""
    if exc.reason == "missing":
        return "Pass --config with the path of your configuration file."
    if exc.reason == "directory":
        return "Pass --config with the path of the YAML file itself."
    if exc.reason == "permission":
        return (
            "Make it readable by the user running thv-registry-api (e.g. chmod u+r), or pass "
            "--config with another file."
        )
    if exc.reason == "no_database" and exc.hint:
        if "--database-url" in exc.hint:
            return exc.hint  # worded by cli/target.py
        return f"{exc.hint.rstrip('.')}, or pass --database-url URL."
    if exc.reason == "empty" and exc.hint:
        return f"{exc.hint.rstrip('.')}, {_EMBEDDED}."
    return None
