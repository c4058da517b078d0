"""Connector kinds: adding one is one module with a Connector subclass plus one line here."""

from django.utils.module_loading import import_string

from connectors.base import Connector

CONNECTORS: dict[str, tuple[str, str]] = {
    "rest": ("Generic REST / JSON", "connectors.rest.RestConnector"),
}


def connector_choices() -> list[tuple[str, str]]:
    return [(kind, label) for kind, (label, _) in CONNECTORS.items()]


def connector_class(kind: str) -> type[Connector]:
    try:
        return import_string(CONNECTORS[kind][1])
    except KeyError:
        raise ValueError(f"unknown connector {kind!r}; known: {', '.join(CONNECTORS)}") from None


def connector_for(system) -> Connector:
    return connector_class(system.connector)(system)
