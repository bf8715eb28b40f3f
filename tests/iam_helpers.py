"""The AWS permissions each deployment role needs, worked out from the code.

The IAM policies in ``deploy/iam/`` are written by hand for operators to read; this module
derives the same lists from the source, so a test fails when a client starts calling an S3 or
SQS operation (or a worker starts using a client method) that the documented policy of its
role does not allow, or when a policy allows what no code calls.

How: ``recstore/clients/s3.py`` and ``sqs.py`` are the only modules that call aiobotocore
(``config_fetch`` aside, which only the container entrypoint's one-shot fetch uses). Each of
their functions is mapped to the botocore operations it calls, directly or through the file's
other functions. A role's worker modules, and every recstore module they import, are searched
for calls of those methods; each operation found is mapped to the IAM action that authorizes
it (AWS's Service Authorization Reference: multipart uploads and HEAD are authorized as
s3:PutObject and s3:GetObject, SendMessageBatch as sqs:SendMessage).
"""

from __future__ import annotations

import ast

from botocore import xform_name
from botocore.session import get_session

from tests.conftest import ROOT

PACKAGE = ROOT / "recstore"
CLIENTS = {"s3": PACKAGE / "clients" / "s3.py", "sqs": PACKAGE / "clients" / "sqs.py"}

#: botocore operation (snake case) -> the IAM action that authorizes it.
IAM_ACTION = {
    "head_object": "s3:GetObject",
    "get_object": "s3:GetObject",
    "put_object": "s3:PutObject",
    "create_multipart_upload": "s3:PutObject",
    "upload_part": "s3:PutObject",
    "complete_multipart_upload": "s3:PutObject",
    "abort_multipart_upload": "s3:AbortMultipartUpload",
    "restore_object": "s3:RestoreObject",
    "delete_object": "s3:DeleteObject",
    "list_objects_v2": "s3:ListBucket",
    "receive_message": "sqs:ReceiveMessage",
    "delete_message": "sqs:DeleteMessage",
    "change_message_visibility": "sqs:ChangeMessageVisibility",
    "send_message": "sqs:SendMessage",
    "send_message_batch": "sqs:SendMessage",
    "get_queue_attributes": "sqs:GetQueueAttributes",
}

#: Each role of deploy/ (its RECSTORE_WORKERS) -> the modules its workers run that hold an S3 or
#: SQS client object, and which: these are searched for calls of the clients' methods.
ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "pool": {  # FileTransferer, ArchiveActions (and the queue-depth sampler they start)
        "workers/file_transferer.py": ("s3", "sqs"),
        "transfer/transferer.py": ("s3",),
        "transfer/pipeline.py": ("s3",),
        "workers/queue_consumer.py": ("sqs",),
        "runtime/queue_depth.py": ("sqs",),
        "workers/archive_actions.py": ("s3", "sqs"),
        "workers/archive_context.py": ("s3",),
        "archive/actions.py": ("s3",),
        "workers/leases.py": ("s3",),  # per-entry locks of applied archive actions
        "workers/accounts.py": ("s3",),  # records the instances it served, beside the leases
        "transfer/channels.py": ("s3",),  # open upload channel records, under the lease prefix
        "workers/resources.py": ("s3", "sqs"),  # opens the shared clients, calls nothing
    },
    "singletons": {  # DracoonGlobalSharer, VidyoSync, Archiver, Restorer
        "workers/periodic.py": ("s3",),
        "workers/leases.py": ("s3",),  # the job leases
        "workers/archiver.py": ("s3", "sqs"),  # the Archiver's and Restorer's planner
        "workers/archive_context.py": ("s3",),
        "archive/inventory.py": ("s3",),
        "archive/plan.py": ("sqs",),
        "workers/global_sharer.py": ("s3",),  # reads the served instances, beside the leases
        "workers/accounts.py": ("s3",),
        "workers/resources.py": ("s3", "sqs"),
    },
}
#: Modules that name an S3 or SQS client but run in no daemon role: CLI commands, types only.
NOT_IN_A_ROLE = {
    "cli/main.py": "enqueue, dlq: run by an operator with their own credentials",
    "runtime/dead_letters.py": "recstore dlq list/redrive",
    "clients/dracoon_uploads.py": "S3's part-size rules for DRACOON's own S3 uploads; no AWS call",
    "archive/health.py": "reads ObjectInfo values it is handed",
}
#: What marks a module as one that handles S3 or SQS client objects.
CLIENT_MARKERS = ("S3Store", "SqsQueue", "clients.s3", "clients.sqs", "send_batch")


def service_operations(service: str) -> set[str]:
    model = get_session().get_service_model(service)
    return {xform_name(name) for name in model.operation_names}


def _calls(node: ast.AST) -> set[str]:
    """Names called in ``node``: ``f(...)`` gives f, ``x.f(...)`` gives f; string arguments
    too, for ``generate_presigned_url("get_object", ...)`` and ``get_paginator("list_...")``."""
    names: set[str] = set()
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        if isinstance(call.func, ast.Attribute):
            names.add(call.func.attr)
        elif isinstance(call.func, ast.Name):
            names.add(call.func.id)
        for arg in call.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
    return names


def client_methods(service: str) -> dict[str, set[str]]:
    """Each function of the client module (by name) -> the botocore operations it reaches."""
    tree = ast.parse(CLIENTS[service].read_text(encoding="utf-8"))
    functions: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.setdefault(node.name, set()).update(_calls(node))
    known = service_operations(service)
    reached: dict[str, set[str]] = {}
    for name in functions:
        seen, todo = {name}, [name]
        while todo:
            for called in functions[todo.pop()]:
                if called in functions and called not in seen:
                    seen.add(called)
                    todo.append(called)
        reached[name] = {op for fn in seen for op in functions[fn] if op in known}
    return reached


def client_modules() -> set[str]:
    """Every recstore module (the clients and the dev stack aside) that handles a client."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = str(path.relative_to(PACKAGE))
        if relative.startswith("devstack/") or path in CLIENTS.values():
            continue
        if any(marker in path.read_text(encoding="utf-8") for marker in CLIENT_MARKERS):
            found.add(relative)
    return found


def role_actions(role: str) -> dict[str, set[str]]:
    """IAM action -> the modules whose calls need it, for one role."""
    methods = {service: client_methods(service) for service in CLIENTS}
    needed: dict[str, set[str]] = {}
    for module, services in ROLES[role].items():
        called = _calls(ast.parse((PACKAGE / module).read_text(encoding="utf-8")))
        for service in services:
            for name in called & methods[service].keys():
                for op in methods[service][name]:
                    needed.setdefault(IAM_ACTION[op], set()).add(module)
    return needed


def config_fetch_actions() -> set[str]:
    """What ``recstore config fetch`` (the entrypoint's RECSTORE_CONFIG_S3_URI) calls."""
    tree = ast.parse((PACKAGE / "runtime/config_fetch.py").read_text(encoding="utf-8"))
    return {IAM_ACTION[op] for op in _calls(tree) & service_operations("s3")}
