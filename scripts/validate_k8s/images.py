"""Every image is pinned (a tag other than latest, or a digest): the containers of every pod
spec, Strimzi's spec.image and build output, WasmPlugin URLs, the Dockerfiles' base images and
the images scripts/kind-up.sh names."""

from __future__ import annotations

import re

from .common import ROOT, Report, ident
from .k8s import containers, pod_templates
from .mesh import PROXY


IMAGE_RE = re.compile(r"^(?P<repo>[^@\s]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


def pinned(image: str) -> bool:
    image = image.removeprefix("oci://")
    m = IMAGE_RE.match(image)
    if not m:
        return False
    if m.group("digest"):
        return True
    last = m.group("repo").rsplit("/", 1)[-1]
    return bool(m.group("tag")) and m.group("tag") != "latest" and ":" not in last


def images_of(obj: dict) -> list[tuple[str, str]]:
    out = []
    for _, podspec in pod_templates(obj):
        for c in containers(podspec):
            if c.get("name") == PROXY and c.get("image") == "auto":
                continue  # Istio's injector puts its proxy image there (pkg/kube/inject/webhook.go, AutoImage)
            out.append((f"container {c.get('name')}", str(c.get("image", ""))))
    spec = obj.get("spec") or {}
    if obj.get("kind") in ("KafkaConnect", "KafkaBridge", "Kafka") and spec.get("image"):
        out.append(("spec.image", spec["image"]))
    if obj.get("kind") == "KafkaConnect" and spec.get("build"):
        out.append(("spec.build.output.image", spec["build"]["output"]["image"]))
    if obj.get("kind") == "WasmPlugin":
        out.append(("spec.url", spec.get("url", "")))
    return out


def check_images(report: Report, label: str, objects: list[dict]) -> None:
    for o in objects:
        for where, image in images_of(o):
            report.check(pinned(image), f"{label}: {ident(o)} {where} {image!r} is pinned", "needs a tag other than latest, or a digest")


def check_dockerfiles(report: Report) -> None:
    for f in sorted((ROOT / "docker").glob("*Dockerfile")):
        text = f.read_text()
        args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
        for base in re.findall(r"^FROM (\S+)", text, re.M):
            if base == "scratch":
                continue
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), base)
            report.check(pinned(image), f"{f.relative_to(ROOT)}: base image {image!r} is pinned", "needs a tag other than latest, or a digest")
    for var, image in re.findall(r"^(\w+_IMAGE)=(\S+)$", (ROOT / "scripts/kind-up.sh").read_text(), re.M):
        report.check(pinned(image), f"scripts/kind-up.sh: {var}={image} is pinned")
