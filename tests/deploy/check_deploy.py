#!/usr/bin/python3
"""Checks the deployment files under deploy/ against the tools that read them and a live vigil.

    tests/deploy/check_deploy.py --vigil build/release/vigil [--repo .]

CTest runs it (label `deploy`, tests/deploy/CMakeLists.txt). It checks that:

- every YAML file under deploy/ parses (all documents), and so does every JSON file;
- `docker-compose config -q` accepts deploy/docker-compose.yml (all profiles; no daemon needed);
- `promtool check config` accepts deploy/prometheus/prometheus.yml (with its rule files),
  `promtool check rules` deploy/prometheus/alerts.yml, and `promtool test rules` the alert unit
  tests in tests/deploy/alerts_test.yml;
- each alert has `for`, a severity, a summary, a description and a runbook_url naming a heading
  of docs/operations.md;
- the dashboard's data source uid is the one Grafana is provisioned with;
- `kubectl kustomize deploy/k8s` renders (kubectl is required: its absence is a failure), with
  fields kustomize v2.0.3 knows only (the kubectl 1.20 of Debian bookworm's kubernetes-client
  renders it too); every rendered object carries the kustomization's labels (generatorOptions),
  every selector is the resource's own, and the resources refer to the generated ConfigMap's
  hashed name;
- every metric the alert rules and the dashboard query is exported by a live vigil: it is
  started with the embedded Kafka on ephemeral ports, given one good record and one malformed
  one (kcat) so that the lazily registered families appear, and its /metrics `# TYPE` lines are
  the reference (`_bucket`/`_sum`/`_count` belong to their histogram);
- the image's HEALTHCHECK command (deploy/Dockerfile) passes against that vigil;
- every VIGIL_* variable in the compose file, the Kubernetes manifests and the Dockerfile, and
  every key of the Kubernetes ConfigMap's vigil.yaml, names a configuration key (one of
  config/vigil.yaml or of `vigil --help`) or a kafka.consumer.* / kafka.producer.* librdkafka
  property (in the environment: after VIGIL_KAFKA_CONSUMER_ / VIGIL_KAFKA_PRODUCER_, `_` is `.`
  and `__` is `_`); the property must be one librdkafka knows for that client when its
  CONFIGURATION.md is installed;
- the stop grace periods (compose stop_grace_period, Kubernetes terminationGracePeriodSeconds)
  exceed shutdown_grace_ms (plus the preStop sleep); the Kubernetes vigil.yaml, which replaces
  the image's config/vigil.yaml, repeats the librdkafka properties shipped there (the failover
  settings); and KEDA's trigger names the brokers, group and topic the ConfigMap configures.

It prints each check as it goes and exits 1 listing every problem found.
Needs /usr/bin/python3 with python3-yaml, docker-compose, promtool, kcat and kubectl
(scripts/install-deps.sh installs them).
"""
import argparse
import glob
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

DOCS_OPERATIONS = "docs/operations.md"
PASSTHROUGH = {"VIGIL_KAFKA_CONSUMER_": "consumer", "VIGIL_KAFKA_PRODUCER_": "producer"}
# Environment variables vigil reads that are not configuration keys.
SPECIAL_ENV = {"VIGIL_CONFIG": "selects the configuration file"}
LIBRDKAFKA_DOCS = ["/usr/share/doc/librdkafka1/CONFIGURATION.md.gz",
                   "/usr/share/doc/librdkafka-dev/CONFIGURATION.md.gz"]


class Report:
    """Collects problems; prints each check as it is made."""

    def __init__(self):
        self.problems = []

    def ok(self, what):
        print(f"  ok    {what}", flush=True)

    def note(self, what):
        print(f"  note  {what}", flush=True)

    def fail(self, what):
        print(f"  FAIL  {what}", flush=True)
        self.problems.append(what)

    def check(self, condition, what, why=""):
        if condition:
            self.ok(what)
        else:
            self.fail(what + (f": {why}" if why else ""))
        return condition


def section(title):
    print(f"\n== {title}", flush=True)


def run(cmd, cwd, timeout=120, env=None):
    """Runs cmd; returns (exit status, stdout + stderr)."""
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout
    except FileNotFoundError:
        return 127, f"{cmd[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(cmd)}: timed out after {timeout} s"


def rel(repo, path):
    return os.path.relpath(path, repo)


# ---------------------------------------------------------------------------------------------
# Parsing


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def flatten_config(node, prefix, out, problems, source):
    """The keys a vigil YAML config sets, flattened the way vigil does (src/config)."""
    if isinstance(node, dict):
        for k, v in node.items():
            flatten_config(v, f"{prefix}.{k}" if prefix else str(k), out, problems, source)
    elif isinstance(node, list):
        problems.append(f"{source}: {prefix} must be a scalar value, not a list")
    else:
        out.append(prefix)  # a scalar, or null (vigil applies "" to the key)


def config_keys_of_file(path):
    """Keys of config/vigil.yaml; empty maps (kafka.consumer: {}) are passthrough placeholders."""
    with open(path) as f:
        root = yaml.safe_load(f) or {}
    keys = []
    flatten_config(root, "", keys, [], path)
    return set(keys)


def config_keys_of_help(vigil, repo):
    """Keys listed by `vigil --help` (the binary's own table)."""
    status, out = run([vigil, "--help"], cwd=repo, timeout=30)
    keys = set()
    in_keys = False
    for line in out.splitlines():
        if line.strip() == "keys:":
            in_keys = True
            continue
        m = re.match(r"^  ([a-z0-9_.]+)\s", line)
        if in_keys and m and "<" not in m.group(1):
            keys.add(m.group(1))
    return status, keys


def env_name(key):
    return "VIGIL_" + key.replace(".", "_").upper()


def passthrough_property(name):
    """(client, property) a VIGIL_KAFKA_CONSUMER_* / _PRODUCER_* variable sets, else None."""
    for prefix, client in PASSTHROUGH.items():
        if name.startswith(prefix):
            rest = name[len(prefix):]
            prop = re.sub(r"_(_?)", lambda m: "_" if m.group(1) else ".", rest).lower()
            return client, prop
    return None


def librdkafka_properties():
    """{property: 'C'|'P'|'*'} from librdkafka's CONFIGURATION.md, or None when not installed."""
    for path in LIBRDKAFKA_DOCS:
        if os.path.exists(path):
            props = {}
            with gzip.open(path, "rt") as f:
                for line in f:
                    m = re.match(r"^([a-z][a-z0-9._-]*)\s+\|\s+([CP*])\s+\|", line)
                    if m:
                        props[m.group(1)] = m.group(2)
            return path, props
    return None, None


def check_key(report, key, known, rdkafka, source):
    """A config key: known, or a kafka.consumer./kafka.producer. passthrough property."""
    for client in ("consumer", "producer"):
        prefix = f"kafka.{client}."
        if key.startswith(prefix):
            return check_property(report, client, key[len(prefix):], rdkafka, f"{source}: {key}")
    report.check(key in known, f"{source}: {key}", "not a configuration key of vigil")


def check_property(report, client, prop, rdkafka, what):
    if not prop or prop.startswith(".") or prop.endswith(".") or ".." in prop:
        report.fail(f"{what}: '{prop}' is not a property name")
        return
    if rdkafka is None:
        report.ok(f"{what} (librdkafka {client} property; list not installed, name not checked)")
        return
    scope = rdkafka.get(prop)
    if scope is None:
        report.fail(f"{what}: librdkafka has no property '{prop}'")
    elif scope not in ("*", client[0].upper()):
        report.fail(f"{what}: '{prop}' is not a {client} property (librdkafka scope {scope})")
    else:
        report.ok(f"{what} (librdkafka {client} property {prop})")


def check_env(report, name, known, rdkafka, source):
    if name in SPECIAL_ENV:
        report.ok(f"{source}: {name} ({SPECIAL_ENV[name]})")
        return
    pt = passthrough_property(name)
    if pt:
        client, prop = pt
        check_property(report, client, prop, rdkafka, f"{source}: {name} = kafka.{client}.{prop}")
        return
    by_env = {env_name(k): k for k in known}
    report.check(name in by_env, f"{source}: {name}" + (f" = {by_env[name]}" if name in by_env else ""),
                 "no configuration key is spelt like this (VIGIL_ + key, dots as _)")


def duration_s(text):
    """Compose durations: 1m30s, 20s, 1500ms, or a number of seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(text)):
        total += float(m.group(1)) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[m.group(2)]
        pos = m.end()
    if pos != len(str(text)):
        raise ValueError(f"not a duration: {text}")
    return total


def github_anchors(markdown_path):
    anchors = set()
    with open(markdown_path) as f:
        in_code = False
        for line in f:
            if line.startswith("```"):
                in_code = not in_code
            m = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda x: x.group(1) or "", m.group(1))
                slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
                anchors.add(slug)
    return anchors


def metric_names(expr):
    """Identifiers starting with vigil_ in a PromQL expression (string literals removed)."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    return set(re.findall(r"(?<![A-Za-z0-9_:])vigil_[A-Za-z0-9_:]*", stripped))


# ---------------------------------------------------------------------------------------------
# Static checks


def check_parse(report, repo):
    section("every YAML and JSON file under deploy/ parses")
    parsed = {}
    for path in sorted(glob.glob(os.path.join(repo, "deploy", "**", "*"), recursive=True)):
        if not os.path.isfile(path):
            continue
        try:
            if path.endswith((".yml", ".yaml")):
                parsed[path] = load_yaml_docs(path)
                report.ok(f"{rel(repo, path)} ({len(parsed[path])} document(s))")
            elif path.endswith(".json"):
                with open(path) as f:
                    parsed[path] = [json.load(f)]
                report.ok(f"{rel(repo, path)} (JSON)")
        except (yaml.YAMLError, json.JSONDecodeError) as e:
            report.fail(f"{rel(repo, path)}: {e}")
    return parsed


def check_tools(report, repo):
    section("docker-compose and promtool")
    compose = os.path.join(repo, "deploy", "docker-compose.yml")
    if shutil.which("docker-compose") is None:
        report.fail("docker-compose not installed (scripts/install-deps.sh installs it)")
    else:
        # --profile load: validate the optional services too.
        status, out = run(["docker-compose", "-f", compose, "--profile", "load", "config", "-q"],
                          cwd=repo)
        report.check(status == 0, "docker-compose -f deploy/docker-compose.yml config -q",
                     out.strip())
    if shutil.which("promtool") is None:
        report.fail("promtool not installed (Debian package prometheus)")
        return
    for args, what in [
        (["check", "config", "deploy/prometheus/prometheus.yml"],
         "promtool check config deploy/prometheus/prometheus.yml (and its rule files)"),
        (["check", "rules", "deploy/prometheus/alerts.yml"],
         "promtool check rules deploy/prometheus/alerts.yml"),
    ]:
        status, out = run(["promtool"] + args, cwd=repo)
        report.check(status == 0, what, "\n" + out.strip())
    # promtool compares annotations verbatim: the unit tests run on a copy of the rules without
    # them (check_alerts checks the annotations).
    with tempfile.TemporaryDirectory(prefix="vigil-alerts-") as tmp:
        with open(os.path.join(repo, "deploy", "prometheus", "alerts.yml")) as f:
            rules = yaml.safe_load(f)
        for group in rules.get("groups", []):
            for rule in group.get("rules", []):
                rule.pop("annotations", None)
        with open(os.path.join(tmp, "alerts.yml"), "w") as f:
            yaml.safe_dump(rules, f)
        shutil.copy(os.path.join(repo, "tests", "deploy", "alerts_test.yml"), tmp)
        status, out = run(["promtool", "test", "rules", "alerts_test.yml"], cwd=tmp)
        report.check(status == 0, "promtool test rules tests/deploy/alerts_test.yml (each alert "
                     "fires on its fault, after its `for`, and not on a near miss)",
                     "\n" + out.strip())


def check_alerts(report, repo, rules_docs):
    section("alert rules: for, severity, summary, description, runbook_url")
    anchors = github_anchors(os.path.join(repo, DOCS_OPERATIONS))
    exprs = []
    for doc in rules_docs:
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                exprs.append((f"alert {name}", rule.get("expr", "")))
                labels = rule.get("labels", {}) or {}
                ann = rule.get("annotations", {}) or {}
                missing = [k for k in ("summary", "description", "runbook_url") if not ann.get(k)]
                if "for" not in rule:
                    missing.append("for")
                if labels.get("severity") not in ("critical", "warning", "info"):
                    missing.append("severity (critical|warning|info)")
                runbook = ann.get("runbook_url", "")
                m = re.match(r"^(?:.*/)?" + re.escape(DOCS_OPERATIONS) + r"#([\w-]+)$", runbook)
                if runbook and not m:
                    missing.append(f"runbook_url '{runbook}' is not {DOCS_OPERATIONS}#<anchor>")
                elif m and m.group(1) not in anchors:
                    missing.append(f"runbook_url anchor #{m.group(1)} is no heading of "
                                   f"{DOCS_OPERATIONS}")
                report.check(not missing, f"{name} ({labels.get('severity')}, "
                             f"for {rule.get('for')}, {runbook})", "; ".join(missing))
    return exprs


def check_dashboard(report, repo, parsed):
    section("Grafana: dashboard data source = provisioned data source")
    uids = set()
    for path in glob.glob(os.path.join(repo, "deploy/grafana/provisioning/datasources/*.y*ml")):
        for doc in parsed.get(path, []):
            for ds in doc.get("datasources", []):
                if ds.get("type") == "prometheus":
                    uids.add(ds.get("uid"))
    report.check(bool(uids), f"provisioned Prometheus data source uid(s): {sorted(uids)}",
                 "none with a fixed uid")
    exprs = []
    for path in sorted(glob.glob(os.path.join(repo, "deploy/grafana/*.json"))):
        dash = parsed[path][0] if path in parsed else {}
        name = rel(repo, path)
        report.check("schemaVersion" in dash and dash.get("uid"),
                     f"{name}: uid {dash.get('uid')!r}, schemaVersion {dash.get('schemaVersion')}")
        wrong = set()

        def visit(panel):
            for sub in panel.get("panels", []):
                visit(sub)
            for obj in [panel] + panel.get("targets", []):
                ds = obj.get("datasource")
                if isinstance(ds, dict) and ds.get("type") == "prometheus" and ds.get("uid") not in uids:
                    wrong.add(str(ds.get("uid")))
                elif isinstance(ds, str) and ds.startswith("$"):
                    wrong.add(ds)
            for t in panel.get("targets", []):
                if t.get("expr"):
                    exprs.append((f"{name} panel '{panel.get('title')}'", t["expr"]))

        for panel in dash.get("panels", []):
            visit(panel)
        for var in dash.get("templating", {}).get("list", []):
            visit(var)
            q = var.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if q:
                exprs.append((f"{name} variable '{var.get('name')}'", q))
        report.check(not wrong, f"{name}: every Prometheus query uses a provisioned uid",
                     f"other data sources: {sorted(wrong)}")
        report.check(bool(exprs), f"{name}: {len(exprs)} queries")
    return exprs


# The kustomization fields kustomize v2.0.3 knows: the kustomize of kubectl 1.14 to 1.20, among
# them Debian bookworm's kubernetes-client (1.20.2), which rejects any other ("unknown field").
# Tried one by one against that kubectl; newer fields (labels, replicas, components, per-generator
# options, envs, ...) are not among them.
KUSTOMIZE_V2_FIELDS = {
    "": {"apiVersion", "kind", "resources", "bases", "namePrefix", "nameSuffix", "namespace",
         "commonLabels", "commonAnnotations", "patchesStrategicMerge", "patchesJson6902",
         "images", "vars", "crds", "configurations", "configMapGenerator", "secretGenerator",
         "generatorOptions"},
    "generatorOptions": {"labels", "annotations", "disableNameSuffixHash"},
    "configMapGenerator[]": {"name", "namespace", "behavior", "files", "literals", "env"},
    "secretGenerator[]": {"name", "namespace", "behavior", "files", "literals", "env", "type"},
    "images[]": {"name", "newName", "newTag", "digest"},
}


def kustomize_v2_unknown_fields(kust):
    """'where: field' for each field of kust that kustomize v2.0.3 would reject."""
    unknown = [f"{k}" for k in kust if k not in KUSTOMIZE_V2_FIELDS[""]]
    for where, known in KUSTOMIZE_V2_FIELDS.items():
        if not where:
            continue
        name = where.rstrip("[]")
        entries = kust.get(name) or ([] if where.endswith("[]") else {})
        for entry in entries if where.endswith("[]") else [entries]:
            unknown += [f"{where}.{k}" for k in (entry or {}) if k not in known]
    return unknown


def selector_of(obj):
    spec = obj.get("spec") or {}
    return spec.get("selector") if isinstance(spec, dict) else None


def check_kustomize(report, repo):
    section("Kubernetes: kustomization renders")
    kdir = os.path.join(repo, "deploy", "k8s")
    with open(os.path.join(kdir, "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    sources = {}  # (kind, name) -> the object as written in the resources
    for res in kust.get("resources", []):
        if report.check(os.path.isfile(os.path.join(kdir, res)), f"resource {res} exists"):
            for d in load_yaml_docs(os.path.join(kdir, res)):
                sources[(d.get("kind"), (d.get("metadata") or {}).get("name"))] = d
    for gen in kust.get("configMapGenerator", []):
        for fspec in gen.get("files", []):
            report.check(os.path.isfile(os.path.join(kdir, fspec.split("=")[-1])),
                         f"configMapGenerator {gen.get('name')}: file {fspec} exists")
    # The render must not depend on the kubectl at hand: no field an old kustomize rejects.
    unknown = kustomize_v2_unknown_fields(kust)
    report.check(not unknown, "kustomization.yaml uses only fields kustomize v2.0.3 knows (the "
                 "kubectl of Debian bookworm's kubernetes-client renders it too)",
                 f"unknown to kustomize v2.0.3 (kubectl <= 1.20): {unknown}")
    if shutil.which("kubectl") is None:
        report.fail("kubectl not installed: `kubectl kustomize deploy/k8s` cannot run "
                    "(scripts/install-deps.sh installs Debian's kubernetes-client)")
        return None
    status, out = run(["kubectl", "kustomize", kdir], cwd=repo, timeout=60)
    if status != 0:
        # An old kubectl's kustomize rejects newer fields ("unknown field"): name the version.
        _, version = run(["kubectl", "version", "--client"], cwd=repo, timeout=30)
        report.fail(f"kubectl kustomize deploy/k8s: {out.strip()[-2000:]}\n"
                    f"  (kubectl: {version.strip()[:300]}; deploy/k8s is meant to render with "
                    "kustomize >= v2.0.3, kubectl >= 1.14)")
        return None
    objects = [d for d in yaml.safe_load_all(out) if d]
    if not report.check(bool(objects), f"kubectl kustomize deploy/k8s ({len(objects)} objects)",
                        "rendered nothing"):
        return None
    # The labels every object carries: the generated ConfigMaps get them from generatorOptions,
    # the resources write them in their own metadata.labels (a `labels:` transformer is unknown to
    # kustomize v2, and commonLabels would change the selectors). Either way, each rendered object
    # must carry them.
    labels = dict(((kust.get("generatorOptions") or {}).get("labels")) or {})
    labels.update(kust.get("commonLabels") or {})
    for entry in kust.get("labels", []) or []:
        labels.update(entry.get("pairs", {}) or {})
    report.check(bool(labels), f"the kustomization's labels: {labels}",
                 "none (generatorOptions.labels gives the ConfigMap app.kubernetes.io/part-of)")
    for obj in objects:
        have = (obj.get("metadata") or {}).get("labels") or {}
        missing = {k: v for k, v in labels.items() if have.get(k) != v}
        report.check(not missing, f"rendered {obj.get('kind')} {obj['metadata'].get('name')} "
                     "carries the kustomization's labels", f"missing {missing}")
    # The selectors are the resources' own: a StatefulSet's cannot change once applied, and a
    # Service or PodDisruptionBudget selecting on more labels than the pods carry selects nothing.
    for obj in objects:
        key = (obj.get("kind"), obj["metadata"].get("name"))
        if key in sources and selector_of(sources[key]) is not None:
            report.check(selector_of(obj) == selector_of(sources[key]),
                         f"rendered {key[0]} {key[1]} keeps its selector {selector_of(sources[key])}",
                         f"rendered as {selector_of(obj)}")
    text = yaml.safe_dump_all(objects)
    for gen in kust.get("configMapGenerator", []):
        rendered = [o["metadata"]["name"] for o in objects if o.get("kind") == "ConfigMap"
                    and o["metadata"]["name"].startswith(gen["name"] + "-")]
        if report.check(len(rendered) == 1, f"configMapGenerator {gen['name']} rendered as "
                        f"{rendered[0] if rendered else '?'}", f"found {rendered}"):
            report.check(text.count(rendered[0]) > 1,
                         f"the resources refer to {rendered[0]}, not to {gen['name']}",
                         "no reference rewritten")
    return objects


def k8s_objects(repo):
    """Every object of the kustomization's resources, and the ConfigMap data of its generators."""
    kdir = os.path.join(repo, "deploy", "k8s")
    with open(os.path.join(kdir, "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    objects = []
    for res in kust.get("resources", []):
        path = os.path.join(kdir, res)
        if os.path.isfile(path):
            objects += [(rel(repo, path), d) for d in load_yaml_docs(path)]
    configs = []  # (source, vigil.yaml text)
    for gen in kust.get("configMapGenerator", []):
        for fspec in gen.get("files", []):
            key, _, file = fspec.rpartition("=")
            path = os.path.join(kdir, file)
            if (key or os.path.basename(file)) == "vigil.yaml" and os.path.isfile(path):
                with open(path) as f:
                    configs.append((rel(repo, path), f.read()))
    for source, obj in objects:
        if obj.get("kind") == "ConfigMap" and "vigil.yaml" in (obj.get("data") or {}):
            configs.append((f"{source} ConfigMap {obj['metadata']['name']}", obj["data"]["vigil.yaml"]))
    return objects, configs


def check_keys(report, repo, vigil, known, rdkafka):
    section("configuration: every VIGIL_* variable and ConfigMap key names a real key")
    compose_path = os.path.join(repo, "deploy", "docker-compose.yml")
    with open(compose_path) as f:
        compose = yaml.safe_load(f)
    compose_env = {}
    for svc_name, svc in (compose.get("services") or {}).items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        for name in env:
            if str(name).startswith("VIGIL_"):
                check_env(report, str(name), known, rdkafka, f"compose {svc_name}")
                compose_env.setdefault(svc_name, {})[name] = env[name]

    # The Dockerfile's ENV instructions (ARGs such as VIGIL_UID are build settings, not vigil's).
    with open(os.path.join(repo, "deploy", "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    for line in re.findall(r"^ENV\s+(.*)$", text, re.M):
        for name in re.findall(r"(?:^|\s)(VIGIL_[A-Z0-9_]+)[=\s]", line + " "):
            check_env(report, name, known, rdkafka, "Dockerfile ENV")

    objects, configs = k8s_objects(repo)
    pods = []
    for source, obj in objects:
        spec = (obj.get("spec") or {}).get("template", {}).get("spec")
        if not spec:
            continue
        pods.append((source, obj, spec))
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for e in c.get("env", []):
                if e["name"].startswith("VIGIL_"):
                    check_env(report, e["name"], known, rdkafka, f"{source} {c['name']}")
    config_values = {}
    for source, text in configs:
        problems, keys = [], []
        root = yaml.safe_load(text) or {}
        flatten_config(root, "", keys, problems, source)
        for p in problems:
            report.fail(p)
        for key in keys:
            check_key(report, key, known, rdkafka, source)
        config_values[source] = root
    report.check(bool(configs), f"found the Kubernetes vigil.yaml ({len(configs)})")
    report.check(bool(pods), f"found the Kubernetes pod template(s) ({len(pods)})")
    return compose, compose_env, pods, config_values, objects


def check_consistency(report, repo, compose, compose_env, pods, config_values, objects):
    section("stop grace periods, failover settings, KEDA trigger")
    with open(os.path.join(repo, "config", "vigil.yaml")) as f:
        shipped_config = yaml.safe_load(f) or {}
    default_grace_ms = 10000
    for svc, env in compose_env.items():
        grace_ms = float(env.get("VIGIL_SHUTDOWN_GRACE_MS") or default_grace_ms)
        stop = compose["services"][svc].get("stop_grace_period", "10s")
        report.check(duration_s(stop) * 1000 > grace_ms,
                     f"compose {svc}: stop_grace_period {stop} > shutdown_grace_ms {grace_ms:.0f}")
    cfg = next(iter(config_values.values()), {}) or {}
    grace_ms = float(cfg.get("shutdown_grace_ms", default_grace_ms))
    for source, obj, spec in pods:
        term = spec.get("terminationGracePeriodSeconds", 30)
        pre_stop_s = 0.0
        for c in spec.get("containers", []):
            cmd = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command", [])
            if len(cmd) == 2 and cmd[0] == "sleep":
                pre_stop_s = float(cmd[1])
        report.check(term * 1000 > pre_stop_s * 1000 + grace_ms,
                     f"{source}: terminationGracePeriodSeconds {term} > preStop {pre_stop_s:.0f} s "
                     f"+ shutdown_grace_ms {grace_ms:.0f}")
    kafka = cfg.get("kafka", {}) or {}
    # The ConfigMap replaces the image's config/vigil.yaml: librdkafka settings shipped there
    # (the failover settings) must be repeated, or the pods silently run librdkafka's defaults.
    for client in ("consumer", "producer"):
        shipped = ((shipped_config.get("kafka") or {}).get(client) or {})
        k8s = (kafka.get(client) or {})
        for prop in shipped:
            report.check(prop in k8s, f"Kubernetes vigil.yaml sets kafka.{client}.{prop} "
                         f"(shipped in config/vigil.yaml: {shipped[prop]})",
                         "missing: the pods would run librdkafka's default")
    for source, obj in objects:
        if obj.get("kind") != "ScaledObject":
            continue
        for trig in obj["spec"].get("triggers", []):
            if trig.get("type") != "kafka":
                continue
            md = trig.get("metadata", {})
            report.check(md.get("consumerGroup") == kafka.get("group_id", "vigil"),
                         f"{source}: consumerGroup {md.get('consumerGroup')} = kafka.group_id")
            report.check(md.get("topic") == kafka.get("input_topic", "transactions"),
                         f"{source}: topic {md.get('topic')} = kafka.input_topic")
            report.check(md.get("bootstrapServers") == kafka.get("brokers"),
                         f"{source}: bootstrapServers {md.get('bootstrapServers')} = kafka.brokers")


# ---------------------------------------------------------------------------------------------
# Live vigil


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path, timeout=5):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def wait_for(condition, timeout_s, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    return None


def metric_families(text):
    """{family: type} from the `# TYPE` lines of a Prometheus text exposition."""
    return dict(re.findall(r"^# TYPE ([A-Za-z_:][A-Za-z0-9_:]*) (\w+)$", text, re.M))


def live_vigil_metrics(report, repo, vigil, tmp, timeout_s):
    """Starts vigil, feeds it, returns (families, /metrics text, port, process)."""
    section("live vigil: /metrics families")
    port_file, boot_file = os.path.join(tmp, "port"), os.path.join(tmp, "bootstrap")
    # Redis on a port nothing listens on: the Redis sink exists (its metrics are exported) and
    # runs degraded, which is what an alert on it must be able to see.
    redis_url = f"redis://127.0.0.1:{free_port()}"
    cmd = [vigil, "--http.port=0", f"--http.port_file={port_file}", f"--redis.url={redis_url}",
           f"--kafka.embedded.bootstrap_file={boot_file}",
           f"--model.repository={os.path.join(repo, 'models')}", "--scoring.workers=1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    log = open(os.path.join(tmp, "vigil.log"), "w")
    print("  $ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)

    def started():
        if proc.poll() is not None:
            return "exited"
        ok = all(os.path.exists(p) and open(p).read().strip() for p in (port_file, boot_file))
        return "up" if ok else None

    state = wait_for(started, timeout_s)
    if state != "up":
        report.fail(f"vigil did not start ({state or 'timed out'})")
        return None, "", None, proc
    port = int(open(port_file).read().strip())
    bootstrap = open(boot_file).read().strip()
    report.ok(f"vigil up: HTTP on 127.0.0.1:{port}, embedded Kafka at {bootstrap}")
    ready = wait_for(lambda: http_get(port, "/ready")[0] == 200, timeout_s, 0.25)
    report.check(bool(ready), "/ready answers 200 (partitions assigned)", http_get(port, "/ready")[1])

    # One record that scores and one that is dead-lettered: the consumer lag gauges, the
    # dead-letter counter and the scored counters exist only once such records went through.
    if shutil.which("kcat") is None:
        report.fail("kcat not installed (scripts/install-deps.sh installs it)")
    else:
        features = ",".join(["0"] * 30)
        events = os.path.join(tmp, "events")
        with open(events, "w") as f:
            f.write(f'deploy-1:{{"transaction_id":"deploy-1","features":[{features}]}}\n')
            f.write("deploy-2:not json\n")
        status, out = run(["kcat", "-P", "-b", bootstrap, "-t", "transactions", "-K:", "-l", events],
                          cwd=repo, timeout=30)
        report.check(status == 0, "kcat produced 2 records to 'transactions'", out.strip())

    def fed():
        _, text = http_get(port, "/metrics")
        fam = metric_families(text)
        scored = re.search(r'^vigil_requests_scored_total\{origin="kafka"[^}]*\} (\d+)', text,
                           re.M)
        if ("vigil_kafka_dead_lettered_total" in fam and "vigil_kafka_consumer_lag" in fam
                and scored and int(scored.group(1)) >= 1):
            return text
        return None

    text = wait_for(fed, timeout_s, 0.25)
    report.check(bool(text), "the good record was scored and the bad one dead-lettered")
    status, text = http_get(port, "/metrics")
    families = metric_families(text)
    report.check(status == 200 and families, f"/metrics: {len(families)} metric families")
    return families, text, port, proc


def check_metric_names(report, families, exprs):
    section("every metric the alerts and the dashboard query exists in /metrics")
    histograms = {f for f, t in families.items() if t == "histogram"}
    used = {}
    for where, expr in exprs:
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    for name in sorted(used):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        found = name in families or (base != name and base in histograms)
        report.check(found, f"{name}", f"not exported by vigil; used by {', '.join(sorted(set(used[name])))}")
    report.check(bool(used), f"{len(used)} distinct vigil_ metric names in {len(exprs)} expressions")


def check_healthcheck(report, repo, port):
    section("the image's HEALTHCHECK against the live vigil")
    with open(os.path.join(repo, "deploy", "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(r"^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", text, re.M)
    if not report.check(bool(m), "deploy/Dockerfile has HEALTHCHECK ... CMD [exec form]"):
        return
    cmd = json.loads(m.group(1))
    env = dict(os.environ, VIGIL_HTTP_PORT=str(port))
    status, out = run(cmd, cwd=repo, env=env, timeout=10)
    report.check(status == 0, f"HEALTHCHECK passes on /health (VIGIL_HTTP_PORT={port})", out.strip())
    env["VIGIL_HTTP_PORT"] = str(free_port())
    status, _ = run(cmd, cwd=repo, env=env, timeout=10)
    report.check(status != 0, "HEALTHCHECK fails when nothing answers")


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vigil", required=True, help="the vigil binary")
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(here)),
                    help="repository root [default: two levels above this script]")
    ap.add_argument("--timeout-s", type=float, default=60, help="bound on each wait for vigil")
    args = ap.parse_args()
    repo = os.path.abspath(args.repo)
    vigil = os.path.abspath(args.vigil)
    report = Report()

    section("configuration keys vigil knows")
    file_keys = config_keys_of_file(os.path.join(repo, "config", "vigil.yaml"))
    status, help_keys = config_keys_of_help(vigil, repo)
    report.check(status == 0 and help_keys, f"`vigil --help`: {len(help_keys)} keys")
    rdkafka_doc, rdkafka = librdkafka_properties()
    if rdkafka:
        report.ok(f"librdkafka properties: {len(rdkafka)} (from {rdkafka_doc})")
    else:
        report.note("librdkafka CONFIGURATION.md not installed: passthrough names not checked")
    passthrough = {k for k in file_keys if k.startswith(("kafka.consumer.", "kafka.producer."))}
    file_keys -= passthrough
    report.ok(f"config/vigil.yaml: {len(file_keys)} keys, {len(passthrough)} librdkafka properties")
    for k in sorted(file_keys - help_keys):
        report.fail(f"config/vigil.yaml sets {k}, which `vigil --help` does not list")
    for k in sorted(passthrough):
        check_key(report, k, set(), rdkafka, "config/vigil.yaml")
    known = file_keys | help_keys

    parsed = check_parse(report, repo)
    check_tools(report, repo)
    alert_exprs = check_alerts(report, repo, parsed.get(os.path.join(repo, "deploy/prometheus/alerts.yml"), []))
    dash_exprs = check_dashboard(report, repo, parsed)
    check_kustomize(report, repo)
    compose, compose_env, pods, config_values, objects = check_keys(report, repo, vigil, known, rdkafka)
    check_consistency(report, repo, compose, compose_env, pods, config_values, objects)

    proc = None
    with tempfile.TemporaryDirectory(prefix="vigil-deploy-") as tmp:
        try:
            families, _, port, proc = live_vigil_metrics(report, repo, vigil, tmp, args.timeout_s)
            if families:
                check_metric_names(report, families, alert_exprs + dash_exprs)
                check_healthcheck(report, repo, port)
        finally:
            stop(proc)
            if report.problems and os.path.exists(os.path.join(tmp, "vigil.log")):
                print("\n-- vigil log (last 30 lines)")
                with open(os.path.join(tmp, "vigil.log")) as f:
                    print("".join(f.readlines()[-30:]), end="")

    print()
    if report.problems:
        print(f"check_deploy: {len(report.problems)} problem(s):")
        for p in report.problems:
            print(f"  - {p}")
        return 1
    print("check_deploy: deploy/ is consistent with vigil")
    return 0


if __name__ == "__main__":
    sys.exit(main())
