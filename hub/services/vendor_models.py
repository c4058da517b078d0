"""The data models a vendor template offers (connectors/vendor_templates/*.json "models"), created in
one step for a system set up from that template, by the same service as any other data model."""

from dataclasses import dataclass
from typing import Any

import requests

from connectors.netpolicy import guarded_session, refusal
from connectors.vendors import VendorTemplate, vendor_template
from hub.services.datamodels import api_description_fetch, data_model_create
from hub.services.errors import ConfigError
from mappings.models import DataModel
from mappings.schema import FieldSpec, SchemaError, fields_from_openapi, infer_fields

FETCH_TIMEOUT = (3.0, 15.0)  # connect, read (seconds): a vendor's API description can be large
MAX_DESCRIPTION_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class OfferedModel:
    """One of a template's models, as the new-data-model page offers it."""

    name: str
    vendor: str
    resource_path: str
    source: str  # fields, sample or api_description
    taken: bool  # the system has a model of that name already


def template_of(system) -> VendorTemplate | None:
    return vendor_template(system.vendor_template) if system.vendor_template else None


def offered_models(system) -> list[OfferedModel]:
    """The models the system's vendor template offers, in the template's order."""
    template = template_of(system)
    if template is None:
        return []
    have = {name.lower() for name in DataModel.objects.filter(system=system).values_list("name", flat=True)}
    return [
        OfferedModel(
            name=name,
            vendor=template.name,
            resource_path=model["path"],
            source=next(key for key in ("fields", "sample", "api_description") if key in model),
            taken=name.lower() in have,
        )
        for name, model in template.models.items()
    ]


def data_model_from_template(*, system, name: str, actor) -> DataModel:
    """Create the template's model `name` for `system`: its fields from the template's list, its
    sample record or the vendor's API description."""
    template = template_of(system)
    if template is None:
        raise ConfigError(
            f"{system.name} was not set up from a vendor template, so it has no models to offer"
        )
    offered = template.models.get(name)
    if offered is None:
        raise ConfigError(
            f"the {template.name} template offers no model called “{name}” "
            f"(it offers: {', '.join(template.models) or 'none'})"
        )
    fields, sample = _fields(system, offered)
    return data_model_create(
        system=system,
        name=name,
        resource_path=offered["path"],
        id_path=offered.get("id", "id"),
        cursor_field="",
        description=offered.get("description", f"From the {template.name} template."),
        fields=fields,
        sample=sample,
        actor=actor,
    )


def _fields(system, offered: dict[str, Any]) -> tuple[list[FieldSpec], dict | None]:
    if "fields" in offered:
        specs = [
            FieldSpec(
                path=spec["path"],
                type=spec.get("type", "string"),
                required=spec.get("required", False),
                description=spec.get("description", ""),
            )
            for spec in offered["fields"]
        ]
        return specs, None
    if "sample" in offered:
        return infer_fields(offered["sample"]), offered["sample"]
    document = _description(system, offered["api_description"])
    try:
        return fields_from_openapi(document, offered["schema"]), None
    except SchemaError as exc:
        raise ConfigError(f"the vendor's API description cannot be read: {exc}") from None


def _description(system, where: str) -> str:
    """The vendor's API description: at an address of its own, or at a path of the system's API
    (asked with the system's credentials)."""
    if not where.startswith(("http://", "https://")):
        return api_description_fetch(system=system, path=where)[0]
    try:
        with guarded_session() as session:
            response = session.get(where, timeout=FETCH_TIMEOUT, stream=True)
            body = response.raw.read(MAX_DESCRIPTION_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise ConfigError(
            refusal(exc) or f"the vendor's API description at {where} could not be fetched"
        ) from None
    if response.status_code != 200:
        raise ConfigError(f"the vendor's API description at {where} answered HTTP {response.status_code}")
    if len(body) > MAX_DESCRIPTION_BYTES:
        raise ConfigError(f"the vendor's API description at {where} is larger than 20 MB")
    return body.decode("utf-8", errors="replace")
