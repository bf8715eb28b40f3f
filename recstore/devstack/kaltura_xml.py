"""Custom metadata checks: the XSD of a profile and the XML of a metadata object.

Kaltura validates ``metadata.add``/``update`` XML against the profile's XSD (elements in the
sequence's order, values of the declared types), which is where a syncer that builds the XML
by hand goes wrong. lxml does the validation when it is installed (it comes with the official
client); without it only well-formedness is checked.
"""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from typing import Any

from recstore.devstack.kaltura_wire import ApiError


def _lxml() -> Any:
    try:
        return importlib.import_module("lxml.etree")
    except ImportError:  # pragma: no cover - lxml is a dev dependency
        return None


def _schema(etree: Any, xsd: str) -> Any:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.fromstring(xsd.encode(), parser))


def check_xsd(xsd: str) -> None:
    etree = _lxml()
    try:
        if etree is None:
            ET.fromstring(xsd)  # noqa: S314 (dev-stack input from the tests' own clients)
        else:
            _schema(etree, xsd)
    except Exception as exc:  # any parse or schema error means "invalid"
        raise ApiError(
            "INVALID_METADATA_PROFILE_SCHEMA", f"Invalid metadata profile schema: {exc}"
        ) from None


def check_metadata(xsd: str, xml: str) -> None:
    etree = _lxml()
    try:
        if etree is None:
            ET.fromstring(xml)  # noqa: S314 (dev-stack input from the tests' own clients)
            return
        schema = _schema(etree, xsd)
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        document = etree.fromstring(xml.encode(), parser)
    except Exception as exc:
        raise ApiError("INVALID_METADATA_DATA", f"Invalid metadata data: {exc}") from None
    if not schema.validate(document):
        error = schema.error_log.last_error
        raise ApiError("INVALID_METADATA_DATA", f"Invalid metadata data: {error}")
