"""Typed settings: YAML, then environment overrides, then ``*_FILE`` secrets, validated once.

Why this shape:

* The YAML keys are seed 004's (``workers.FileTransferer.count``, ``s3.chunkSize``,
  ``dracoon.encryptionPassword`` ...) so an operator's existing files and habits carry over.
* Any key can be overridden from the environment as ``RECSTORE_<PATH>``, path segments joined
  by ``__`` and matched without regard to case: ``RECSTORE_WORKERS__FILETRANSFERER__COUNT=8``,
  ``RECSTORE_DRACOON__PASSWORD=...``. A ``RECSTORE_`` variable that names no key is an error,
  not silently ignored (except the few in :data:`RESERVED_ENV`).
* Any value can come from a file, for container secrets: ``password_FILE: /run/secrets/pw`` in
  the YAML, or ``RECSTORE_DRACOON__PASSWORD_FILE=/run/secrets/pw`` in the environment. One
  trailing newline is stripped.
* Unknown keys are errors (``extra="forbid"``): a misspelled key must not fall back to a default.
* Every problem is reported at once as ``(key, message)`` pairs in a :class:`ConfigError`; the
  CLI prints one line per problem and exits 2.
* Secrets are :class:`pydantic.SecretStr`: they print as ``**********`` in logs, errors,
  reprs and ``recstore config show``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from recstore.common.errors import ConfigError
from recstore.settings.checks import cross_checks
from recstore.settings.root import Settings

ENV_PREFIX = "RECSTORE_"


FILE_SUFFIX = "_FILE"


#: Environment variables with the prefix that are not configuration overrides.
RESERVED_ENV = frozenset(
    {"RECSTORE_CONFIG", "RECSTORE_CONFIG_S3_URI", "RECSTORE_CONFIG_DIR", "RECSTORE_WORKERS"}
)


#: What a layer above adds once the models are valid: the worker registry
#: (:func:`recstore.workers.registry.worker_rules`) turns off the workers that do not run here
#: and names what the running ones lack. It returns the settings to use and its problems,
#: which are reported with every other one (and named after a seed variable like them).
Rules = Callable[[Settings], tuple[Settings, list[tuple[str, str]]]]


def load_settings(
    path: Path | str | None,
    environ: Mapping[str, str] | None = None,
    *,
    rules: Rules | None = None,
) -> Settings:
    """Read, override, resolve and validate; raise :class:`ConfigError` listing every problem.

    Without ``rules``, nothing is asked of the workers: for the one-shot commands, which
    check what they use when they use it. The daemon, and the commands that work as it does,
    load through :func:`recstore.workers.registry.load_settings`.
    """
    environ = os.environ if environ is None else environ
    raw = _read_yaml(Path(path)) if path is not None else {}
    problems: list[tuple[str, str]] = []
    _apply_env(raw, environ, problems)
    from_seed = _apply_seed_env(raw, environ)  # after: fills only what is still unset
    _resolve_files(raw, "", problems)
    _read_queues_file(raw, problems)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_name_seed_sources(problems + _problems_from(exc), from_seed)) from None
    if rules is not None:
        settings, found = rules(settings)
        problems += found
    problems += cross_checks(settings)
    if problems:
        raise ConfigError(_name_seed_sources(problems, from_seed))
    return settings


#: The Princeton archiver's (seeds 001/003) fixed choices, used with its variables below.
SEED_KALTURA_URL = "https://www.kaltura.com"


SEED_LDAP_BASE = "o=princeton university,c=us"


def _seed_doit(value: str, _: Mapping[str, str]) -> str:
    """`true` when it is exactly `true`, else `false` (as the seed's scripts read it)."""
    return "true" if value == "true" else "false"


def _seed_ldap_url(value: str, environ: Mapping[str, str]) -> str:
    """`ldaps://HOST:PORT`, PORT from `LDAP_PORT` or 636 (the seed's connection)."""
    return f"ldaps://{value}:{environ.get('LDAP_PORT') or 636}"


def _seed_ldap_user(value: str, _: Mapping[str, str]) -> str:
    """`uid=USER,o=princeton university,c=us` (the seed's bind DN)."""
    return f"uid={value},{SEED_LDAP_BASE}"


#: Seed 001/003's environment (``bash.rc``, ``csh.rc``, ``env.list``, ``src/envvars.py``):
#: variable → the keys it fills, each with how its value becomes the key's (None: as it is).
#: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` are not here: the AWS chain reads them.
SEED_ENV: dict[str, tuple[tuple[str, Any], ...]] = {
    "KALTURA_PARTNERID": (("kaltura.partnerId", None), ("kaltura.serviceUrl", SEED_KALTURA_URL)),
    "KALTURA_SECRET": (("kaltura.adminSecret", None),),
    "KALTURA_USERID": (("kaltura.userId", None),),
    "AWS_BUCKET": (("archive.bucket", None),),
    "PLACEHOLDER_VIDEO": (("archive.placeholderVideo", None),),
    "N_YEARS": (("workers.Archiver.unplayedFor", None), ("workers.Restorer.playedWithin", None)),
    "DOIT": (
        ("workers.Archiver.apply", _seed_doit),
        ("workers.Restorer.apply", _seed_doit),
    ),
    "LDAP_SERVER": (("ldap.urls", _seed_ldap_url), ("ldap.baseDn", SEED_LDAP_BASE)),
    "LDAP_USER": (("ldap.bindDn", _seed_ldap_user),),
    "LDAP_PWD": (("ldap.bindPassword", None),),
}


def _apply_seed_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Fill keys the YAML leaves unset from the seed's variables; key → variable used.

    The YAML wins over them and ``RECSTORE_*`` over both, so a file written for recstore is
    never changed by an old environment; an empty variable counts as unset, as in the seed.
    """
    used: dict[str, str] = {}
    for name, targets in SEED_ENV.items():
        value = environ.get(name, "")
        if not value:
            continue
        for key, convert in targets:
            *parents, leaf = key.split(".")
            node = raw
            for part in parents:
                child = node.get(_match_key(node, part))
                if child is None:
                    child = node[part] = {}
                if not isinstance(child, dict):
                    break  # a malformed section: validation names it
                node = child
            else:
                if _match_key(node, leaf) in node or _match_key(node, leaf + FILE_SUFFIX) in node:
                    continue
                if callable(convert):
                    node[leaf] = convert(value, environ)
                else:
                    node[leaf] = value if convert is None else convert
                used[key] = name
    return used


def _name_seed_sources(
    problems: list[tuple[str, str]], from_seed: Mapping[str, str]
) -> list[tuple[str, str]]:
    """A problem with a key filled from a seed variable names that variable too."""
    return [
        (key, f"{message} (from {from_seed[key]})" if key in from_seed else message)
        for key, message in problems
    ]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("config", f"cannot read {path}: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError([("config", f"{path} is not valid YAML{line}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([("config", f"{path} must hold a mapping of sections")])
    return data


def _read_queues_file(raw: dict[str, Any], problems: list[Any]) -> None:
    """Merge ``queuesFile`` (seed 004's topics.yml: queue name → URL) under ``queues``.

    The seed's own file is not in its documentation beyond "URLs of all AWS SQS queues are
    stored" there; a flat mapping is read, and so is one under a single top-level key (as
    ``topics:``). Names already in ``queues`` keep their value.
    """
    path = raw.get("queuesFile")
    if not isinstance(path, str) or not path:
        return
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(("queuesFile", f"cannot read {path}: {exc.strerror}"))
        return
    except yaml.YAMLError:
        problems.append(("queuesFile", f"{path} is not valid YAML"))
        return
    if isinstance(document, dict) and len(document) == 1:
        (inner,) = document.values()
        if isinstance(inner, dict):
            document = inner
    if not isinstance(document, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in document.items()
    ):
        problems.append(("queuesFile", f"{path} must map queue names to queue URLs"))
        return
    queues = raw.get("queues")
    if queues is None:
        queues = raw["queues"] = {}
    if isinstance(queues, dict):
        for name, url in document.items():
            queues.setdefault(name, url)


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str], problems: list[Any]) -> None:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        value = environ[name]
        segments = name[len(ENV_PREFIX) :].split("__")
        from_file = segments[-1].upper().endswith(FILE_SUFFIX)
        if from_file:
            segments[-1] = segments[-1][: -len(FILE_SUFFIX)]
        keys = _resolve_env_path(segments)
        if keys is None:
            problems.append((name, "names no configuration key"))
            continue
        target = raw
        for key in keys[:-1]:
            existing = _match_key(target, key)
            child = target.get(existing)
            if not isinstance(child, dict):
                child = target[existing] = {}
            target = child
        last = _match_key(target, keys[-1])
        if from_file:
            target.pop(last, None)
            target[last + FILE_SUFFIX] = value
        else:
            target[last] = value


def _resolve_env_path(segments: list[str]) -> list[str] | None:
    """Map case-insensitive env segments to YAML keys by walking the settings model."""
    model: type[BaseModel] | None = Settings
    keys: list[str] = []
    for segment in segments:
        if not segment:
            return None
        if model is None:  # inside a free mapping (queues, instances): keep as written
            keys.append(segment.lower())
            continue
        field_key, next_model = _find_field(model, segment)
        if field_key is None:
            return None
        keys.append(field_key)
        model = next_model
    return keys


def _find_field(model: type[BaseModel], segment: str) -> tuple[str | None, type[BaseModel] | None]:
    wanted = segment.lower()
    for name, info in model.model_fields.items():
        key = info.alias or name
        if wanted in (key.lower(), name.lower(), key.lower().replace("-", "_")):
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return key, annotation
            return key, None
    return None, None


def _match_key(mapping: dict[str, Any], key: str) -> str:
    for existing in mapping:
        if existing.lower() == key.lower():
            return existing
    return key


def _resolve_files(node: dict[str, Any], prefix: str, problems: list[Any]) -> None:
    for key in list(node):
        value = node[key]
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            _resolve_files(value, path + ".", problems)
        elif key.endswith(FILE_SUFFIX) and isinstance(value, str):
            target = key[: -len(FILE_SUFFIX)]
            try:
                content = Path(value).read_text(encoding="utf-8")
            except OSError as exc:
                problems.append((path, f"cannot read {value}: {exc.strerror}"))
                del node[key]  # reported once, not again as an unknown key
                continue
            del node[key]
            node[target] = content[:-1] if content.endswith("\n") else content


def _problems_from(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = _yaml_key(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (misspelled?)"
        problems.append((key, message))
    return problems


def _yaml_key(loc: tuple[int | str, ...]) -> str:
    """The YAML key an error is about. pydantic names a field by its alias where the input
    had it, and by its Python name where it checked a default (``validate_default``)."""
    model: type[BaseModel] | None = Settings
    keys: list[str] = []
    for part in loc:
        key, inner = _find_field(model, part) if model and isinstance(part, str) else (None, None)
        keys.append(key or str(part))
        model = inner if key else None  # past a free mapping or a list: as pydantic wrote it
    return ".".join(keys) or "config"


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The settings as YAML keys with every secret masked, for ``recstore config show``."""
    return settings.model_dump(mode="json", by_alias=True)
