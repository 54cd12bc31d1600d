"""Consistency checks across deploy/ that the schema validators cannot express.

Run by deploy/validate with the tools' virtualenv (PyYAML comes with kubernetes-validate):

    python crosscheck.py DEPLOY_DIR REPO_ROOT            # everything below
    python crosscheck.py --rules-fallback RULES_FILE SCHEMA   # when promtool is missing

It reads the code (crates/rollcall/src/config.rs, serve.rs) only to learn the configuration
variables and roles that exist, so that a misspelt ROLLCALL_* variable, which rollcall would
silently ignore, fails here instead. Prints one line per finding; exits 1 if anything failed.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

FAILURES: list[str] = []
NOTES: list[str] = []


def fail(where: str, message: str) -> None:
    FAILURES.append(f"{where}: {message}")


def note(message: str) -> None:
    NOTES.append(message)


# ---------------------------------------------------------------------------------------------
# What the code knows.

# The metric names rollcall records today, and those announced for the operations work
# (histograms are used with their _bucket/_sum/_count series). Alert rules may use only these.
KNOWN_METRICS = {
    "rollcall_webhooks_received_total",
    "rollcall_webhooks_accepted_total",
    "rollcall_webhooks_rejected_total",
    "rollcall_webhooks_duplicates_total",
    "rollcall_event_log_ids_read_total",
    "rollcall_events_processed_total",
    "rollcall_event_attempts_total",
    "rollcall_event_retries_total",
    "rollcall_events_dead_lettered_total",
    "rollcall_dead_letters_stored_total",
    "rollcall_replays_total",
    "rollcall_invitations_sent_total",
    "rollcall_invitations_failed_total",
    "rollcall_invitation_retries_total",
    "rollcall_ingress_request_duration_seconds",
    "rollcall_event_processing_seconds",
    "rollcall_queue_publish_confirms_total",
    "rollcall_queue_publish_failures_total",
    "rollcall_queue_depth",
    "rollcall_db_pool_connections",
}
HISTOGRAMS = {"rollcall_ingress_request_duration_seconds", "rollcall_event_processing_seconds"}

LISTENER_PORT_ROLE = {8080: "ingress", 8081: "admin"}


def config_variables(root: Path) -> set[str] | None:
    """ROLLCALL_* variables rollcall reads: the KEYS list of config.rs, else README's table."""
    config = root / "crates/rollcall/src/config.rs"
    if config.is_file():
        match = re.search(r"const KEYS: &\[&str\] = &\[(.*?)\];", config.read_text(), re.S)
        if match:
            keys = re.findall(r'"([a-z0-9_]+)"', match.group(1))
            if keys:
                return {f"ROLLCALL_{key.upper()}" for key in keys}
    readme = root / "README.md"
    if readme.is_file():
        found = set(re.findall(r"^\| `(ROLLCALL_[A-Z0-9_]+)` \|", readme.read_text(), re.M))
        if found:
            note("configuration variables taken from README.md (KEYS not found in config.rs)")
            return found
    return None


def roles(root: Path) -> set[str]:
    serve = root / "crates/rollcall/src/serve.rs"
    if serve.is_file():
        match = re.search(r"enum Role \{(.*?)\}", serve.read_text(), re.S)
        if match:
            found = {name.lower() for name in re.findall(r"^\s*([A-Z][A-Za-z]+),", match.group(1), re.M)}
            if found:
                return found
    return {"ingress", "worker", "admin"}


def metrics_in_code(root: Path) -> set[str]:
    names: set[str] = set()
    for path in (root / "crates").rglob("*.rs"):
        names.update(re.findall(r'"(rollcall_[a-z0-9_]+)"', path.read_text(errors="replace")))
    return names


# ---------------------------------------------------------------------------------------------
# Helpers.


def load_yaml_documents(path: Path) -> list[dict]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def command_roles(command: list[str]) -> tuple[bool, set[str]]:
    """Whether a rollcall command line is `serve`, and the roles it runs (all when none given)."""
    if not command or command[0] != "serve":
        return False, set()
    given = {command[i + 1] for i, arg in enumerate(command[:-1]) if arg == "--role"}
    return True, given or {"ingress", "worker", "admin"}


def check_roles(where: str, command: list[str], known_roles: set[str]) -> None:
    for i, arg in enumerate(command):
        if arg == "--role":
            if i + 1 >= len(command) or command[i + 1] not in known_roles:
                fail(where, f"unknown role in {command!r} (roles: {sorted(known_roles)})")


def check_variable(where: str, name: str, known: set[str] | None) -> None:
    if known is not None and name.startswith("ROLLCALL_") and name not in known:
        fail(where, f"{name} is not a rollcall setting (rollcall would ignore it)")


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


# ---------------------------------------------------------------------------------------------
# Compose.


def check_compose(deploy: Path, known: set[str] | None, known_roles: set[str]) -> None:
    path = deploy / "compose.yaml"
    where = "compose.yaml"
    text = path.read_text()
    compose = yaml.safe_load(text)
    services = compose.get("services") or {}

    # Variables: every ${VAR} without a default is in the example env file, and the example
    # defines nothing the file does not use.
    example = deploy / "compose.env.example"
    defined = {}
    for line in example.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            defined[key.strip()] = value
    used = set()
    for match in re.finditer(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?", text):
        name, operator = match.group(1), match.group(2)
        used.add(name)
        if operator not in (":-", "-") and name not in defined:
            fail(where, f"${{{name}}} has no default and is not in compose.env.example")
    for name in defined:
        if name not in used:
            fail("compose.env.example", f"{name} is not used by compose.yaml")

    for name, service in services.items():
        here = f"{where} service {name}"
        environment = service.get("environment") or {}
        names = environment.keys() if isinstance(environment, dict) else [e.split("=", 1)[0] for e in environment]
        for variable in names:
            check_variable(here, variable, known)
        for dependency, condition in (service.get("depends_on") or {}).items():
            if dependency not in services:
                fail(here, f"depends on unknown service {dependency}")
                continue
            condition = (condition or {}).get("condition", "service_started")
            target = services[dependency]
            if condition == "service_healthy" and "healthcheck" not in target:
                fail(here, f"waits for {dependency} to be healthy, which has no healthcheck")
            if condition == "service_completed_successfully" and str(target.get("restart", "no")) != "no":
                fail(here, f"waits for {dependency} to complete, which restarts ({target.get('restart')})")
        one_shot = str(service.get("restart", "no")) == "no"
        if not one_shot and "healthcheck" not in service:
            fail(here, "a long-running service without a healthcheck")
        for config in service.get("configs") or []:
            source = config["source"] if isinstance(config, dict) else config
            if source not in (compose.get("configs") or {}):
                fail(here, f"uses undeclared config {source}")

        command = service.get("command")
        image = str(service.get("image", ""))
        if isinstance(command, list) and "rollcall" in image:
            check_roles(here, command, known_roles)
            is_serve, running = command_roles(command)
            check = (service.get("healthcheck") or {}).get("test") or []
            for url in re.findall(r"https?://[^/\s\"']+:(\d+)(/[^\s\"']*)?", " ".join(map(str, check))):
                port = int(url[0])
                role = LISTENER_PORT_ROLE.get(port)
                if not is_serve or role not in running:
                    fail(here, f"healthcheck asks port {port}, which this process does not listen on (roles {sorted(running)})")
            if is_serve and "worker" in running and not running & {"ingress", "admin"} and check:
                fail(here, "a worker-only process opens no listener: its healthcheck cannot succeed")

    for name, config in (compose.get("configs") or {}).items():
        if "file" in config and not (deploy / config["file"]).is_file():
            fail(f"{where} config {name}", f"file {config['file']} does not exist")
        if "content" in config and name.startswith("rabbitmq"):
            rendered = re.sub(r"\$\{([A-Za-z_]+)[^}]*\}", "value", config["content"]).replace("$$", "$")
            try:
                json.loads(rendered)
            except json.JSONDecodeError as err:
                fail(f"{where} config {name}", f"content is not JSON once interpolated: {err}")


# ---------------------------------------------------------------------------------------------
# Kubernetes.


def check_kubernetes(deploy: Path, known: set[str] | None, known_roles: set[str]) -> None:
    k8s = deploy / "k8s"
    resources: list[tuple[str, dict]] = []
    listed: set[Path] = set()
    for kustomization in sorted(k8s.rglob("kustomization.yaml")):
        where = str(kustomization.relative_to(deploy))
        data = yaml.safe_load(kustomization.read_text())
        for resource in data.get("resources") or []:
            target = (kustomization.parent / resource).resolve()
            if not target.exists():
                fail(where, f"resource {resource} does not exist")
            else:
                listed.add(target)
        images = {image["name"] for image in data.get("images") or []}
        for resource in data.get("resources") or []:
            target = kustomization.parent / resource
            if target.is_file():
                for doc in load_yaml_documents(target):
                    for container in pod_containers(doc):
                        if container.get("image") not in images:
                            fail(where, f"{target.name}: image {container.get('image')!r} is not set by `images:`")

    for path in sorted(k8s.rglob("*.yaml")):
        relative = str(path.relative_to(deploy))
        if path.name == "kustomization.yaml":
            continue
        if "examples" not in path.parts and path.resolve() not in listed:
            fail(relative, "not listed in any kustomization.yaml")
        for doc in load_yaml_documents(path):
            resources.append((relative, doc))

    by_kind: dict[str, list[tuple[str, dict]]] = {}
    for where, doc in resources:
        by_kind.setdefault(doc.get("kind", "?"), []).append((where, doc))

    configmaps = {doc["metadata"]["name"]: doc for _, doc in by_kind.get("ConfigMap", [])}
    secrets = {doc["metadata"]["name"]: doc for _, doc in by_kind.get("Secret", [])}
    for name, configmap in configmaps.items():
        for key in configmap.get("data") or {}:
            check_variable(f"ConfigMap {name}", key, known)
    listen_ports = {}
    for configmap in configmaps.values():
        data = configmap.get("data") or {}
        for variable, role in (("ROLLCALL_INGRESS_ADDR", "ingress"), ("ROLLCALL_ADMIN_ADDR", "admin")):
            if variable in data:
                listen_ports[role] = int(str(data[variable]).rsplit(":", 1)[1])
    listen_ports.setdefault("ingress", 8080)
    listen_ports.setdefault("admin", 8081)

    workloads = by_kind.get("Deployment", []) + by_kind.get("Job", [])
    deployments = {doc["metadata"]["name"]: doc for _, doc in by_kind.get("Deployment", [])}
    for where, doc in workloads:
        name = f"{where} {doc['kind']} {doc['metadata']['name']}"
        template = doc["spec"]["template"]
        pod = template["spec"]
        selector = (doc["spec"].get("selector") or {}).get("matchLabels")
        if selector and not matches(selector, template["metadata"].get("labels") or {}):
            fail(name, "selector does not match the pod template's labels")
        security = pod.get("securityContext") or {}
        if not security.get("runAsNonRoot"):
            fail(name, "pod securityContext.runAsNonRoot is not true")
        for container in pod.get("containers", []):
            here = f"{name} container {container['name']}"
            csec = container.get("securityContext") or {}
            if not csec.get("readOnlyRootFilesystem"):
                fail(here, "readOnlyRootFilesystem is not true")
            if csec.get("allowPrivilegeEscalation", True):
                fail(here, "allowPrivilegeEscalation is not false")
            resources_ = container.get("resources") or {}
            if not (resources_.get("requests") and (resources_.get("limits") or {}).get("memory")):
                fail(here, "needs resource requests and a memory limit")
            data_mounted = any(m["mountPath"] == "/var/lib/rollcall" for m in container.get("volumeMounts") or [])
            if csec.get("readOnlyRootFilesystem") and not data_mounted:
                fail(here, "read-only root filesystem without a volume at /var/lib/rollcall (ROLLCALL_DATA_DIR)")
            for env in container.get("env") or []:
                check_variable(here, env["name"], known)
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret = secrets.get(ref["name"])
                    if secret is None:
                        fail(here, f"secretKeyRef to Secret {ref['name']}, which has no example in k8s/examples/")
                    elif ref["key"] not in (secret.get("stringData") or {}) | (secret.get("data") or {}):
                        fail(here, f"secretKeyRef key {ref['key']} is not in the example Secret {ref['name']}")
            for source in container.get("envFrom") or []:
                ref = source.get("configMapRef")
                if ref and ref["name"] not in configmaps:
                    fail(here, f"envFrom ConfigMap {ref['name']} does not exist")
            command = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
            check_roles(here, command, known_roles)
            is_serve, running = command_roles(command)
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
            for role in running:
                if role in listen_ports and listen_ports[role] not in ports.values():
                    fail(here, f"runs the {role} role but does not declare containerPort {listen_ports[role]}")
            served = {listen_ports[r] for r in running if r in listen_ports}
            for port in ports.values():
                if port not in served:
                    fail(here, f"declares containerPort {port}, which no role of this process listens on")
            for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(probe_name)
                if not probe:
                    if doc["kind"] == "Deployment" and probe_name != "startupProbe":
                        fail(here, f"has no {probe_name}")
                    continue
                port = (probe.get("httpGet") or {}).get("port")
                number = ports.get(port) if isinstance(port, str) else port
                if number is None:
                    fail(here, f"{probe_name} uses port {port!r}, which the container does not declare")
                elif number not in served:
                    fail(here, f"{probe_name} asks port {number}, which this process does not listen on")
            if doc["kind"] == "Deployment":
                paths = {p: (container.get(p) or {}).get("httpGet", {}).get("path") for p in ("readinessProbe", "livenessProbe")}
                if paths != {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}:
                    fail(here, f"probes should be readiness /readyz and liveness /healthz, got {paths}")

    pods_by_deployment = {
        name: (doc["spec"]["template"]["metadata"].get("labels") or {}, doc) for name, doc in deployments.items()
    }
    for where, doc in by_kind.get("Service", []):
        name = f"{where} Service {doc['metadata']['name']}"
        selector = doc["spec"].get("selector") or {}
        targets = [d for labels, d in pods_by_deployment.values() if matches(selector, labels)]
        if not targets:
            fail(name, "selects no Deployment's pods")
        for port in doc["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            for deployment in targets:
                declared = {
                    p.get("name") if isinstance(target, str) else p["containerPort"]
                    for c in deployment["spec"]["template"]["spec"]["containers"]
                    for p in c.get("ports") or []
                }
                if target not in declared:
                    fail(name, f"targetPort {target} is not a port of {deployment['metadata']['name']}")
    for where, doc in by_kind.get("PodDisruptionBudget", []):
        selector = doc["spec"]["selector"].get("matchLabels") or {}
        if not any(matches(selector, labels) for labels, _ in pods_by_deployment.values()):
            fail(f"{where} PodDisruptionBudget {doc['metadata']['name']}", "selects no Deployment's pods")
    for where, doc in by_kind.get("HorizontalPodAutoscaler", []):
        target = doc["spec"]["scaleTargetRef"]
        deployment = deployments.get(target["name"])
        name = f"{where} HorizontalPodAutoscaler {doc['metadata']['name']}"
        if target["kind"] != "Deployment" or deployment is None:
            fail(name, f"scales {target['kind']}/{target['name']}, which is not defined")
            continue
        if "replicas" in deployment["spec"]:
            fail(name, f"Deployment {target['name']} sets replicas, which every apply would reset")
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if not ((container.get("resources") or {}).get("requests") or {}).get("cpu"):
                fail(name, f"scales on CPU but {target['name']}/{container['name']} requests no CPU")


def pod_containers(doc: dict) -> list[dict]:
    if doc.get("kind") in ("Deployment", "Job"):
        return doc["spec"]["template"]["spec"].get("containers") or []
    return []


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------------------------------------
# Prometheus.


def check_prometheus(deploy: Path, root: Path) -> None:
    rules_path = deploy / "prometheus/alerts.yml"
    rules = yaml.safe_load(rules_path.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    in_code = metrics_in_code(root) if (root / "crates").is_dir() else set()
    operations = deploy.parent / "docs/operations.md"
    anchors = set()
    if operations.is_file():
        anchors = {slug(m) for m in re.findall(r"^#+\s+(.*)$", operations.read_text(), re.M)}
    tests_path = deploy / "prometheus/alerts.test.yml"
    tested = set(re.findall(r"alertname:\s*(\w+)", tests_path.read_text())) if tests_path.is_file() else set()
    not_yet = set()
    for alert in alerts:
        where = f"prometheus/alerts.yml {alert['alert']}"
        for name in set(re.findall(r"\b(rollcall_[a-z0-9_]+)", alert["expr"])):
            base = re.sub(r"_(bucket|sum|count)$", "", name) if name.endswith(("_bucket", "_sum", "_count")) else name
            if base not in KNOWN_METRICS or (base != name and base not in HISTOGRAMS):
                fail(where, f"uses {name}, which is not one of rollcall's metrics")
            elif in_code and base not in in_code:
                not_yet.add(base)
        runbook = (alert.get("annotations") or {}).get("runbook", "")
        anchor = runbook.partition("#")[2]
        if not anchor:
            fail(where, "has no runbook annotation pointing into docs/operations.md")
        elif operations.is_file() and anchor not in anchors:
            fail(where, f"runbook anchor #{anchor} is not a heading of docs/operations.md")
        if alert["alert"] not in tested:
            fail(where, "has no test in alerts.test.yml")
    if not_yet:
        note("metrics used by the alert rules that the code does not record yet: " + ", ".join(sorted(not_yet)))

    scrape = yaml.safe_load((deploy / "prometheus/scrape.yml").read_text())
    for job in scrape.get("scrape_configs") or []:
        for sd in job.get("kubernetes_sd_configs") or []:
            if sd.get("role") not in ("node", "pod", "service", "endpoints", "endpointslice", "ingress"):
                fail(f"prometheus/scrape.yml job {job.get('job_name')}", f"unknown kubernetes_sd role {sd.get('role')!r}")
        for relabel in job.get("relabel_configs") or []:
            for label in relabel.get("source_labels") or []:
                if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label):
                    fail(f"prometheus/scrape.yml job {job.get('job_name')}", f"bad source label {label!r}")


def rules_fallback(rules_file: Path, schema_file: Path) -> None:
    """Without promtool: the rule file against a JSON schema, and every expression parsed."""
    import jsonschema  # noqa: PLC0415 (only needed here)
    import promql_parser  # noqa: PLC0415

    rules = yaml.safe_load(rules_file.read_text())
    schema = json.loads(schema_file.read_text())
    for error in jsonschema.Draft202012Validator(schema).iter_errors(rules):
        # A rule is one of two shapes (oneOf: alerting, recording): report what is wrong with
        # the shape it claims to be.
        causes = [error]
        if error.context and isinstance(error.instance, dict):
            branch = 0 if "alert" in error.instance else 1
            causes = [e for e in error.context if e.relative_schema_path[0] == branch] or causes
        for cause in causes:
            fail(str(rules_file.name), f"{'/'.join(map(str, cause.absolute_path))}: {cause.message[:200]}")
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            try:
                promql_parser.parse(rule.get("expr", ""))
            except ValueError as err:
                fail(f"{rules_file.name} {name}", f"expression does not parse: {err}")


# ---------------------------------------------------------------------------------------------
# Everything else.


def check_misc(deploy: Path, known: set[str] | None) -> None:
    example = deploy / "rollcall.example.toml"
    if example.is_file():
        settings = tomllib.loads(example.read_text())
        for key in settings:
            check_variable("rollcall.example.toml", f"ROLLCALL_{key.upper()}", known)

    dockerfile = (deploy / "Dockerfile").read_text()
    for name in re.findall(r"\b(ROLLCALL_[A-Z0-9_]+)=", dockerfile):
        check_variable("Dockerfile", name, known)
    exposed = {int(p) for line in re.findall(r"^EXPOSE\s+(.*)$", dockerfile, re.M) for p in re.findall(r"\d+", line)}
    if exposed != {8080, 8081}:
        fail("Dockerfile", f"EXPOSE {sorted(exposed)}, expected the two listeners 8080 and 8081")
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    if not user or user[-1].split(":")[0] in ("root", "0"):
        fail("Dockerfile", "the final stage must run as a non-root USER")

    definitions = json.loads((deploy / "rabbitmq/definitions.json").read_text())
    exchanges = {e["name"] for e in definitions.get("exchanges", [])}
    queues = {q["name"]: q for q in definitions.get("queues", [])}
    vhosts = {v["name"] for v in definitions.get("vhosts", [])}
    where = "rabbitmq/definitions.json"
    for item in definitions.get("exchanges", []) + list(queues.values()) + definitions.get("bindings", []):
        if item.get("vhost") not in vhosts:
            fail(where, f"{item.get('name', item.get('destination'))} is in undeclared vhost {item.get('vhost')!r}")
    for name, queue in queues.items():
        arguments = queue.get("arguments") or {}
        if arguments.get("x-queue-type") != "quorum" or not queue.get("durable"):
            fail(where, f"queue {name} must be a durable quorum queue")
        dlx = arguments.get("x-dead-letter-exchange")
        if dlx is not None and dlx not in exchanges:
            fail(where, f"queue {name} dead-letters to undeclared exchange {dlx}")
        if arguments.get("x-dead-letter-strategy") == "at-least-once" and arguments.get("x-overflow") != "reject-publish":
            fail(where, f"queue {name}: at-least-once dead-lettering needs x-overflow reject-publish")
    for binding in definitions.get("bindings", []):
        if binding["source"] not in exchanges:
            fail(where, f"binding from undeclared exchange {binding['source']}")
        if binding["destination_type"] == "queue" and binding["destination"] not in queues:
            fail(where, f"binding to undeclared queue {binding['destination']}")


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "--rules-fallback":
        rules_fallback(Path(argv[2]), Path(argv[3]))
    elif len(argv) == 3:
        deploy, root = Path(argv[1]).resolve(), Path(argv[2]).resolve()
        known = config_variables(root)
        if known is None:
            note("no configuration variable list found in the code: ROLLCALL_* names not checked")
        known_roles = roles(root)
        check_compose(deploy, known, known_roles)
        check_kubernetes(deploy, known, known_roles)
        check_prometheus(deploy, root)
        check_misc(deploy, known)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for line in NOTES:
        print(f"  note: {line}")
    for line in FAILURES:
        print(f"  FAIL: {line}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
