#!/usr/bin/env bash
# Checks every manifest of Ops/kubernetes, without a cluster.
#
#   Ops/kubernetes/validate.sh              validate (exit 1 on any problem)
#   Ops/kubernetes/validate.sh --json OUT   write every manifest as JSON ({"file": [objects]})
#                                           for other checks (DeploymentManifestTests)
#
# What is checked, and how:
#  1. Kubernetes objects (every *.yaml here and in secrets/): kubernetes-validate (PyPI), strict
#     mode (unknown fields are errors), against the JSON schemas of Kubernetes $K8S_VERSION.
#  2. KEDA objects (keda/*.yaml): kubernetes-validate has no schema for KEDA's CRDs. They are
#     parsed with cloudcoil-models-keda (PyPI), pydantic models generated from KEDA's own CRDs
#     (version in its pin); a field the models do not know is an error (read back and compared).
#     A trigger's `metadata` is a free map of strings in KEDA's CRD, so no schema checks it:
#     its keys are checked here against the redis-streams parameters of KEDA's documentation
#     (REDIS_STREAMS_PARAMETERS below), and the scalingModifiers formula may only name the
#     ScaledObject's own triggers. What KEDA does with the values at run time is not checked.
#  3. Consistency, which no schema sees: 01-config.yaml is what render-config.sh makes of Ops/;
#     every Secret, ConfigMap (and key) and claim a Deployment mounts is defined here; selectors
#     match pod labels; named ports exist; KEDA scales Deployments that exist.
#
# The tools are pinned and installed into .pydeps-k8s/ at the repository root (not committed),
# once per change of the pins.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
deps="$root/.pydeps-k8s"

K8S_VERSION=1.32.0
# Every package, dependencies included, at an exact version (installed with --no-deps).
PINS=(
  kubernetes-validate==1.37.0
  cloudcoil==0.6.0
  cloudcoil-models-keda==2.16.1.0
  PyYAML==6.0.4
  jsonschema==4.26.0
  jsonschema-specifications==2025.9.1
  referencing==0.37.0
  rpds-py==2026.9.1
  attrs==26.1.0
  importlib_resources==7.1.0
  packaging==26.4
  typing_extensions==4.16.0
  pydantic==2.14.4
  pydantic_core==2.50.5
  annotated-types==0.8.0
  typing-inspection==0.4.5
  httpx==0.29.0
  httpcore==1.0.9
  h11==0.16.0
  anyio==4.16.0
  idna==3.20
  certifi==2026.10.19.post1
)

stamp="$deps/.radgrid-pins"
wanted=$(printf '%s\n' "$(python3 -c 'import sys; print(sys.version.split()[0])')" "${PINS[@]}")
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  echo "validate.sh: installing the pinned validators into .pydeps-k8s/" >&2
  rm -rf "$deps"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-script-location --no-deps \
    --target "$deps" "${PINS[@]}"
  printf '%s\n' "$wanted" > "$stamp"
fi
export PYTHONPATH="$deps" PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1

if [[ "${1:-}" == "--json" ]]; then
  out=${2:?usage: validate.sh --json OUT}
  python3 - "$here" "$out" <<'PY'
import json, pathlib, sys, yaml
here, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
files = {}
for path in sorted(here.rglob("*.yaml")):
    files[str(path.relative_to(here))] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
out.write_text(json.dumps(files, indent=1))
PY
  exit 0
fi

status=0
cd "$here"
mapfile -t core < <(find . -name '*.yaml' -not -path './keda/*' | sort)
mapfile -t keda < <(find ./keda -name '*.yaml' | sort)

echo "== kubernetes-validate --strict, Kubernetes $K8S_VERSION: ${#core[@]} files"
python3 -m kubernetes_validate --kubernetes-version "$K8S_VERSION" --strict --quiet "${core[@]}" || status=1

echo "== KEDA objects against cloudcoil-models-keda (KEDA's CRDs): ${#keda[@]} files; consistency"
render=$(mktemp)
trap 'rm -f "$render"' EXIT
"$here/render-config.sh" "$render"
python3 - "$here" "$render" <<'PY' || status=1
import pathlib, re, sys, yaml
from cloudcoil.models.keda import v1alpha1 as keda

here, rendered = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
problems = []

def load(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]

docs = {p.relative_to(here).as_posix(): load(p) for p in sorted(here.rglob("*.yaml"))}
objects = [(f, d) for f, ds in docs.items() for d in ds]
def named(kind):
    return {d["metadata"]["name"]: d for _, d in objects if d.get("kind") == kind}

# --- 2. KEDA ------------------------------------------------------------------------------
# Trigger metadata keys of the redis-streams and redis-cluster-streams scalers, as KEDA's
# documentation lists them (versions 2.11 to 2.16), and TriggerAuthentication parameters.
REDIS_STREAMS_PARAMETERS = {
    "address", "host", "port", "addresses", "hosts", "ports",
    "addressFromEnv", "hostFromEnv", "portFromEnv", "addressesFromEnv", "hostsFromEnv", "portsFromEnv",
    "usernameFromEnv", "passwordFromEnv", "stream", "consumerGroup", "pendingEntriesCount",
    "streamLength", "lagCount", "activationLagCount", "enableTLS", "unsafeSsl", "databaseIndex",
}
REDIS_AUTH_PARAMETERS = {"username", "password", "tls", "ca", "cert", "key", "keyPassword"}
MODELS = {"ScaledObject": keda.ScaledObject, "TriggerAuthentication": keda.TriggerAuthentication}

def unknown_fields(given, kept, path):
    """Fields of `given` that the model dropped (it ignores what its schema does not name)."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path]
        found = []
        for key, value in given.items():
            if key not in kept:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(value, kept[key], f"{path}.{key}")
        return found
    if isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [path]
        return [p for i, (a, b) in enumerate(zip(given, kept)) for p in unknown_fields(a, b, f"{path}[{i}]")]
    return []

keda_files = [f for f in docs if f.startswith("keda/")]
auths = {}
for f in keda_files:
    for d in docs[f]:
        where = f"{f}: {d.get('kind')}/{d.get('metadata', {}).get('name')}"
        if d.get("apiVersion") != "keda.sh/v1alpha1" or d.get("kind") not in MODELS:
            problems.append(f"{where}: not a KEDA ScaledObject or TriggerAuthentication")
            continue
        try:
            model = MODELS[d["kind"]].model_validate(d)
        except Exception as error:  # pydantic's ValidationError lists every field
            problems.append(f"{where}: {error}")
            continue
        kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
        problems += [f"{where}: unknown field {p}" for p in unknown_fields(d, kept, "")]
        if d["kind"] == "TriggerAuthentication":
            auths[d["metadata"]["name"]] = d
            for ref in d["spec"].get("secretTargetRef", []):
                if ref["parameter"] not in REDIS_AUTH_PARAMETERS:
                    problems.append(f"{where}: parameter {ref['parameter']} is not one of the Redis scalers'")
                secret = named("Secret").get(ref["name"])
                if secret is None or ref["key"] not in {**secret.get("data", {}), **secret.get("stringData", {})}:
                    problems.append(f"{where}: Secret {ref['name']} with key {ref['key']} is not in secrets/")
for f in keda_files:
    for d in docs[f]:
        if d.get("kind") != "ScaledObject":
            continue
        where = f"{f}: ScaledObject/{d['metadata']['name']}"
        spec = d["spec"]
        if spec["scaleTargetRef"]["name"] not in named("Deployment"):
            problems.append(f"{where}: scales {spec['scaleTargetRef']['name']}, which is no Deployment here")
        names = set()
        for trigger in spec["triggers"]:
            names.add(trigger.get("name"))
            if trigger["type"] not in ("redis-streams", "redis-cluster-streams"):
                problems.append(f"{where}: trigger type {trigger['type']} is not a Redis streams scaler")
            for key in trigger["metadata"]:
                if key not in REDIS_STREAMS_PARAMETERS:
                    problems.append(f"{where}: trigger {trigger.get('name')}: unknown metadata key {key}")
            if "lagCount" in trigger["metadata"] and "activationLagCount" not in trigger["metadata"]:
                problems.append(f"{where}: trigger {trigger.get('name')}: lagCount needs activationLagCount")
            ref = trigger.get("authenticationRef", {}).get("name")
            if ref and ref not in auths:
                problems.append(f"{where}: TriggerAuthentication {ref} is not defined in keda/")
        formula = spec.get("advanced", {}).get("scalingModifiers", {}).get("formula")
        if formula:
            for word in set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", formula)) - names:
                problems.append(f"{where}: the formula names {word}, which is no trigger")

# --- 3. Consistency -----------------------------------------------------------------------
if rendered.read_text() != (here / "01-config.yaml").read_text():
    problems.append("01-config.yaml is not what render-config.sh makes of Ops/ now: run Ops/kubernetes/render-config.sh")

config_maps, secrets, claims = named("ConfigMap"), named("Secret"), named("PersistentVolumeClaim")
deployments = named("Deployment")
for name, d in deployments.items():
    where = f"Deployment/{name}"
    pod = d["spec"]["template"]
    selector = d["spec"]["selector"]["matchLabels"]
    if any(pod["metadata"]["labels"].get(k) != v for k, v in selector.items()):
        problems.append(f"{where}: its selector does not match its pods' labels")
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    for v in volumes.values():
        if "secret" in v:
            source, known, key_of = v["secret"], secrets, lambda s: {**s.get("data", {}), **s.get("stringData", {})}
            ref = source["secretName"]
        elif "configMap" in v:
            source, known, key_of = v["configMap"], config_maps, lambda c: c.get("data", {})
            ref = source["name"]
        elif "persistentVolumeClaim" in v:
            if v["persistentVolumeClaim"]["claimName"] not in claims:
                problems.append(f"{where}: claim {v['persistentVolumeClaim']['claimName']} is not defined")
            continue
        else:
            continue
        if ref not in known:
            problems.append(f"{where}: volume {v['name']} names {ref}, which is not defined")
            continue
        for item in source.get("items", []):
            if item["key"] not in key_of(known[ref]):
                problems.append(f"{where}: volume {v['name']}: {ref} has no key {item['key']}")
    for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problems.append(f"{where}: container {c['name']} mounts {m['name']}, which is no volume")
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ref["key"] not in config_maps.get(ref["name"], {}).get("data", {}):
                problems.append(f"{where}: env {e['name']} names {ref['name']}/{ref['key']}, which is not defined")

def pods_selected(selector):
    return [d for d in deployments.values()
            if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())]
for name, s in named("Service").items():
    selected = pods_selected(s["spec"]["selector"])
    if not selected:
        problems.append(f"Service/{name}: selects no Deployment's pods")
    for port in s["spec"]["ports"]:
        target = port.get("targetPort")
        if isinstance(target, str):
            named_ports = {p.get("name") for d in selected for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
            if target not in named_ports:
                problems.append(f"Service/{name}: no selected pod has a port named {target}")
for name, p in named("PodDisruptionBudget").items():
    if len(pods_selected(p["spec"]["selector"]["matchLabels"])) != 1:
        problems.append(f"PodDisruptionBudget/{name}: does not select exactly one Deployment's pods")

for p in problems:
    print("ERROR", p)
scaled = sum(1 for f in keda_files for d in docs[f] if d.get("kind") == "ScaledObject")
print(f"{len(objects)} objects read, {scaled} ScaledObjects checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
PY

if [[ $status -ne 0 ]]; then
  echo "validate.sh: FAILED" >&2
else
  echo "validate.sh: all manifests valid"
fi
exit $status
