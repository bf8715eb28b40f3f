"""Reading the deployment files of ``deploy/`` in tests.

``kustomize build`` is not to be had here (Debian 12 has no kustomize package; PyPI's
``kustomize`` is a third-party Python reimplementation, not the binary), so
:func:`kustomize_build` renders the base and overlays itself, for the subset of Kustomize
that ``deploy/kubernetes/`` uses: ``resources`` (files and folders), ``namespace``,
``labels`` (metadata only), ``images`` and ``patches`` given as strategic-merge files (maps
merged key by key, lists of named items merged by ``name``, other lists replaced). A
kustomization field outside that subset fails the render, so the overlay cannot use one
without the test noticing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}

Manifest = dict[str, Any]


def load_all(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomize_build(folder: Path) -> list[Manifest]:
    """The manifests ``kustomize build folder`` would print (for the subset above)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(spec) - SUPPORTED
    assert not unknown, f"{folder}: kustomization fields this render does not know: {unknown}"
    manifests: list[Manifest] = []
    for resource in spec.get("resources", []):
        path = (folder / resource).resolve()
        manifests += kustomize_build(path) if path.is_dir() else load_all(path)
    for patch in spec.get("patches", []):
        assert set(patch) == {"path"}, f"{folder}: only file patches are rendered: {patch}"
        for doc in load_all(folder / patch["path"]):
            target = _find(manifests, doc["kind"], doc["metadata"]["name"])
            _merge(target, copy.deepcopy(doc))
    for manifest in manifests:
        if "namespace" in spec:
            manifest["metadata"]["namespace"] = spec["namespace"]
        for label in spec.get("labels", []):
            manifest["metadata"].setdefault("labels", {}).update(label["pairs"])
        for image in spec.get("images", []):
            for container in containers(manifest):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return manifests


def _find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    for manifest in manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    raise AssertionError(f"a patch names {kind}/{name}, which no resource is")


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge, as far as these files need it."""
    if isinstance(base, dict) and isinstance(patch, dict):
        for key, value in patch.items():
            base[key] = _merge(base[key], value) if key in base else value
        return base
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(item, dict) and "name" in item for item in base + patch)
    ):
        merged = {item["name"]: item for item in base}
        for item in patch:
            merged[item["name"]] = _merge(merged.get(item["name"], {}), item)
        return list(merged.values())
    return patch


def containers(manifest: Manifest) -> list[dict[str, Any]]:
    if manifest["kind"] != "Deployment":
        return []
    return list(manifest["spec"]["template"]["spec"]["containers"])


def by_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}
