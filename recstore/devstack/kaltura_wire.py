"""The Kaltura API v3 wire format: how parameters arrive and how answers leave.

Parameters come as a JSON body (the official clients), form fields in bracket
(``filter[tagsLike]``) or colon (``filter:tagsLike``) notation (older clients, curl, multirequest
``1:service``), multipart (uploads: the Python client puts every parameter in one ``json`` field
next to the file), or the query string, all merged into one nested dict as the PHP server's
``KalturaRequestDeserializer`` does (``x__null`` sets a field to null, a trailing ``-`` key is an
empty array). Answers are ``format=1`` JSON or ``format=2`` XML (the server default, and the
only thing the Python client parses); errors are ``KalturaAPIException`` objects with HTTP 200.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import BodyPartReader, web

#: Marks a field sent as ``name__null``: "set it to null", unlike "not sent".
NULL = object()

FORMAT_JSON = "1"
FORMAT_XML = "2"


@dataclass
class FileParam:
    filename: str
    data: bytes


class ApiError(Exception):
    """A ``KalturaAPIException``: code, message and named args, served with HTTP 200."""

    def __init__(self, code: str, message: str, **args: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.args_map = {k: str(v) for k, v in args.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "objectType": "KalturaAPIException",
            "args": self.args_map,
        }


# -- the errors the stand-in raises, with the real server's messages --


def missing_param(name: str) -> ApiError:
    return ApiError("MISSING_MANDATORY_PARAMETER", f'Missing parameter "{name}"', PARAM_NAME=name)


def invalid_ks(ks: str, code: int, desc: str) -> ApiError:
    return ApiError(
        "INVALID_KS",
        f'Invalid KS "{ks}", Error "{code},{desc}"',
        KSID=ks,
        ERR_CODE=code,
        ERR_DESC=desc,
    )


def entry_not_found(entry_id: str) -> ApiError:
    return ApiError("ENTRY_ID_NOT_FOUND", f'Entry id "{entry_id}" not found', ENTRY_ID=entry_id)


def require(params: dict[str, Any], name: str) -> Any:
    """A mandatory action parameter, or ``MISSING_MANDATORY_PARAMETER``."""
    value = params.get(name)
    if value is None or value is NULL:
        raise missing_param(name)
    return value


# -- parameters --

_SEGMENT = re.compile(r"\[([^\]]*)\]")


def split_key(key: str) -> list[str]:
    """``1:filter[tagsLike]`` → ``["1", "filter", "tagsLike"]``."""
    head, bracket, rest = key.partition("[")
    path = head.split(":")
    if bracket:
        path.extend(_SEGMENT.findall("[" + rest))
    return path


def set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    node = target
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if key == "-" and last:
            return  # "an empty array": the parent dict already exists
        if last:
            if key.endswith("__null"):
                node[key[: -len("__null")]] = NULL
            else:
                node[key] = value
            return
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child


def group(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        set_path(out, split_key(key), value)
    return out


def merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into ``into`` (JSON bodies may still carry ``a:b`` keys)."""
    for key, value in extra.items():
        if isinstance(key, str) and (":" in key or "[" in key or key.endswith("__null")):
            set_path(into, split_key(key), merge({}, value) if isinstance(value, dict) else value)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        elif isinstance(value, dict):
            into[key] = merge({}, value)
        else:
            into[key] = value
    return into


async def read_params(request: web.Request) -> dict[str, Any]:
    """Every parameter of a request, nested, whatever the encoding."""
    params = group(dict(request.query))
    ctype = request.content_type
    if request.method != "POST" or not request.can_read_body:
        return params
    if ctype == "application/json":
        body = await request.read()
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError:
                raise ApiError("INVALID_JSON", "Invalid JSON body") from None
            if isinstance(data, dict):
                merge(params, data)
    elif ctype == "multipart/form-data":
        reader = await request.multipart()
        flat: dict[str, Any] = {}
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            data_bytes = await part.read()
            filename = part.filename
            if part.name == "json" and filename is None:
                merge(params, json.loads(data_bytes or b"{}"))
            elif filename is not None or part.name.split(":")[-1] == "fileData":
                # requests-toolbelt sends an unnamed file object without a filename
                flat[part.name] = FileParam(filename or "", bytes(data_bytes))
            else:
                flat[part.name] = data_bytes.decode()
        for key, value in flat.items():
            set_path(params, split_key(key), value)
    else:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                set_path(params, split_key(key), FileParam(value.filename, value.file.read()))
            else:
                set_path(params, split_key(key), value)
    return params


# -- typed access to parameter values (everything arrives as a string from the clients) --


def as_str(value: Any) -> str | None:
    if value is None or value is NULL:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def as_int(value: Any) -> int | None:
    text = as_str(value)
    if text is None or text.strip() == "":
        return None
    try:
        return int(float(text))
    except ValueError:
        return 0  # PHP's (int) cast


def as_bool(value: Any) -> bool | None:
    text = as_str(value)
    if text is None:
        return None
    return text.strip().lower() not in ("", "0", "false")


# -- answers --


def render(result: Any, fmt: str, multi: bool = False) -> web.Response:
    """One answer (or a multirequest's list of answers) in the requested format."""
    if fmt == FORMAT_JSON:
        body = json.dumps([_jsonable(r) for r in result] if multi else _jsonable(result))
        return web.Response(text=body, content_type="application/json")
    inner = "".join(f"<item>{_xml(r)}</item>" for r in result) if multi else _xml(result)
    text = (
        '<?xml version="1.0" encoding="utf-8"?><xml><result>'
        f"{inner}</result><executionTime>0</executionTime></xml>"
    )
    return web.Response(text=text, content_type="text/xml")


def _jsonable(value: Any) -> Any:
    if isinstance(value, ApiError):
        return value.to_json()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _xml(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, ApiError):
        args = "".join(
            "<item><objectType>KalturaAPIExceptionArg</objectType>"
            f"<name>{escape(k)}</name><value>{escape(v)}</value></item>"
            for k, v in value.args_map.items()
        )
        return (
            f"<error><code>{escape(value.code)}</code><message>{escape(value.message)}</message>"
            f"<objectType>KalturaAPIException</objectType><args>{args}</args></error>"
        )
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "".join(f"<item>{_xml(v)}</item>" for v in value)
    return escape(str(value))
