#!/usr/bin/python3
"""Lints the container and deployment files without a Docker engine or a cluster.

    /usr/bin/python3 tests/deploy_lint_test.py [REPO_ROOT] [--build-dir DIR]

REPO_ROOT defaults to the parent of this file's folder. Checks:
  - Dockerfile: the build stage copies and runs scripts/bootstrap.sh and installs nothing else (so its
    packages equal the bootstrap script's by construction) and builds both binaries; the runtime stage
    is Debian 12, installs only runtime packages, copies both binaries from the build stage, runs as a
    non-root USER, EXPOSEs 50051 and 9464, declares VOLUME /var/lib/optower and a gRPC HEALTHCHECK;
  - with --build-dir holding built binaries (and dpkg present): every shared library they load comes
    from a package the runtime stage installs (or from the base image);
  - .dockerignore keeps build trees, out/, .git and deploy/secrets/ out of the build context;
  - every YAML file under deploy/ parses; deploy/k8s/ holds a Deployment, Service, PVC, ConfigMap and
    Secret that reference each other; the Deployment runs 1 replica with strategy Recreate, gRPC
    readiness and liveness probes on 50051, runAsNonRoot, the PVC at /var/lib/optower, the ConfigMap as
    its --config and the Secret as the admin token; the Service exposes 50051 and 9464;
  - docker-compose.yml: one server, a named volume at /var/lib/optower, ports 50051 and 9464, the
    config mounted where --config points, the admin token as a secret or env var;
  - deploy/config/server.textproto listens on all interfaces, uses /var/lib/optower, equals the
    ConfigMap's copy, and (when protoc and proto/ are present) parses as optower.v1.ServerConfig;
  - no shipped command opens the admin RPCs to the network: the Dockerfile's ENTRYPOINT + CMD with
    the config file it names (found through the runtime stage's COPY), the compose command with its
    mounted config and the Kubernetes args with the ConfigMap each configure an admin token
    (admin_token_file, or OPTOWER_ADMIN_TOKEN from a secret) whenever the host is not loopback, and
    none passes --insecure_open_admin (the server would start with open admin RPCs);
  - the scale-out (PostgreSQL, serving replicas and one trainer; deploy/README.md "Scale-out"):
    deploy/scaleout/config/{serve,train}.textproto parse as optower.v1.ServerConfig (with protoc), set
    their role, postgres { enabled, dsn_file under /run/secrets/ }, 0.0.0.0, /var/lib/optower, an admin
    token, and (serve) a trainer_address;
    deploy/scaleout/docker-compose.yml has one postgres:* service (password from
    POSTGRES_PASSWORD_FILE in a secret, healthcheck, named volume, not published beyond loopback), at
    least two --role=serve services and exactly one --role=train, each with its config from
    deploy/scaleout/config/ (the flag and the config's role agree), its own named data volume, ports on
    127.0.0.1 only and distinct, the DSN and the admin token as declared secret files (under
    deploy/secrets/), depends_on postgres service_healthy, and the replicas' trainer_address reaching
    the trainer;
    deploy/k8s/scaleout/*.yaml: every ConfigMap/Secret (and key) a pod uses exists unless optional;
    one serving Deployment (replicas >= 2, RollingUpdate, emptyDir data_dir) and one trainer
    Deployment (replicas 1, Recreate), both with gRPC readiness and liveness probes on 50051, their
    ConfigMap equal to the config file of their role, the DSN from a mounted Secret file (or
    OPTOWER_PG_DSN from a secretKeyRef) and the admin token likewise; Services that select one role
    each and reach the pods' ports (serving 50051 + 9464, trainer 50051), the serving trainer_address
    naming the trainer's Service; PostgreSQL a StatefulSet behind a headless Service with a
    volumeClaimTemplate and its password from the Secret, the Secret's dsn naming that Service;
    runAsNonRoot everywhere; and nowhere (args, env values, configs) a literal password or connection
    string, nor a secret-bearing variable (OPTOWER_PG_DSN, OPTOWER_ADMIN_TOKEN, POSTGRES_PASSWORD, ...)
    with a literal value.

Every broken expectation prints one "FAIL: <file>: <what>" line; the exit code is 1 if any failed.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

GRPC_PORT = 50051
METRICS_PORT = 9464
DATA_DIR = "/var/lib/optower"
K8S_KINDS = ("Deployment", "Service", "PersistentVolumeClaim", "ConfigMap", "Secret")
# Packages every debian:bookworm image already has (the runtime stage need not install them).
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1", "zlib1g"}


class Lint:
    def __init__(self, root):
        self.root = root
        self.failures = []
        self.checks = 0
        self.notes = []

    def rel(self, path):
        return os.path.relpath(path, self.root)

    def expect(self, cond, where, what):
        self.checks += 1
        if not cond:
            self.failures.append(f"{where}: {what}")
        return bool(cond)

    def fail(self, where, what):
        return self.expect(False, where, what)


# ------------------------------------------------------------------------------------------------
# Dockerfile
# ------------------------------------------------------------------------------------------------

def parse_dockerfile(text):
    """Returns [(line_no, INSTRUCTION, args)] with continuations joined and comments dropped."""
    out = []
    buf, start = "", None
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue  # comments (also inside continuations) and blank lines
        if start is None:
            start = no
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        parts = buf.strip().split(None, 1)
        if parts:
            out.append((start, parts[0].upper(), parts[1] if len(parts) > 1 else ""))
        buf, start = "", None
    if buf.strip():
        parts = buf.strip().split(None, 1)
        out.append((start, parts[0].upper(), parts[1] if len(parts) > 1 else ""))
    return out


def split_stages(instructions):
    stages = []
    for no, ins, args in instructions:
        if ins == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--")]
            image = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append({"line": no, "image": image, "name": name, "ins": []})
        elif stages:
            stages[-1]["ins"].append((no, ins, args))
    return stages


def exec_form_or_words(args):
    args = args.strip()
    if args.startswith("["):
        try:
            import json
            return json.loads(args)
        except ValueError:
            pass
    try:
        return shlex.split(args)
    except ValueError:
        return args.split()


def strip_flags(args):
    """Drops leading --flag=value options of COPY/RUN/HEALTHCHECK; returns (flags, rest)."""
    flags = {}
    rest = args.strip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        key, _, value = word[2:].partition("=")
        flags[key] = value
        rest = rest.strip()
    return flags, rest


def apt_installed_packages(run_args):
    """Package names passed to apt-get/apt install in one RUN command."""
    pkgs = []
    for cmd in re.split(r"&&|;|\|\|", run_args):
        words = cmd.split()
        for i, w in enumerate(words):
            if w.endswith("apt-get") or w == "apt":
                if "install" in words[i + 1:]:
                    after = words[words.index("install", i) + 1:]
                    pkgs += [p for p in after if not p.startswith("-") and p != "\\"]
                break
    return pkgs


def bootstrap_packages(path):
    text = open(path).read()
    m = re.search(r"PACKAGES=\((.*?)\n\)", text, re.S)
    if not m:
        return None
    pkgs = []
    for line in m.group(1).splitlines():
        line = line.split("#", 1)[0]
        pkgs += line.split()
    return pkgs


def lint_dockerfile(lint, build_dir):
    path = os.path.join(lint.root, "Dockerfile")
    where = "Dockerfile"
    if not lint.expect(os.path.isfile(path), where, "missing at the repository root"):
        return
    stages = split_stages(parse_dockerfile(open(path).read()))
    if not lint.expect(len(stages) >= 2, where, f"want a multi-stage build, found {len(stages)} FROM"):
        return
    for st in stages:
        lint.expect(re.fullmatch(r"(docker\.io/)?(library/)?debian:bookworm([-.:@].*)?", st["image"]),
                    f"{where}:{st['line']}", f"FROM {st['image']}: every stage must be debian:bookworm")
    runtime = stages[-1]
    names = {st["name"]: st for st in stages if st["name"]}

    # Which stage builds the binaries: the one the runtime stage copies them from.
    copies_from_build = []
    for no, ins, args in runtime["ins"]:
        if ins == "COPY":
            flags, rest = strip_flags(args)
            if "from" in flags:
                copies_from_build.append((no, flags["from"], exec_form_or_words(rest)))
    build = None
    for _, src, _ in copies_from_build:
        build = names.get(src) or (stages[int(src)] if src.isdigit() and int(src) < len(stages) else None)
        if build:
            break
    if not lint.expect(build is not None and build is not runtime, where,
                       "the runtime stage must COPY --from=<build stage> the binaries"):
        return
    copied = " ".join(" ".join(words) for _, _, words in copies_from_build)
    for binary in ("optower-server", "optower"):
        lint.expect(re.search(rf"/{re.escape(binary)}(\s|$)", copied), where,
                    f"the runtime stage does not COPY --from the build stage's {binary} binary")

    # --- build stage: bootstrap.sh copied and run, nothing else installed, both binaries built.
    # Walk the stage in order: where copies of scripts/bootstrap.sh are, the WORKDIR, the RUNs.
    bwhere = f"{where} (build stage '{build['name'] or stages.index(build)}')"
    workdir = "/"
    boot_copies = set()  # absolute paths in the image that hold scripts/bootstrap.sh
    ran_bootstrap = False
    run_index = {}
    for no, ins, args in build["ins"]:
        if ins == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, args.strip()))
        elif ins in ("COPY", "ADD"):
            flags, rest = strip_flags(args)
            words = exec_form_or_words(rest)
            if "from" in flags or len(words) < 2:
                continue
            dest = words[-1]
            dest_abs = os.path.normpath(os.path.join(workdir, dest))
            for src in words[:-1]:
                src = os.path.normpath(src)
                if src == "scripts/bootstrap.sh":
                    boot_copies.add(os.path.join(dest_abs, "bootstrap.sh") if dest.endswith("/") else dest_abs)
                elif src == "scripts":
                    boot_copies.add(os.path.join(dest_abs, "bootstrap.sh"))
                elif src == ".":
                    boot_copies.add(os.path.join(dest_abs, "scripts", "bootstrap.sh"))
        elif ins == "RUN":
            _, cmd = strip_flags(args)
            for part in re.split(r"&&|;|\|\||\|", cmd):
                words = part.split()
                if words and words[0] in ("bash", "sh", "/bin/bash", "/bin/sh", "/usr/bin/env"):
                    words = words[1:]
                if words and words[0].endswith("bootstrap.sh"):
                    if os.path.normpath(os.path.join(workdir, words[0])) in boot_copies:
                        ran_bootstrap = True
                        run_index.setdefault("bootstrap", no)
            extra = apt_installed_packages(cmd)
            lint.expect(not extra, f"{where}:{no}",
                        f"the build stage installs packages outside scripts/bootstrap.sh: {' '.join(extra)} "
                        "(add them to PACKAGES in scripts/bootstrap.sh instead, so both lists stay equal)")
            if re.search(r"cmake\s+--build|scripts/build\.sh|\bninja\b", cmd):
                run_index.setdefault("build", no)
                if re.search(r"--target\b", cmd):
                    for target in ("optower-server", "optower"):
                        lint.expect(re.search(rf"--target\b[^&;]*\s{re.escape(target)}(\s|$)", cmd),
                                    f"{where}:{no}", f"cmake --build --target does not build {target}")
    lint.expect(boot_copies, bwhere, "does not COPY scripts/bootstrap.sh into the build stage")
    lint.expect(ran_bootstrap, bwhere,
                f"does not RUN the copied scripts/bootstrap.sh ({', '.join(sorted(boot_copies)) or 'not copied'}): "
                "the stage's packages would not be the bootstrap script's")
    lint.expect("build" in run_index, bwhere, "does not build (no cmake --build / scripts/build.sh)")
    if "build" in run_index and "bootstrap" in run_index:
        lint.expect(run_index["bootstrap"] < run_index["build"], bwhere,
                    "runs the build before scripts/bootstrap.sh")
    boot_path = os.path.join(lint.root, "scripts", "bootstrap.sh")
    boot_pkgs = bootstrap_packages(boot_path) if os.path.isfile(boot_path) else None
    lint.expect(boot_pkgs, "scripts/bootstrap.sh", "no PACKAGES=( ... ) array found")

    # --- runtime stage
    rwhere = f"{where} (runtime stage)"
    runtime_pkgs = []
    users, exposed, volumes, healthchecks, entry = [], set(), set(), [], []
    for no, ins, args in runtime["ins"]:
        if ins == "RUN":
            runtime_pkgs += apt_installed_packages(strip_flags(args)[1])
        elif ins == "USER":
            users.append((no, args.strip()))
        elif ins == "EXPOSE":
            for w in args.split():
                m = re.fullmatch(r"(\d+)(/tcp)?", w)
                if m:
                    exposed.add(int(m.group(1)))
        elif ins == "VOLUME":
            vols = exec_form_or_words(args)
            volumes.update(v.rstrip("/") for v in (vols if isinstance(vols, list) else [vols]))
        elif ins == "HEALTHCHECK":
            healthchecks.append((no, args.strip()))
        elif ins in ("ENTRYPOINT", "CMD"):
            entry.append(" ".join(exec_form_or_words(args)))
    # The runtime libraries come from the build stage (scripts/runtime_libs.sh copies what the
    # binaries load, ldd's closure) or, the older way, from apt packages installed here.
    copies_libs = any(re.search(r"runtime_libs\.sh\b.*optower-server.*\boptower\b", " ".join(a.split()))
                      for _, ins, a in build["ins"] if ins == "RUN")
    root_copied = any(ins == "COPY" and "from" in strip_flags(a)[0]
                      and exec_form_or_words(strip_flags(a)[1])[-1] == "/" for _, ins, a in runtime["ins"])
    ldd_checked = any(ins == "RUN" and re.search(r"\bldd\b.*optower-server.*not found", a)
                      for _, ins, a in runtime["ins"])
    lint.expect(ldd_checked, rwhere, "no RUN ldd ... | grep \"not found\" check of the binaries")
    if copies_libs or root_copied:
        lint.expect(copies_libs and root_copied, rwhere,
                    "the build stage must RUN scripts/runtime_libs.sh on both binaries and the runtime "
                    "stage COPY --from its output over /")
        lint_dockerfile_tail(lint, rwhere, runtime_pkgs, users, exposed, volumes, healthchecks, entry)
        lint.notes.append("runtime libraries: copied by scripts/runtime_libs.sh (ldd closure)")
        return
    lint.expect(runtime_pkgs, rwhere, "installs no runtime packages (apt-get install)")
    for p in ("libtorch1.13", "libopenblas0-openmp"):
        lint.expect(p in runtime_pkgs, rwhere, f"does not install {p}")
    lint_dockerfile_tail(lint, rwhere, runtime_pkgs, users, exposed, volumes, healthchecks, entry)
    lint_runtime_libraries(lint, runtime_pkgs, build_dir)


def lint_dockerfile_tail(lint, rwhere, runtime_pkgs, users, exposed, volumes, healthchecks, entry):
    where = "Dockerfile"
    for p in runtime_pkgs:
        lint.expect(not p.endswith("-dev") and p not in ("build-essential", "cmake", "ninja-build",
                                                           "g++", "gcc", "ccache", "pkg-config"),
                    rwhere, f"installs build-time package {p}: the runtime stage takes runtime libraries only")
    if lint.expect(users, rwhere, "has no USER: it would run as root"):
        no, user = users[-1]
        name = user.split(":")[0]
        lint.expect(name not in ("root", "0", ""), f"{where}:{no}", f"USER {user} is root")
    for port in (GRPC_PORT, METRICS_PORT):
        lint.expect(port in exposed, rwhere, f"does not EXPOSE {port}")
    lint.expect(DATA_DIR in volumes, rwhere, f"does not declare VOLUME {DATA_DIR}")
    if lint.expect(healthchecks, rwhere, "has no HEALTHCHECK"):
        no, hc = healthchecks[-1]
        lint.expect(not hc.upper().startswith("NONE"), f"{where}:{no}", "HEALTHCHECK NONE")
        lint.expect("health" in hc and str(GRPC_PORT) in hc, f"{where}:{no}",
                    f"HEALTHCHECK should query the gRPC health service on port {GRPC_PORT}: {hc}")
    lint.expect(any("optower-server" in e for e in entry), rwhere,
                "ENTRYPOINT/CMD does not start optower-server")


def lint_runtime_libraries(lint, runtime_pkgs, build_dir):
    """Every NEEDED library of the built binaries must come from an installed runtime package."""
    if not build_dir:
        lint.notes.append("runtime libraries: not checked (no --build-dir)")
        return
    binaries = [os.path.join(build_dir, "server", "optower-server"), os.path.join(build_dir, "cli", "optower")]
    binaries = [b for b in binaries if os.path.isfile(b)]
    if not binaries or not shutil.which("readelf") or not shutil.which("dpkg"):
        lint.notes.append(f"runtime libraries: not checked (no binaries in {build_dir}, or no readelf/dpkg)")
        return
    ldconfig = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    paths = {}
    for line in ldconfig.splitlines():
        m = re.match(r"\s*(\S+) \((.*?)\) => (\S+)", line)
        if m:
            paths.setdefault(m.group(1), m.group(3))
    allowed = set(runtime_pkgs) | BASE_IMAGE_PACKAGES
    needed = []  # (binary, soname, path)
    for b in binaries:
        out = subprocess.run(["readelf", "-d", b], capture_output=True, text=True).stdout
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", out):
            p = paths.get(lib)
            if lint.expect(p, lint.rel(b) if b.startswith(lint.root) else b,
                           f"needs {lib}, which ldconfig does not know"):
                needed.append((b, lib, p))
    # One dpkg -S for every path (and its resolved target: alternatives such as libblas.so.3).
    queries = sorted({q for _, _, p in needed for q in (p, os.path.realpath(p))})
    owner = {}
    if queries:
        r = subprocess.run(["dpkg", "-S"] + queries, capture_output=True, text=True)
        for line in r.stdout.splitlines():
            pkgs, _, path = line.partition(": ")
            owner[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    for b, lib, p in needed:
        pkg = owner.get(os.path.realpath(p)) or owner.get(p)
        lint.expect(pkg in allowed, "Dockerfile (runtime stage)",
                    f"{os.path.basename(b)} loads {lib} from package {pkg}, which the runtime stage "
                    "does not install")


def lint_dockerignore(lint):
    path = os.path.join(lint.root, ".dockerignore")
    if not lint.expect(os.path.isfile(path), ".dockerignore", "missing"):
        return
    pats = {l.strip().rstrip("/") for l in open(path) if l.strip() and not l.startswith("#")}
    for want in ("build*", "out", ".git", "deploy/secrets"):
        lint.expect(want in pats, ".dockerignore", f"does not exclude {want}/")


# ------------------------------------------------------------------------------------------------
# YAML
# ------------------------------------------------------------------------------------------------

def load_yaml_files(lint, yaml):
    docs = {}
    deploy = os.path.join(lint.root, "deploy")
    if not lint.expect(os.path.isdir(deploy), "deploy/", "missing"):
        return docs
    for dirpath, _, files in os.walk(deploy):
        for f in sorted(files):
            if not f.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(dirpath, f)
            try:
                loaded = [d for d in yaml.safe_load_all(open(path)) if d is not None]
            except yaml.YAMLError as e:
                lint.fail(lint.rel(path), f"does not parse as YAML: {e}")
                continue
            lint.expect(loaded, lint.rel(path), "holds no YAML document")
            docs[path] = loaded
    return docs


def containers_of(deploy):
    return (((deploy.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []


def arg_value(args, flag):
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def under(path, mount):
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def lint_k8s(lint, docs, config_text):
    k8s_dir = os.path.join(lint.root, "deploy", "k8s")
    by_kind = {}
    for path, loaded in docs.items():
        if not path.startswith(k8s_dir + os.sep):
            continue
        for d in loaded:
            where = lint.rel(path)
            if not lint.expect(isinstance(d, dict) and d.get("apiVersion") and d.get("kind"),
                               where, "a document without apiVersion/kind"):
                continue
            lint.expect((d.get("metadata") or {}).get("name"), where, f"{d['kind']} without metadata.name")
            if os.path.dirname(path) == k8s_dir:  # deploy/k8s/*.yaml: what `kubectl apply -f` applies
                by_kind.setdefault(d["kind"], []).append((where, d))
    for kind in K8S_KINDS:
        lint.expect(kind in by_kind, "deploy/k8s/", f"no {kind} manifest")
    if "Deployment" not in by_kind:
        return
    for kind in ("Deployment", "Service", "PersistentVolumeClaim"):
        lint.expect(len(by_kind.get(kind, [])) <= 1, "deploy/k8s/", f"more than one {kind}")

    where, dep = by_kind["Deployment"][0]
    spec = dep.get("spec") or {}
    lint.expect(spec.get("replicas") == 1, where,
                f"replicas is {spec.get('replicas')!r}, want 1 (one writer per SQLite event log)")
    lint.expect((spec.get("strategy") or {}).get("type") == "Recreate", where,
                "strategy.type must be Recreate: a rolling update would run two writers on one log")
    pod = (spec.get("template") or {}).get("spec") or {}
    pod_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    containers = containers_of(dep)
    if not lint.expect(containers, where, "no containers"):
        return
    c = next((c for c in containers if "optower" in str(c.get("image", ""))), containers[0])
    cwhere = f"{where} (container {c.get('name')})"
    for probe in ("readinessProbe", "livenessProbe"):
        p = c.get(probe) or {}
        grpc = p.get("grpc")
        lint.expect(isinstance(grpc, dict) and grpc.get("port") == GRPC_PORT, cwhere,
                    f"{probe} must be a native grpc probe on port {GRPC_PORT} (got {p or 'none'})")
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    lint.expect(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, cwhere,
                "securityContext.runAsNonRoot must be true")
    for sc in (psc, csc):
        if "runAsUser" in sc:
            lint.expect(sc["runAsUser"] != 0, cwhere, "runAsUser 0 is root")
    cports = {p.get("containerPort"): p.get("name") for p in c.get("ports") or []}
    for port in (GRPC_PORT, METRICS_PORT):
        lint.expect(port in cports, cwhere, f"no containerPort {port}")
    args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
    metrics = arg_value(args, "--metrics_port")
    lint.expect(metrics == str(METRICS_PORT), cwhere, f"--metrics_port is {metrics}, want {METRICS_PORT}")

    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = {m.get("mountPath", "").rstrip("/"): m for m in c.get("volumeMounts") or []}
    pvc_names = [d["metadata"]["name"] for _, d in by_kind.get("PersistentVolumeClaim", [])]
    data = mounts.get(DATA_DIR)
    if lint.expect(data, cwhere, f"nothing mounted at {DATA_DIR}"):
        vol = volumes.get(data.get("name")) or {}
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        lint.expect(claim and claim in pvc_names, cwhere,
                    f"{DATA_DIR} must be the PersistentVolumeClaim {pvc_names} (got volume {vol or data.get('name')})")
        lint.expect(not data.get("readOnly"), cwhere, f"{DATA_DIR} is mounted read-only")

    # ConfigMap: mounted, and --config points into it at a key that exists.
    config = arg_value(args, "--config")
    cms = {d["metadata"]["name"]: d for _, d in by_kind.get("ConfigMap", [])}
    found_cm = None
    for mpath, m in mounts.items():
        cm = (volumes.get(m.get("name")) or {}).get("configMap")
        if cm and config and under(config, mpath):
            key = m.get("subPath") or os.path.relpath(config, mpath)
            found_cm = (cm.get("name"), key)
    if lint.expect(found_cm, cwhere, f"--config ({config}) is not a file of a mounted ConfigMap"):
        name, key = found_cm
        cm = cms.get(name)
        if lint.expect(cm, cwhere, f"mounts ConfigMap {name}, which deploy/k8s/ does not define"):
            text = (cm.get("data") or {}).get(key)
            lint.expect(text is not None, lint.rel(k8s_dir), f"ConfigMap {name} has no key {key}")
            if text is not None and config_text is not None:
                lint.expect(text == config_text, f"ConfigMap {name}",
                            f"data[{key}] differs from deploy/config/server.textproto: keep them equal")

    # Secret: the admin token as a file (--admin_token_file into a secret volume) or env var.
    secrets = {d["metadata"]["name"]: d for _, d in by_kind.get("Secret", [])}
    used = []
    token_file = arg_value(args, "--admin_token_file")
    if token_file is None:
        token_file = config_fields(config_text).get("admin_token_file")
    token_env = any(e.get("name") == "OPTOWER_ADMIN_TOKEN" for e in c.get("env") or [])
    problem = open_admin_problem(args, config_text, token_env=token_env)
    lint.expect(problem is None, cwhere, f"the container {problem}")
    for mpath, m in mounts.items():
        sec = (volumes.get(m.get("name")) or {}).get("secret")
        if sec and token_file and under(token_file, mpath):
            used.append((sec.get("secretName"), m.get("subPath") or os.path.relpath(token_file, mpath)))
    for e in c.get("env") or []:
        ref = ((e.get("valueFrom") or {}).get("secretKeyRef")) or {}
        if e.get("name") == "OPTOWER_ADMIN_TOKEN" and ref:
            used.append((ref.get("name"), ref.get("key")))
    if lint.expect(used, cwhere, "the admin token is neither admin_token_file (config or flag) in a "
                                 "mounted Secret nor env OPTOWER_ADMIN_TOKEN from a secretKeyRef"):
        for name, key in used:
            s = secrets.get(name)
            if lint.expect(s, cwhere, f"uses Secret {name}, which deploy/k8s/ does not define"):
                keys = set((s.get("data") or {}).keys()) | set((s.get("stringData") or {}).keys())
                lint.expect(key in keys, f"Secret {name}", f"has no key {key} (has {sorted(keys)})")

    # Service: both ports, reaching the container's, selecting the pod.
    if "Service" in by_kind:
        swhere, svc = by_kind["Service"][0]
        sspec = svc.get("spec") or {}
        sports = {p.get("port"): p for p in sspec.get("ports") or []}
        for port in (GRPC_PORT, METRICS_PORT):
            if lint.expect(port in sports, swhere, f"does not expose port {port}"):
                target = sports[port].get("targetPort", port)
                lint.expect(target == port or target == cports.get(port), swhere,
                            f"port {port} targets {target!r}, not the container's port {port} "
                            f"(named {cports.get(port)!r})")
        sel = sspec.get("selector") or {}
        lint.expect(sel and all(pod_labels.get(k) == v for k, v in sel.items()), swhere,
                    f"selector {sel} does not match the Deployment's pod labels {pod_labels}")
    if "PersistentVolumeClaim" in by_kind:
        pwhere, pvc = by_kind["PersistentVolumeClaim"][0]
        pspec = pvc.get("spec") or {}
        lint.expect("ReadWriteOnce" in (pspec.get("accessModes") or []) or
                    "ReadWriteOncePod" in (pspec.get("accessModes") or []), pwhere,
                    "accessModes should be ReadWriteOnce(Pod): one node, one writer")
        lint.expect(((pspec.get("resources") or {}).get("requests") or {}).get("storage"), pwhere,
                    "no resources.requests.storage")


# ------------------------------------------------------------------------------------------------
# Open admin RPCs: the server refuses a non-loopback host without an admin token unless
# --insecure_open_admin; every shipped command must configure a token and never pass the opt-out.
# ------------------------------------------------------------------------------------------------

def config_fields(text):
    """Top-level scalar fields of a text-format ServerConfig: {name: value-as-text}."""
    fields, depth = {}, 0
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0]
        if depth == 0:
            m = re.match(r'\s*(\w+)\s*:\s*("([^"]*)"|[^\s{]+)', line)
            if m:
                fields[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(2)
        depth += line.count("{") - line.count("}")
    return fields


def is_loopback(host):
    h = host.strip().lower()
    return h in ("localhost", "::1", "[::1]") or re.fullmatch(r"127(\.\d{1,3}){3}", h) is not None


def flag_is_set(args, name):
    """An absl bool flag in `args`: --name, --name=true/1/yes (not --noname or --name=false)."""
    on = False
    for a in args:
        if a == f"--{name}" or a == f"-{name}":
            on = True
        elif a.startswith(f"--{name}=") or a.startswith(f"-{name}="):
            on = a.split("=", 1)[1].lower() in ("true", "1", "yes", "t", "y")
        elif a in (f"--no{name}", f"-no{name}"):
            on = False
    return on


def open_admin_problem(args, config_text, token_env=False):
    """Why `optower-server ARGS` with that config would serve open admin RPCs on the network (or
    start with the opt-out), else None. Flags override the config's fields."""
    cfg = config_fields(config_text)
    if flag_is_set(args, "insecure_open_admin") or cfg.get("insecure_open_admin") in ("true", "1", "True"):
        return "passes --insecure_open_admin (insecure_open_admin): the admin RPCs would be open"
    host = arg_value(args, "--host") or cfg.get("host") or "127.0.0.1"
    token = arg_value(args, "--admin_token_file")
    if token is None:
        token = cfg.get("admin_token_file", "")
    if not is_loopback(host) and not token and not token_env:
        return (f"listens on {host} (not loopback) without an admin token: set admin_token_file "
                "in the config or --admin_token_file (the server refuses to start otherwise)")
    return None


def server_args(entrypoint, cmd):
    """The arguments optower-server gets from ENTRYPOINT + CMD (exec or shell form), or None."""
    words = list(entrypoint or []) + list(cmd or [])
    for i, w in enumerate(words):
        if os.path.basename(w) == "optower-server":
            return words[i + 1:]
    return None


def lint_dockerfile_open_admin(lint):
    path = os.path.join(lint.root, "Dockerfile")
    where = "Dockerfile"
    if not os.path.isfile(path):
        return
    stages = split_stages(parse_dockerfile(open(path).read()))
    if not stages:
        return
    runtime = stages[-1]
    entrypoint, cmd, copies = None, None, []
    for no, ins, args in runtime["ins"]:
        if ins == "ENTRYPOINT":
            entrypoint, cmd = exec_form_or_words(args), None  # a new ENTRYPOINT resets CMD
        elif ins == "CMD":
            cmd = exec_form_or_words(args)
        elif ins == "COPY":
            flags, rest = strip_flags(args)
            if "from" not in flags:
                words = exec_form_or_words(rest)
                if len(words) >= 2:
                    copies.append((words[:-1], words[-1]))
    args = server_args(entrypoint, cmd)
    if not lint.expect(args is not None, where,
                       f"ENTRYPOINT {entrypoint} + CMD {cmd} does not run optower-server"):
        return
    config = arg_value(args, "--config")
    config_text = ""
    if config:
        src = None
        for sources, dest in copies:
            if dest == config or (dest.endswith("/") and
                                  any(dest + os.path.basename(s) == config for s in sources)):
                src = next(s for s in sources if dest == config or dest + os.path.basename(s) == config)
        if lint.expect(src and os.path.isfile(os.path.join(lint.root, src)), where,
                       f"--config={config}: no COPY from the repository puts that file in the image"):
            config_text = open(os.path.join(lint.root, src)).read()
    problem = open_admin_problem(args, config_text)
    lint.expect(problem is None, where,
                f"the default command (ENTRYPOINT + CMD, config {config}) {problem}")


def compose_port_targets(ports):
    out = set()
    for p in ports or []:
        if isinstance(p, dict):
            out.add(int(p.get("target", 0)))
        else:
            s = str(p).split("/")[0]
            out.add(int(s.rsplit(":", 1)[-1].split("-")[0]))
    return out


def compose_mounts(svc):
    """{container path: (source, "bind" | "volume")} of a compose service's volumes."""
    mounts = {}
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            mounts[str(v.get("target", "")).rstrip("/")] = (v.get("source"), v.get("type", "volume"))
        else:
            parts = str(v).split(":")
            if len(parts) >= 2:
                mounts[parts[1].rstrip("/")] = (parts[0], "bind" if parts[0].startswith((".", "/", "~")) else "volume")
    return mounts


def compose_env(svc):
    """A compose service's environment as {name: value or None}."""
    env = svc.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): (None if v is None else str(v)) for k, v in env.items()}
    out = {}
    for e in env:
        name, eq, value = str(e).partition("=")
        out[name] = value if eq else None
    return out


def lint_compose(lint, docs):
    path = os.path.join(lint.root, "deploy", "docker-compose.yml")
    if not os.path.isfile(path):
        path = os.path.join(lint.root, "deploy", "docker-compose.yaml")
    where = lint.rel(path)
    if not lint.expect(path in docs, "deploy/docker-compose.yml", "missing or not valid YAML"):
        return
    comp = docs[path][0]
    services = comp.get("services") or {}
    servers = {n: s for n, s in services.items() if not s.get("profiles")}
    if not lint.expect(len(servers) == 1, where,
                       f"want exactly one (default-profile) service, the server; found {sorted(servers)}"):
        if not servers:
            return
    name, svc = next(iter(servers.items()))
    swhere = f"{where} (service {name})"
    lint.expect(svc.get("image") or svc.get("build"), swhere, "neither image nor build")
    lint.expect(not svc.get("deploy", {}).get("replicas", 1) > 1, swhere, "replicas > 1: one writer per log")
    targets = compose_port_targets(svc.get("ports"))
    for port in (GRPC_PORT, METRICS_PORT):
        lint.expect(port in targets, swhere, f"does not publish container port {port}")
    top_volumes = comp.get("volumes") or {}
    mounts = compose_mounts(svc)
    data = mounts.get(DATA_DIR)
    if lint.expect(data, swhere, f"nothing mounted at {DATA_DIR}"):
        lint.expect(data[1] == "volume" and data[0] in top_volumes, swhere,
                    f"{DATA_DIR} must be a named volume declared under top-level volumes (got {data[0]})")
    cmd = svc.get("command") or []
    cmd = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
    config = arg_value(cmd, "--config")
    if config is None:
        config = "/etc/optower/server.textproto"  # the image's default CMD
    mounted = [(m, src) for m, (src, kind) in mounts.items() if under(config, m) and kind == "bind"]
    config_text = ""
    if lint.expect(mounted, swhere, f"--config {config} is not a mounted file"):
        src = mounted[0][1]
        host = os.path.normpath(os.path.join(os.path.dirname(path), src))
        if lint.expect(os.path.exists(host), swhere, f"the config source {src} does not exist"):
            config_text = open(host).read() if os.path.isfile(host) else ""
    env_names = set(compose_env(svc))
    token_file = arg_value(cmd, "--admin_token_file")
    if token_file is None:
        token_file = config_fields(config_text).get("admin_token_file")
    problem = open_admin_problem(cmd, config_text, token_env="OPTOWER_ADMIN_TOKEN" in env_names)
    lint.expect(problem is None, swhere, f"the service {problem}")
    sec_names = [s if isinstance(s, str) else s.get("source") for s in svc.get("secrets") or []]
    by_secret = token_file and any(token_file == f"/run/secrets/{s}" for s in sec_names)
    lint.expect(by_secret or "OPTOWER_ADMIN_TOKEN" in env_names, swhere,
                "the admin token is neither admin_token_file=/run/secrets/<a service secret> "
                "(config or flag) nor env OPTOWER_ADMIN_TOKEN")
    for s in sec_names:
        lint.expect(s in (comp.get("secrets") or {}), swhere, f"secret {s} is not declared at top level")


def lint_config(lint):
    path = os.path.join(lint.root, "deploy", "config", "server.textproto")
    where = "deploy/config/server.textproto"
    if not lint.expect(os.path.isfile(path), where, "missing"):
        return None
    text = open(path).read()
    body = "\n".join(l.split("#", 1)[0] for l in text.splitlines())
    host = re.search(r'^\s*host\s*:\s*"([^"]*)"', body, re.M)
    lint.expect(host and host.group(1) in ("0.0.0.0", "::", "[::]"), where,
                "host must be \"0.0.0.0\" (or \"[::]\"): the default 127.0.0.1 is unreachable from "
                "outside the container, by published ports, Services and gRPC probes alike")
    port = re.search(r"^\s*port\s*:\s*(\d+)", body, re.M)
    lint.expect(port is None or int(port.group(1)) == GRPC_PORT, where,
                f"port {port.group(1) if port else ''} differs from the {GRPC_PORT} everything else uses")
    data = re.search(r'^\s*data_dir\s*:\s*"([^"]*)"', body, re.M)
    lint.expect(data and data.group(1).rstrip("/") == DATA_DIR, where, f"data_dir must be {DATA_DIR}")
    protoc_check(lint, where, text)
    return text


def protoc_check(lint, where, text):
    """`text` parses as a text-format optower.v1.ServerConfig (when protoc and the proto are here)."""
    proto = os.path.join(lint.root, "proto", "optower", "v1", "optower.proto")
    protoc = shutil.which("protoc")
    if os.path.isfile(proto) and protoc:
        r = subprocess.run([protoc, "--encode=optower.v1.ServerConfig", "-I", os.path.join(lint.root, "proto"),
                            proto], input=text.encode(), capture_output=True)
        lint.expect(r.returncode == 0, where, "is not a valid optower.v1.ServerConfig: " +
                    r.stderr.decode(errors="replace").strip().replace("\n", "; "))
    else:
        lint.notes.append(f"{os.path.basename(where)}: not checked against the proto (no protoc or proto file)")


# ------------------------------------------------------------------------------------------------
# Scale-out (issue 13): PostgreSQL, serving replicas (--role=serve) and one trainer (--role=train).
# deploy/scaleout/config/{serve,train}.textproto, deploy/scaleout/docker-compose.yml and
# deploy/k8s/scaleout/*.yaml. The DSN (libpq keywords, password included) is a secret: a file named by
# postgres.dsn_file (or --postgres_dsn_file) in a mounted secret, or env OPTOWER_PG_DSN from a
# secretKeyRef; never a literal in args, an env value or a config.
# ------------------------------------------------------------------------------------------------

SCALEOUT_ROLES = ("serve", "train")
SCALEOUT_CONFIG_DIR = os.path.join("deploy", "scaleout", "config")
SCALEOUT_COMPOSE = os.path.join("deploy", "scaleout", "docker-compose.yml")
SCALEOUT_K8S_DIR = os.path.join("deploy", "k8s", "scaleout")
SCALEOUT_K8S_KINDS = ("Deployment", "Service", "ConfigMap", "Secret", "StatefulSet")
# Environment variables whose value is a secret: only ever from a secretKeyRef (k8s) or a secret file.
SECRET_ENV_NAMES = ("OPTOWER_PG_DSN", "OPTOWER_ADMIN_TOKEN", "OPTOWER_RETRIEVE_TOKEN", "POSTGRES_PASSWORD",
                    "PGPASSWORD")
# A password or a connection string written out: libpq's password=..., a URI with user:password@,
# any postgres:// URI (it may carry the password as ?password=).
LITERAL_SECRET = re.compile(r"(?i)\bpassword\s*=\s*[^\s'\"&]|\bpostgres(?:ql)?://")


def literal_secret(value):
    return value is not None and LITERAL_SECRET.search(str(value)) is not None


def config_body(text):
    return "\n".join(l.split("#", 1)[0] for l in (text or "").splitlines())


def config_block(text, name):
    """Scalar fields of the top-level message field `name { ... }` of a text-format config (None if
    absent)."""
    depth, inside, lines = 0, False, []
    for line in config_body(text).splitlines():
        if depth == 0 and not inside:
            m = re.match(rf"\s*{re.escape(name)}\s*:?\s*{{(.*)$", line)
            if m:
                inside, depth = True, 1 + m.group(1).count("{") - m.group(1).count("}")
                lines.append(m.group(1).rsplit("}", 1)[0] if depth == 0 else m.group(1))
                if depth == 0:
                    break
                continue
        if inside:
            depth += line.count("{") - line.count("}")
            if depth <= 0:
                lines.append(line.rsplit("}", 1)[0])
                break
            lines.append(line)
        else:
            depth += line.count("{") - line.count("}")
    return config_fields("\n".join(lines)) if inside else None


def scaleout_dsn_source(args, config_text):
    """(postgres enabled?, dsn_file or None): flags override the config (--postgres_dsn_file sets both)."""
    pg = config_block(config_text, "postgres") or {}
    flag_file = arg_value(args, "--postgres_dsn_file")
    enabled = flag_file is not None or pg.get("enabled") in ("true", "True", "1", "t")
    dsn_file = flag_file if flag_file is not None else (pg.get("dsn_file") or None)
    return enabled, dsn_file


def scaleout_literal_args(lint, where, args):
    for a in args:
        lint.expect(not literal_secret(a), where,
                    f"argument {a.split('=', 1)[0]}=... holds a password or a connection string: "
                    "the DSN comes from a secret file (postgres.dsn_file) or OPTOWER_PG_DSN from a secret")
        lint.expect(not re.match(r"--?(postgres_)?dsn(=|$)", a), where,
                    f"argument {a.split('=', 1)[0]} passes a DSN on the command line (visible in ps): "
                    "use --postgres_dsn_file or postgres.dsn_file")


def lint_scaleout_configs(lint):
    """deploy/scaleout/config/{serve,train}.textproto: {role: text}."""
    configs = {}
    for role in SCALEOUT_ROLES:
        rel = os.path.join(SCALEOUT_CONFIG_DIR, f"{role}.textproto")
        path = os.path.join(lint.root, rel)
        if not lint.expect(os.path.isfile(path), rel, "missing"):
            continue
        text = open(path).read()
        configs[role] = text
        protoc_check(lint, rel, text)
        f = config_fields(text)
        lint.expect(f.get("role") == role, rel, f"role is {f.get('role')!r}, want \"{role}\"")
        lint.expect(f.get("host") in ("0.0.0.0", "::", "[::]"), rel,
                    "host must be \"0.0.0.0\" (or \"[::]\"): replicas are reached over the network")
        lint.expect(f.get("port") in (None, str(GRPC_PORT)), rel, f"port differs from {GRPC_PORT}")
        lint.expect((f.get("data_dir") or "").rstrip("/") == DATA_DIR, rel, f"data_dir must be {DATA_DIR}")
        pg = config_block(text, "postgres")
        if lint.expect(pg is not None, rel, "no postgres { ... } block: the roles need the shared backend"):
            lint.expect(pg.get("enabled") in ("true", "True", "1", "t"), rel, "postgres.enabled is not true")
            lint.expect(pg.get("dsn_file", "").startswith("/run/secrets/"), rel,
                        f"postgres.dsn_file is {pg.get('dsn_file')!r}: want a mounted secret under /run/secrets/")
        lint.expect("dsn" not in config_fields(config_body(text)) and
                    not re.search(r"(?m)^\s*dsn\s*:", config_body(text)), rel,
                    "a dsn field: the connection string belongs in the secret file, not the config")
        lint.expect(not literal_secret(config_body(text)), rel,
                    "holds a password or a connection string: the DSN comes from postgres.dsn_file")
        problem = open_admin_problem([], text)
        lint.expect(problem is None, rel, f"the config {problem}")
        if role == "serve":
            lint.expect(f.get("trainer_address"), rel,
                        "no trainer_address: a replica's FAILED_PRECONDITION for admin writes names it")
    return configs


def compose_port_bindings(ports):
    """[(host_ip, published, target)] of a compose service's ports (short or long syntax)."""
    out = []
    for p in ports or []:
        if isinstance(p, dict):
            out.append((str(p.get("host_ip", "")), str(p.get("published", "")), int(p.get("target", 0))))
            continue
        parts = str(p).split("/")[0].split(":")
        target = int(parts[-1].split("-")[0])
        published = parts[-2] if len(parts) >= 2 else ""
        host_ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
        out.append((host_ip, published, target))
    return out


def compose_secret_names(svc):
    return [s if isinstance(s, str) else s.get("source") for s in svc.get("secrets") or []]


def compose_secret_target(svc, path):
    """The service secret mounted at `path` (/run/secrets/<target>), or None."""
    for s in svc.get("secrets") or []:
        src = s if isinstance(s, str) else s.get("source")
        target = src if isinstance(s, str) else (s.get("target") or src)
        if not target.startswith("/"):
            target = f"/run/secrets/{target}"
        if target == path:
            return src
    return None


def lint_scaleout_compose(lint, docs, configs):
    path = os.path.join(lint.root, SCALEOUT_COMPOSE)
    where = SCALEOUT_COMPOSE
    if not lint.expect(path in docs, where, "missing or not valid YAML"):
        return
    comp = docs[path][0]
    services = comp.get("services") or {}
    top_secrets = comp.get("secrets") or {}
    top_volumes = comp.get("volumes") or {}
    secrets_dir = os.path.join(lint.root, "deploy", "secrets")
    for name, sec in top_secrets.items():
        if isinstance(sec, dict) and sec.get("file"):
            host = os.path.normpath(os.path.join(os.path.dirname(path), sec["file"]))
            lint.expect(under(host, secrets_dir), where,
                        f"secret {name}: file {sec['file']} is outside deploy/secrets/ (git-ignored and "
                        "kept out of the image by .dockerignore)")
    pg = {n: s for n, s in services.items() if str(s.get("image", "")).split(":")[0].endswith("postgres")}
    if lint.expect(len(pg) == 1, where, f"want one PostgreSQL service (image postgres:*), found {sorted(pg)}"):
        pname, psvc = next(iter(pg.items()))
        pwhere = f"{where} (service {pname})"
        env = compose_env(psvc)
        lint.expect("POSTGRES_PASSWORD" not in env, pwhere,
                    "POSTGRES_PASSWORD is a literal: use POSTGRES_PASSWORD_FILE=/run/secrets/<a secret>")
        pw_file = env.get("POSTGRES_PASSWORD_FILE")
        src = compose_secret_target(psvc, pw_file) if pw_file else None
        lint.expect(src and src in top_secrets, pwhere,
                    f"POSTGRES_PASSWORD_FILE ({pw_file}) is not a declared secret of the service")
        hc = psvc.get("healthcheck") or {}
        lint.expect(hc.get("test") and not hc.get("disable"), pwhere,
                    "no healthcheck: the optower services wait for service_healthy")
        data = compose_mounts(psvc).get("/var/lib/postgresql/data")
        lint.expect(data and data[1] == "volume" and data[0] in top_volumes, pwhere,
                    "/var/lib/postgresql/data must be a named volume declared under top-level volumes")
        for host_ip, _, target in compose_port_bindings(psvc.get("ports")):
            lint.expect(is_loopback(host_ip) if host_ip else False, pwhere,
                        f"publishes {target} on {host_ip or 'every interface'}: keep the database internal")
    else:
        pname = None
    roles, data_volumes, host_ports = {}, {}, {}
    for name, svc in services.items():
        if name in pg:
            continue
        swhere = f"{where} (service {name})"
        lint.expect("optower" in str(svc.get("image", "")) or svc.get("build"), swhere,
                    "neither an optower image nor a build")
        cmd = svc.get("command") or []
        cmd = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
        mounts = compose_mounts(svc)
        config = arg_value(cmd, "--config") or "/etc/optower/server.textproto"
        mounted = [(m, src) for m, (src, kind) in mounts.items() if under(config, m) and kind == "bind"]
        text = ""
        if lint.expect(mounted, swhere, f"--config {config} is not a mounted file"):
            host = os.path.normpath(os.path.join(os.path.dirname(path), mounted[0][1]))
            if lint.expect(os.path.isfile(host), swhere, f"the config source {mounted[0][1]} does not exist"):
                text = open(host).read()
                lint.expect(os.path.dirname(host) == os.path.join(lint.root, SCALEOUT_CONFIG_DIR), swhere,
                            f"the config {mounted[0][1]} is not one of {SCALEOUT_CONFIG_DIR}/ (the linted ones)")
        flag_role, cfg_role = arg_value(cmd, "--role"), config_fields(text).get("role")
        role = flag_role or cfg_role
        lint.expect(role in SCALEOUT_ROLES, swhere, f"role {role!r}: want --role=serve or --role=train")
        if flag_role and cfg_role:
            lint.expect(flag_role == cfg_role, swhere, f"--role={flag_role} but the config says {cfg_role!r}")
        if text and role in SCALEOUT_ROLES:
            lint.expect(mounted[0][1].endswith(f"{role}.textproto"), swhere,
                        f"role {role} mounts {mounted[0][1]}, not config/{role}.textproto")
        roles.setdefault(role, []).append((name, svc, cmd, text))
        # The DSN: a secret file, never a literal.
        enabled, dsn_file = scaleout_dsn_source(cmd, text)
        lint.expect(enabled, swhere, "postgres is not enabled (config postgres.enabled or --postgres_dsn_file)")
        src = compose_secret_target(svc, dsn_file) if dsn_file else None
        lint.expect(src and src in top_secrets, swhere,
                    f"the DSN file ({dsn_file}) is not a declared secret of the service: compose has no "
                    "secretKeyRef, so the DSN must be a secret file (postgres.dsn_file)")
        scaleout_literal_args(lint, swhere, cmd)
        env = compose_env(svc)
        for k, v in env.items():
            lint.expect(not literal_secret(v), swhere, f"environment {k} holds a password or a connection string")
            lint.expect(k not in SECRET_ENV_NAMES or v is None or re.fullmatch(r"\$\{\w+\}", v), swhere,
                        f"environment {k} is a literal secret: use a secret file")
        # Admin token (as for the single server).
        problem = open_admin_problem(cmd, text, token_env="OPTOWER_ADMIN_TOKEN" in env)
        lint.expect(problem is None, swhere, f"the service {problem}")
        token_file = arg_value(cmd, "--admin_token_file") or config_fields(text).get("admin_token_file")
        tsrc = compose_secret_target(svc, token_file) if token_file else None
        lint.expect((tsrc and tsrc in top_secrets) or "OPTOWER_ADMIN_TOKEN" in env, swhere,
                    "the admin token is neither admin_token_file=/run/secrets/<a declared secret> nor "
                    "env OPTOWER_ADMIN_TOKEN")
        for s in compose_secret_names(svc):
            lint.expect(s in top_secrets, swhere, f"secret {s} is not declared at top level")
        # Its own data volume (its LOCK), ports on loopback, health, ordering.
        data = mounts.get(DATA_DIR)
        if lint.expect(data and data[1] == "volume" and data[0] in top_volumes, swhere,
                       f"{DATA_DIR} must be a named volume declared under top-level volumes"):
            lint.expect(data[0] not in data_volumes, swhere,
                        f"shares the volume {data[0]} with {data_volumes.get(data[0])}: one process per data_dir")
            data_volumes[data[0]] = name
        bindings = compose_port_bindings(svc.get("ports"))
        lint.expect(any(t == GRPC_PORT for _, _, t in bindings), swhere, f"does not publish container port {GRPC_PORT}")
        for host_ip, published, target in bindings:
            lint.expect(host_ip and is_loopback(host_ip), swhere,
                        f"port {target} is published on {host_ip or 'every interface'}: loopback only "
                        "(plaintext until TLS is configured), as ../docker-compose.yml")
            if published:
                lint.expect(published not in host_ports, swhere,
                            f"host port {published} is also {host_ports.get(published)}'s")
                host_ports[published] = name
        hc = svc.get("healthcheck") or {}
        lint.expect(not hc.get("disable") and "health" in " ".join(map(str, hc.get("test") or ["health"])), swhere,
                    "the healthcheck is disabled or not `optower health` (the image's gRPC check)")
        deps = svc.get("depends_on") or {}
        cond = deps.get(pname, {}).get("condition") if isinstance(deps, dict) else None
        lint.expect(pname and cond == "service_healthy", swhere,
                    f"depends_on {pname}: condition service_healthy is missing (got {cond!r})")
        lint.expect(not (svc.get("deploy") or {}).get("replicas", 1) > 1, swhere,
                    "deploy.replicas > 1: each replica is a service of its own (own volume, own port)")
    lint.expect(len(roles.get("serve", [])) >= 2, where,
                f"want at least 2 serving replicas (--role=serve), found {len(roles.get('serve', []))}")
    lint.expect(len(roles.get("train", [])) == 1, where,
                f"want exactly 1 trainer (--role=train), found {len(roles.get('train', []))}")
    # The replicas' trainer_address reaches the trainer: its service name on the compose network or
    # its published port on the host's loopback.
    for tname, tsvc, _, _ in roles.get("train", [])[:1]:
        ok = {f"{tname}:{GRPC_PORT}"}
        ok |= {f"{ip}:{pub}" for ip, pub, t in compose_port_bindings(tsvc.get("ports")) if t == GRPC_PORT and pub}
        ok |= {f"localhost:{pub}" for ip, pub, t in compose_port_bindings(tsvc.get("ports")) if t == GRPC_PORT and pub}
        for name, _, cmd, text in roles.get("serve", []):
            addr = arg_value(cmd, "--trainer_address") or config_fields(text).get("trainer_address")
            lint.expect(addr in ok, f"{where} (service {name})",
                        f"trainer_address {addr!r} is not the trainer ({' or '.join(sorted(ok))})")


def k8s_pod_spec(obj):
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def k8s_pod_labels(obj):
    return (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def k8s_secret_keys(sec):
    return set((sec.get("data") or {}).keys()) | set((sec.get("stringData") or {}).keys())


def k8s_volume_file(volumes, mounts, path):
    """(kind, name, key) of the ConfigMap/Secret key mounted as the file `path`, else None."""
    for mpath, m in mounts.items():
        if not under(path, mpath):
            continue
        vol = volumes.get(m.get("name")) or {}
        for kind, name_key in (("configMap", "name"), ("secret", "secretName")):
            src = vol.get(kind)
            if not src:
                continue
            rel = m.get("subPath") or os.path.relpath(path, mpath)
            key = rel
            items = src.get("items")
            if items:
                key = next((i.get("key") for i in items if i.get("path") == rel), None)
            return kind, src.get(name_key), key
    return None


def lint_k8s_refs(lint, where, pod, cms, secrets):
    """Every ConfigMap/Secret a pod uses (volumes, env, envFrom) exists with the keys it names,
    unless marked optional."""
    def check(kind, name, keys, optional):
        table = cms if kind == "ConfigMap" else secrets
        if optional:
            return
        if lint.expect(name in table, where, f"uses {kind} {name}, which {SCALEOUT_K8S_DIR}/ does not define"):
            have = set((table[name].get("data") or {}).keys()) | set((table[name].get("stringData") or {}).keys())
            for k in keys:
                lint.expect(k in have, where, f"{kind} {name} has no key {k} (has {sorted(have)})")
    for v in pod.get("volumes") or []:
        if v.get("configMap"):
            c = v["configMap"]
            check("ConfigMap", c.get("name"), [i.get("key") for i in c.get("items") or []], c.get("optional"))
        if v.get("secret"):
            c = v["secret"]
            check("Secret", c.get("secretName"), [i.get("key") for i in c.get("items") or []], c.get("optional"))
        for src in ((v.get("projected") or {}).get("sources") or []):
            for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
                if src.get(key):
                    c = src[key]
                    check(kind, c.get("name"), [i.get("key") for i in c.get("items") or []], c.get("optional"))
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if vf.get(key):
                    r = vf[key]
                    check(kind, r.get("name"), [r.get("key")], r.get("optional"))
        for ef in c.get("envFrom") or []:
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ef.get(key):
                    check(kind, ef[key].get("name"), [], ef[key].get("optional"))


def lint_k8s_no_literals(lint, where, pod):
    """No password or connection string in any container's command, args or env values; secret-bearing
    variables only from a secretKeyRef. runAsNonRoot, never uid 0."""
    psc = pod.get("securityContext") or {}
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        cwhere = f"{where} (container {c.get('name')})"
        scaleout_literal_args(lint, cwhere, [str(a) for a in (c.get("command") or []) + (c.get("args") or [])])
        for e in c.get("env") or []:
            if "value" in e:
                lint.expect(not literal_secret(e["value"]), cwhere,
                            f"env {e.get('name')} holds a password or a connection string")
                lint.expect(e.get("name") not in SECRET_ENV_NAMES, cwhere,
                            f"env {e.get('name')} is a literal value: use valueFrom.secretKeyRef")
        csc = c.get("securityContext") or {}
        lint.expect(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, cwhere,
                    "securityContext.runAsNonRoot must be true")
        for sc in (psc, csc):
            if "runAsUser" in sc:
                lint.expect(sc["runAsUser"] != 0, cwhere, "runAsUser 0 is root")


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def lint_scaleout_k8s(lint, docs, configs):
    k8s_dir = os.path.join(lint.root, SCALEOUT_K8S_DIR)
    by_kind = {}
    for path, loaded in docs.items():
        if os.path.dirname(path) != k8s_dir:
            continue
        for d in loaded:
            if isinstance(d, dict) and d.get("kind") and (d.get("metadata") or {}).get("name"):
                by_kind.setdefault(d["kind"], []).append((lint.rel(path), d))
    if not lint.expect(by_kind, SCALEOUT_K8S_DIR + "/", "missing or holds no manifests"):
        return
    for kind in SCALEOUT_K8S_KINDS:
        lint.expect(kind in by_kind, SCALEOUT_K8S_DIR + "/", f"no {kind} manifest")
    cms = {d["metadata"]["name"]: d for _, d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"]: d for _, d in by_kind.get("Secret", [])}
    services = {d["metadata"]["name"]: (w, d) for w, d in by_kind.get("Service", [])}
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    for where, obj in workloads:
        owhere = f"{where} ({obj['kind']} {obj['metadata']['name']})"
        pod = k8s_pod_spec(obj)
        lint_k8s_refs(lint, owhere, pod, cms, secrets)
        lint_k8s_no_literals(lint, owhere, pod)
        sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        lint.expect(selects(sel, k8s_pod_labels(obj)), owhere, "spec.selector does not match the pod labels")

    roles, trainer_addrs = {}, []
    for where, dep in by_kind.get("Deployment", []):
        c = next((c for c in containers_of(dep) if "optower" in str(c.get("image", ""))), None)
        if c is None:
            continue
        dwhere = f"{where} (Deployment {dep['metadata']['name']})"
        pod, spec = k8s_pod_spec(dep), dep.get("spec") or {}
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        mounts = {m.get("mountPath", "").rstrip("/"): m for m in c.get("volumeMounts") or []}
        config = arg_value(args, "--config")
        ref = k8s_volume_file(volumes, mounts, config) if config else None
        text = ""
        if lint.expect(ref and ref[0] == "configMap", dwhere, f"--config ({config}) is not a file of a mounted ConfigMap"):
            text = ((cms.get(ref[1]) or {}).get("data") or {}).get(ref[2])
            lint.expect(text is not None, dwhere, f"ConfigMap {ref[1]} (key {ref[2]}) is not defined in {SCALEOUT_K8S_DIR}/")
            text = text or ""
        flag_role, cfg_role = arg_value(args, "--role"), config_fields(text).get("role")
        role = flag_role or cfg_role
        if not lint.expect(role in SCALEOUT_ROLES, dwhere, f"role {role!r}: want --role=serve or --role=train"):
            continue
        if flag_role and cfg_role:
            lint.expect(flag_role == cfg_role, dwhere, f"--role={flag_role} but the config says {cfg_role!r}")
        if text and role in configs:
            lint.expect(text == configs[role], f"ConfigMap {ref[1]}",
                        f"data[{ref[2]}] differs from {SCALEOUT_CONFIG_DIR}/{role}.textproto: keep them equal")
        roles.setdefault(role, []).append((dwhere, dep))
        if role == "serve":
            trainer_addrs.append((dwhere, arg_value(args, "--trainer_address") or
                                  config_fields(text).get("trainer_address", "")))
        # Probes, ports, metrics.
        for probe in ("readinessProbe", "livenessProbe"):
            p = c.get(probe) or {}
            lint.expect(isinstance(p.get("grpc"), dict) and p["grpc"].get("port") == GRPC_PORT, dwhere,
                        f"{probe} must be a native grpc probe on port {GRPC_PORT} (got {p or 'none'})")
        cports = {p.get("containerPort") for p in c.get("ports") or []}
        for port in (GRPC_PORT, METRICS_PORT):
            lint.expect(port in cports, dwhere, f"no containerPort {port}")
        lint.expect(arg_value(args, "--metrics_port") == str(METRICS_PORT), dwhere, f"--metrics_port is not {METRICS_PORT}")
        # The DSN: a mounted Secret file, or OPTOWER_PG_DSN from a secretKeyRef.
        enabled, dsn_file = scaleout_dsn_source(args, text)
        lint.expect(enabled, dwhere, "postgres is not enabled (config postgres.enabled or --postgres_dsn_file)")
        env_refs = {e.get("name"): ((e.get("valueFrom") or {}).get("secretKeyRef") or {}) for e in c.get("env") or []}
        if dsn_file:
            f = k8s_volume_file(volumes, mounts, dsn_file)
            lint.expect(f and f[0] == "secret", dwhere, f"the DSN file {dsn_file} is not a file of a mounted Secret")
        else:
            lint.expect(env_refs.get("OPTOWER_PG_DSN"), dwhere,
                        "no DSN: neither postgres.dsn_file in a mounted Secret nor OPTOWER_PG_DSN from a secretKeyRef")
        # The admin token.
        token_file = arg_value(args, "--admin_token_file") or config_fields(text).get("admin_token_file")
        problem = open_admin_problem(args, text, token_env=bool(env_refs.get("OPTOWER_ADMIN_TOKEN")))
        lint.expect(problem is None, dwhere, f"the container {problem}")
        f = k8s_volume_file(volumes, mounts, token_file) if token_file else None
        lint.expect((f and f[0] == "secret") or env_refs.get("OPTOWER_ADMIN_TOKEN"), dwhere,
                    "the admin token is neither admin_token_file in a mounted Secret nor env "
                    "OPTOWER_ADMIN_TOKEN from a secretKeyRef")
        # data_dir and the rollout shape of each role.
        data = mounts.get(DATA_DIR)
        vol = volumes.get((data or {}).get("name")) or {}
        if role == "serve":
            lint.expect(isinstance(spec.get("replicas"), int) and spec["replicas"] >= 2, dwhere,
                        f"replicas is {spec.get('replicas')!r}, want 2 or more")
            lint.expect((spec.get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate", dwhere,
                        "strategy.type must be RollingUpdate: replicas hold no state of their own")
            lint.expect("emptyDir" in vol, dwhere,
                        f"{DATA_DIR} must be an emptyDir (the state is in PostgreSQL; a ReadWriteOnce PVC "
                        f"cannot be shared by replicas), got {vol or 'nothing'}")
        else:
            lint.expect(spec.get("replicas") == 1, dwhere, f"replicas is {spec.get('replicas')!r}, want 1 (one trainer)")
            lint.expect((spec.get("strategy") or {}).get("type") == "Recreate", dwhere,
                        "strategy.type must be Recreate: a second trainer would only wait on the election")
            lint.expect(vol, dwhere, f"nothing mounted at {DATA_DIR}")
    lint.expect(len(roles.get("serve", [])) == 1, SCALEOUT_K8S_DIR + "/", "want one serving Deployment (--role=serve)")
    lint.expect(len(roles.get("train", [])) == 1, SCALEOUT_K8S_DIR + "/", "want one trainer Deployment (--role=train)")

    # Services: each selects some workload's pods and reaches its ports; the serving Service selects
    # the serving pods only (50051, 9464), the trainer's the trainer only (50051).
    pods = [(obj, k8s_pod_labels(obj)) for _, obj in workloads]
    def cport(obj, target):
        for c in containers_of(obj):
            for p in c.get("ports") or []:
                if target in (p.get("containerPort"), p.get("name")):
                    return True
        return False
    role_of = {id(dep): role for role, deps in roles.items() for _, dep in deps}
    exposes = {}
    for name, (where, svc) in services.items():
        swhere = f"{where} (Service {name})"
        sspec = svc.get("spec") or {}
        sel = sspec.get("selector") or {}
        chosen = [obj for obj, labels in pods if selects(sel, labels)]
        if not lint.expect(chosen, swhere, f"selector {sel} matches no workload's pods"):
            continue
        for p in sspec.get("ports") or []:
            target = p.get("targetPort", p.get("port"))
            lint.expect(all(cport(obj, target) for obj in chosen), swhere,
                        f"port {p.get('port')} targets {target!r}, which the selected pods do not have")
        chosen_roles = {role_of.get(id(o)) for o in chosen}
        ports = {p.get("port") for p in sspec.get("ports") or []}
        if chosen_roles & set(SCALEOUT_ROLES):
            if lint.expect(len(chosen_roles) == 1, swhere, f"selects {sorted(map(str, chosen_roles))} pods: "
                                                           "serving and trainer pods need separate Services"):
                exposes.setdefault(chosen_roles.pop(), []).append((name, ports))
    want = {"serve": (GRPC_PORT, METRICS_PORT), "train": (GRPC_PORT,)}
    for role, ports in want.items():
        lint.expect(any(all(p in have for p in ports) for _, have in exposes.get(role, [])), SCALEOUT_K8S_DIR + "/",
                    f"no Service exposes {', '.join(map(str, ports))} of the {role} pods")
    for dwhere, addr in trainer_addrs:  # the serving pods' trainer_address (flag or config)
        host, _, port = addr.rpartition(":")
        lint.expect(any(host.split(".")[0] == n and port == str(GRPC_PORT) for n, _ in exposes.get("train", [])),
                    dwhere, f"trainer_address {addr!r} is not <the trainer's Service>:{GRPC_PORT} "
                            f"({[n for n, _ in exposes.get('train', [])]})")

    # PostgreSQL: a StatefulSet behind a headless Service, data on a volumeClaimTemplate, the password
    # from the Secret; the placeholder DSN names that Service.
    for where, sts in by_kind.get("StatefulSet", []):
        swhere = f"{where} (StatefulSet {sts['metadata']['name']})"
        spec = sts.get("spec") or {}
        hs = services.get(spec.get("serviceName"))
        if lint.expect(hs, swhere, f"serviceName {spec.get('serviceName')!r} is not a Service here"):
            lint.expect((hs[1].get("spec") or {}).get("clusterIP") == "None", swhere,
                        f"Service {spec.get('serviceName')} must be headless (clusterIP: None)")
            lint.expect(selects((hs[1].get("spec") or {}).get("selector") or {}, k8s_pod_labels(sts)), swhere,
                        f"Service {spec.get('serviceName')} does not select its pods")
        vcts = spec.get("volumeClaimTemplates") or []
        lint.expect(vcts and all(((v.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
                                 for v in vcts), swhere, "no volumeClaimTemplates with a storage request")
        for c in containers_of(sts):
            if not str(c.get("image", "")).split(":")[0].endswith("postgres"):
                continue
            env = {e.get("name"): e for e in c.get("env") or []}
            pw = env.get("POSTGRES_PASSWORD")
            pw_file = (env.get("POSTGRES_PASSWORD_FILE") or {}).get("value")
            mounts = {m.get("mountPath", "").rstrip("/"): m for m in c.get("volumeMounts") or []}
            volumes = {v.get("name"): v for v in k8s_pod_spec(sts).get("volumes") or []}
            f = k8s_volume_file(volumes, mounts, pw_file) if pw_file else None
            lint.expect((pw and (pw.get("valueFrom") or {}).get("secretKeyRef")) or (f and f[0] == "secret"), swhere,
                        "the PostgreSQL password is neither POSTGRES_PASSWORD from a secretKeyRef nor "
                        "POSTGRES_PASSWORD_FILE in a mounted Secret")
            lint.expect(any(m.startswith("/var/lib/postgresql") and mounts[m].get("name") in
                            {(v.get("metadata") or {}).get("name") for v in vcts} for m in mounts), swhere,
                        "the data folder (/var/lib/postgresql/...) is not a volumeClaimTemplate")
        for name, sec in secrets.items():
            dsn = (sec.get("stringData") or {}).get("dsn")
            m = re.search(r"\bhost\s*=\s*([^\s]+)", dsn or "")
            if m:
                lint.expect(m.group(1).split(".")[0] == spec.get("serviceName"), f"Secret {name}",
                            f"the dsn's host={m.group(1)} is not the StatefulSet's Service {spec.get('serviceName')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", nargs="?", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--build-dir", help="build tree with server/optower-server and cli/optower")
    opts = ap.parse_args()
    lint = Lint(os.path.abspath(opts.root))
    try:
        import yaml
    except ImportError:
        print("FAIL: python3-yaml is not installed: add python3-yaml to PACKAGES in "
              "scripts/bootstrap.sh (Debian's package; run with /usr/bin/python3)", file=sys.stderr)
        return 1
    lint_dockerfile(lint, opts.build_dir)
    lint_dockerfile_open_admin(lint)
    lint_dockerignore(lint)
    config_text = lint_config(lint)
    docs = load_yaml_files(lint, yaml)
    lint_k8s(lint, docs, config_text)
    lint_compose(lint, docs)
    scaleout_configs = lint_scaleout_configs(lint)
    lint_scaleout_compose(lint, docs, scaleout_configs)
    lint_scaleout_k8s(lint, docs, scaleout_configs)
    for n in lint.notes:
        print(f"note: {n}")
    for f in lint.failures:
        print(f"FAIL: {f}", file=sys.stderr)
    print(f"deploy_lint: {lint.checks} checks, {len(lint.failures)} failed ({lint.root})")
    return 1 if lint.failures else 0


if __name__ == "__main__":
    sys.exit(main())
