"""deploy/validate.py passes on the committed files and fails on deliberately broken copies."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _load_validator():
    for mod in ("helm_python", "kubernetes_validate", "jsonpatch", "jsonschema"):
        if importlib.util.find_spec(mod) is None:
            pytest.fail(f"{mod} missing: install the deploy extra (pip install -e '.[deploy]')")
    if importlib.util.find_spec("dask_kubernetes") is None:
        pytest.fail(
            "dask-kubernetes missing: install the deploy extra (pip install -e '.[deploy]')"
        )
    spec = importlib.util.spec_from_file_location(
        "gdask_deploy_validate", REPO / "deploy" / "validate.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


validate = _load_validator()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of everything the validator reads."""
    dst = tmp_path / "repo"
    dst.mkdir()
    shutil.copy2(REPO / "docker-compose.yml", dst)
    shutil.copytree(REPO / "deploy", dst / "deploy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "helm", dst / "helm")
    return dst


def _edit(path: Path, fn) -> None:
    path.write_text(fn(path.read_text()))


def _edit_yaml(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _fails(root: Path, only: str, *needles: str) -> list[str]:
    rep = validate.run(root, {only})
    assert rep.failures, f"broken {only} passed validation"
    text = "\n".join(rep.failures)
    for n in needles:
        assert n in text, text
    return rep.failures


def test_committed_files_pass():
    rep = validate.run(validate.ROOT)
    assert rep.failures == []


def test_cli_exit_status(root):
    assert validate.main(["--root", str(root), "--only", "compose"]) == 0
    _edit(
        root / "docker-compose.yml",
        lambda s: s.replace("replicas: ${GDASK_WORKERS:-2}", "replicas: two"),
    )
    assert validate.main(["--root", str(root), "--only", "compose"]) == 1


# ----------------------------------------------------------------------------- compose


def test_compose_wrong_type_fails(root):
    _edit(
        root / "docker-compose.yml",
        lambda s: s.replace("replicas: ${GDASK_WORKERS:-2}", "replicas: two"),
    )
    _fails(root, "compose", "docker-compose config failed", "replicas")


def test_compose_unknown_key_fails(root):
    _edit(
        root / "docker-compose.yml",
        lambda s: s.replace(
            "  worker:\n    <<: *gdask\n", "  worker:\n    <<: *gdask\n    replica: 3\n"
        ),
    )
    _fails(root, "compose", "docker-compose config failed", "replica")


def test_compose_public_port_fails(root):
    _edit(
        root / "docker-compose.yml",
        lambda s: s.replace('"127.0.0.1:${GDASK_DASHBOARD_PORT:-8787}:8787"', '"8787:8787"'),
    )
    _fails(root, "compose", "must bind 127.0.0.1 only")


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_unpinned_base_fails(root):
    _edit(
        root / "deploy" / "Dockerfile",
        lambda s: re.sub(r"ARG PYTHON_IMAGE=\S+", "ARG PYTHON_IMAGE=python:3.11-slim", s),
    )
    _fails(root, "dockerfile", "must be pinned")


def test_dockerfile_root_user_fails(root):
    _edit(root / "deploy" / "Dockerfile", lambda s: s.replace("USER 10001:10001", "USER root"))
    _fails(root, "dockerfile", "non-root USER")


# ----------------------------------------------------------------------------- helm


def test_helm_values_wrong_type_fails(root):
    _edit_yaml(
        root / "helm" / "gdask" / "values.yaml", lambda v: v["worker"].update(replicas="two")
    )
    _fails(root, "helm", "replicas")


def test_helm_values_unknown_key_fails(root):
    _edit_yaml(root / "helm" / "gdask" / "values.yaml", lambda v: v["worker"].update(replica=3))
    _fails(root, "helm", "replica")


def test_helm_values_unknown_top_level_key_fails(root):
    _edit_yaml(
        root / "helm" / "gdask" / "values.yaml", lambda v: v.update(schedular={"resources": {}})
    )
    _fails(root, "helm", "schedular")


def test_helm_insecure_values_fail(root):
    _edit_yaml(
        root / "helm" / "gdask" / "values.yaml",
        lambda v: v["containerSecurityContext"].update(allowPrivilegeEscalation=True),
    )
    _fails(root, "helm", "allowPrivilegeEscalation")


def test_helm_template_with_invalid_manifest_fails(root):
    # a template producing a field Kubernetes does not know: caught by kubernetes-validate --strict
    _edit(
        root / "helm" / "gdask" / "templates" / "scheduler-service.yaml",
        lambda s: s.replace("  type: ClusterIP\n", "  type: ClusterIP\n  externalPort: 80\n"),
    )
    _fails(root, "helm", "externalPort")


def test_helm_template_refuses_plain_tcp_unless_acknowledged():
    """Without TLS the chart renders only with tls.allowPlainTCP=true; the error says what to set."""
    import helm_python as helm

    chart = helm.Chart.load(str(REPO / "helm" / "gdask"))
    for values in ({}, {"tls": {"enabled": False}}):
        with pytest.raises(helm.HelmError, match="tls.allowPlainTCP=true") as err:
            chart.render(values, name="gdask", namespace="gdask", is_install=True)
        assert "tls.enabled=true" in str(err.value)
    for values in (validate.PLAIN_TCP_ACK, {"tls": {"enabled": True, "secretName": "s"}}):
        assert chart.render(values, name="gdask", namespace="gdask", is_install=True)


def test_helm_chart_without_the_plain_tcp_guard_fails(root):
    _edit(
        root / "helm" / "gdask" / "templates" / "scheduler-deployment.yaml",
        lambda s: s.replace('{{- include "gdask.requireTLS" . }}\n', ""),
    )
    _fails(root, "helm", "plain-tcp-unacknowledged", "rendered plain TCP")


# ----------------------------------------------------------------------------- DaskJob / kustomize


def test_daskjob_wrong_type_fails(root):
    _edit(
        root / "deploy" / "k8s" / "base" / "daskjob.yaml",
        lambda s: s.replace("replicas: 2", "replicas: two"),
    )
    _fails(root, "k8s", "DaskJob/gdask-run", "replicas")


def test_daskjob_unknown_key_fails(root):
    _edit(
        root / "deploy" / "k8s" / "base" / "daskjob.yaml",
        lambda s: s.replace(
            "  cluster:\n    spec:\n", "  cluster:\n    spec:\n      workers: 3\n", 1
        ),
    )
    _fails(root, "k8s", "DaskJob/gdask-run", "workers")


def test_daskjob_unknown_container_field_fails(root):
    _edit(
        root / "deploy" / "k8s" / "base" / "daskjob.yaml",
        lambda s: s.replace(
            "imagePullPolicy: IfNotPresent",
            "imagePullPolicy: IfNotPresent\n          pullSecret: x",
            1,
        ),
    )
    _fails(root, "k8s", "pullSecret")


def test_overlay_patch_error_fails(root):
    _edit(
        root / "deploy" / "k8s" / "overlays" / "tls" / "tls-patch.yaml",
        lambda s: s.replace("/spec/job/spec/volumes/-", "/spec/job/spec/volumez/-"),
    )
    _fails(root, "k8s", "overlays/tls")


def test_networkpolicy_wrong_type_fails(root):
    _edit(
        root / "deploy" / "k8s" / "base" / "networkpolicy.yaml",
        lambda s: s.replace("{port: 53, protocol: UDP}", "{port: 53, protocol: [UDP]}"),
    )
    _fails(root, "k8s", "NetworkPolicy/gdask-run")


def test_builtin_kustomize_without_kubectl(root, monkeypatch):
    """Where kubectl is absent the built-in renderer is used, and still catches errors."""
    monkeypatch.setattr(validate.shutil, "which", lambda name: None)
    rep = validate.run(root, {"k8s"})
    assert rep.failures == [] and any("built-in kustomize" in n for n in rep.notes)
    _edit(
        root / "deploy" / "k8s" / "base" / "daskjob.yaml",
        lambda s: s.replace("replicas: 2", "replicas: two"),
    )
    _fails(root, "k8s", "replicas")


def test_analysis_copies_must_agree(root):
    _edit(
        root / "deploy" / "k8s" / "base" / "analysis.yaml",
        lambda s: s.replace("nbin: 12", "nbin: 13"),
    )
    _fails(root, "consistency", "exact copy of deploy/analysis.yaml")
