"""Game configuration files shipped with the package (data only; see each file's ``declared``)."""

from __future__ import annotations

from importlib import resources

__all__ = ["catalog_names", "read_catalog"]


def catalog_names() -> list[str]:
    """Names of the shipped game files, without extension."""
    return sorted(
        p.name.rsplit(".", 1)[0] for p in resources.files(__name__).iterdir() if p.name.endswith(".json")
    )


def read_catalog(name: str) -> bytes:
    """Raw content of a shipped game file, e.g. ``read_catalog("fruit_slot")``."""
    return resources.files(__name__).joinpath(f"{name}.json").read_bytes()
