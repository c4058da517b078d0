"""Connector kinds: adding one is one module with a Connector subclass plus one line here. The system
form offers these kinds and the System model refuses any other."""

from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

from connectors.base import Connector, ConnectorConfig

CONNECTORS: dict[str, tuple[str, str]] = {
    "rest": ("Generic REST / JSON", "connectors.rest.RestConnector"),
    "jsonapi": ("JSON:API", "connectors.jsonapi.JsonApiConnector"),
}


def connector_choices() -> list[tuple[str, str]]:
    return [(kind, label) for kind, (label, _) in CONNECTORS.items()]


def connector_label(kind: str) -> str:
    return CONNECTORS[kind][0] if kind in CONNECTORS else kind


def connector_class(kind: str) -> type[Connector]:
    try:
        return import_string(CONNECTORS[kind][1])
    except KeyError:
        raise ValueError(f"unknown connector {kind!r}; known: {', '.join(CONNECTORS)}") from None


def connector_configs() -> dict[str, type[ConnectorConfig]]:
    """Each kind's settings class, for the system form."""
    return {kind: connector_class(kind).Config for kind in CONNECTORS}


def connector_for(system) -> Connector:
    return connector_class(system.connector)(system)


def validate_connector(kind: str) -> None:
    """A model field validator: only registered kinds."""
    if kind not in CONNECTORS:
        known = ", ".join(f"{k} ({label})" for k, (label, _) in CONNECTORS.items())
        raise ValidationError(
            f"Unknown kind of API “{kind}”. Choose one of: {known}.", code="unknown_connector"
        )
