"""Deployment files parse and hold what they promise: the Kubernetes manifests
(YAML: PyYAML when present, else a structural check), the JSON examples, the
example environment files (systemd's EnvironmentFile syntax, one JSON value
intact), and the example prometheus.yml (promtool check config)."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

root = os.path.join(os.environ.get("TEST_SRCDIR", "."), os.environ.get("TEST_WORKSPACE", "weft"), "deploy")
failures = []


def check(cond, what):
    print(("PASS: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


try:
    import yaml
except ImportError:  # Debian: python3-yaml
    yaml = None


def documents(path):
    text = open(path).read()
    check("\t" not in text, f"{path}: no tabs")
    if yaml is not None:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    # Structural fallback: every document names apiVersion, kind and metadata.name.
    docs = []
    for chunk in re.split(r"^---\s*$", text, flags=re.M):
        body = "\n".join(l for l in chunk.splitlines() if not l.lstrip().startswith("#")).strip()
        if not body:
            continue
        kind = re.search(r"^kind:\s*(\S+)", body, re.M)
        name = re.search(r"^metadata:\n(?:  .*\n)*?  name:\s*(\S+)", body + "\n", re.M)
        docs.append({"kind": kind.group(1) if kind else None,
                     "apiVersion": (re.search(r"^apiVersion:\s*(\S+)", body, re.M) or [None, None])[1],
                     "metadata": {"name": name.group(1) if name else None}, "_text": body})
    return docs


print("YAML parser:", "PyYAML " + yaml.__version__ if yaml else "structural fallback (install python3-yaml)")
objects = {}
for path in sorted(glob.glob(os.path.join(root, "kubernetes", "*.yaml"))):
    for d in documents(path):
        ok = bool(d.get("apiVersion")) and bool(d.get("kind")) and bool((d.get("metadata") or {}).get("name"))
        check(ok, f"{os.path.basename(path)}: {d.get('kind')}/{(d.get('metadata') or {}).get('name')} has apiVersion, kind, name")
        objects[(d.get("kind"), (d.get("metadata") or {}).get("name"))] = d

for want in [("Namespace", "weft-system"), ("ServiceAccount", "weft-controller"), ("StatefulSet", "weft-controller"),
             ("Service", "weft-controller"), ("PodDisruptionBudget", "weft-controller"), ("DaemonSet", "weft-agent"),
             ("ServiceAccount", "weft-agent"), ("ConfigMap", "weft-network")]:
    check(want in objects, f"manifests define {want[0]}/{want[1]}")

if yaml is not None and ("StatefulSet", "weft-controller") in objects and ("DaemonSet", "weft-agent") in objects:
    sts = objects[("StatefulSet", "weft-controller")]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    check(sts["spec"]["replicas"] == 1, "controller: one replica with the embedded store")
    check(sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data", "controller: a PVC for the store")
    check(all(c.get(p, {}).get("httpGet", {}).get("port") == 7801 for p in ("livenessProbe", "readinessProbe")),
          "controller: HTTP liveness and readiness probes (the gRPC port requires a client certificate)")
    check("requests" in c.get("resources", {}), "controller: resource requests")
    svc_ports = {p["name"]: p["port"] for p in objects[("Service", "weft-controller")]["spec"]["ports"]}
    check(svc_ports == {"grpc": 7800, "metrics": 7801}, "Service: gRPC and metrics ports")
    env = {e["name"]: e.get("value") for e in c["env"]}
    check(env.get("WEFT_DATA_DIR") == c["volumeMounts"][0]["mountPath"], "controller: the data dir is the PVC")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    secret = {v["name"]: v.get("secret", {}).get("secretName") for v in sts["spec"]["template"]["spec"]["volumes"]}
    check(all(env.get(k, "").startswith(mounts.get("tls", "?") + "/")
              for k in ("WEFT_TLS_CERT_FILE", "WEFT_TLS_KEY_FILE", "WEFT_TLS_CLIENT_CA_FILE"))
          and secret.get("tls") == "weft-controller-tls", "controller: TLS files from the weft-controller-tls Secret")
    sel = sts["spec"]["selector"]["matchLabels"]
    check(objects[("PodDisruptionBudget", "weft-controller")]["spec"]["selector"]["matchLabels"] == sel,
          "PDB selects the controller")
    check(objects[("Service", "weft-controller")]["spec"]["selector"] == sel, "Service selects the controller")
    ds = objects[("DaemonSet", "weft-agent")]["spec"]["template"]["spec"]
    a = ds["containers"][0]
    check(ds.get("hostNetwork") is True, "agent: host network")
    check(set(a["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}, "agent: NET_ADMIN and NET_RAW")
    check(any(v.get("hostPath", {}).get("path") == "/run/flannel" for v in ds["volumes"]), "agent: /run/flannel hostPath")
    aenv = {e["name"]: e for e in a["env"]}
    amounts = {m["name"]: m["mountPath"] for m in a["volumeMounts"]}
    check(all(aenv.get(k, {}).get("value", "").startswith(amounts.get("pki", "?") + "/")
              for k in ("WEFT_CONTROLLER_CA_FILE", "WEFT_CONTROLLER_CERT_FILE", "WEFT_CONTROLLER_KEY_FILE"))
          and any(v.get("hostPath", {}).get("path") == "/etc/weft/pki" for v in ds["volumes"]),
          "agent: node certificate from the host's /etc/weft/pki")
    check("$(WEFT_CONTROLLER_SERVICE_HOST)" in aenv["WEFT_CONTROLLER"]["value"]
          and ds.get("enableServiceLinks", True), "agent: controller address from the Service's variables")
    cm = objects[("ConfigMap", "weft-network")]["data"]["net-conf.json"]
    check(json.loads(cm).get("Network") == "10.244.0.0/16", "ConfigMap: net-conf.json is JSON")

for path in sorted(glob.glob(os.path.join(root, "examples", "*.json"))):
    try:
        cfg = json.load(open(path))
        check("Network" in cfg and "Type" in cfg.get("Backend", {}), f"{os.path.basename(path)}: a network config")
    except ValueError as e:
        check(False, f"{os.path.basename(path)}: JSON ({e})")


def env_file(path):
    """systemd's EnvironmentFile= syntax, for the lines this project writes:
    KEY=value, KEY='value' or KEY="value"; quotes inside an unquoted value would
    be eaten by systemd."""
    out = {}
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", line)
        check(m is not None, f"{path}:{n}: KEY=value")
        if not m:
            continue
        v = m.group(2)
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        else:
            check('"' not in v and "'" not in v, f"{path}:{n}: quotes inside an unquoted value")
        out[m.group(1)] = v
    return out


for path in sorted(glob.glob(os.path.join(root, "examples", "*.env")) + glob.glob(os.path.join(root, "default", "*"))):
    env = env_file(path)
    check(all(k.startswith("WEFT_") for k in env), f"{os.path.basename(path)}: only WEFT_* flags")
    if "WEFT_INITIAL_CONFIG" in env:
        check("Network" in json.loads(env["WEFT_INITIAL_CONFIG"]), f"{os.path.basename(path)}: WEFT_INITIAL_CONFIG is JSON")

# Every WEFT_* variable the manifests, units and default files set names a flag
# the binary really has (WEFT_TLS_CERT_FILE -> --tls_cert_file in --helpfull).
runfiles = os.path.join(os.environ.get("TEST_SRCDIR", ""), os.environ.get("TEST_WORKSPACE", "weft"))
binaries = {"weft-controller": os.path.join(runfiles, "controller", "weft-controller"),
            "weft-agent": os.path.join(runfiles, "agent", "weft-agent")}
helps = {}
for name, path in binaries.items():
    if os.access(path, os.X_OK):
        r = subprocess.run([path, "--helpfull"], capture_output=True, text=True)
        helps[name] = r.stdout + r.stderr
check(len(helps) == 2, "the controller and agent binaries are in the runfiles")
sources = {"weft-controller": [os.path.join(root, "kubernetes", "controller.yaml"),
                               os.path.join(root, "systemd", "weft-controller.service"),
                               os.path.join(root, "default", "weft-controller")],
           "weft-agent": [os.path.join(root, "kubernetes", "agent.yaml"),
                          os.path.join(root, "systemd", "weft-agent.service"),
                          os.path.join(root, "default", "weft-agent")]}
for name, paths in sources.items():
    if name not in helps:
        continue
    for path in paths:
        for var in sorted(set(re.findall(r"\b(WEFT_[A-Z0-9_]+)", open(path).read()))):
            if var.endswith("_") or var in ("WEFT_CONTROLLER_SERVICE_HOST", "WEFT_CONTROLLER_SERVICE_PORT_GRPC"):
                continue  # Kubernetes' Service variables, not flags
            flag = "--" + var[len("WEFT_"):].lower()
            check(re.search(re.escape(flag) + r"\b", helps[name]) is not None,
                  f"{os.path.basename(path)}: {var} is a flag of {name} ({flag})")

promtool = shutil.which("promtool")
check(promtool is not None, "promtool is installed")
if promtool:
    r = subprocess.run([promtool, "check", "config", os.path.join(root, "prometheus", "prometheus.yml")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "deploy/prometheus/prometheus.yml: promtool check config" + (r.stdout + r.stderr if r.returncode else ""))
    r = subprocess.run([promtool, "check", "rules", os.path.join(root, "prometheus", "alerts.yml")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "deploy/prometheus/alerts.yml: promtool check rules" + (r.stdout + r.stderr if r.returncode else ""))

print(f"manifests: {len(failures)} failed" if failures else "manifests: all checks passed")
sys.exit(1 if failures else 0)
