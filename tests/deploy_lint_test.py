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
    none passes --insecure_open_admin (the server would start with open admin RPCs).

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
    mounts = {}
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            mounts[str(v.get("target", "")).rstrip("/")] = (v.get("source"), v.get("type", "volume"))
        else:
            parts = str(v).split(":")
            if len(parts) >= 2:
                mounts[parts[1].rstrip("/")] = (parts[0], "bind" if parts[0].startswith((".", "/", "~")) else "volume")
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
    env = svc.get("environment") or {}
    env_names = set(env) if isinstance(env, dict) else {str(e).split("=")[0] for e in env}
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
    proto = os.path.join(lint.root, "proto", "optower", "v1", "optower.proto")
    protoc = shutil.which("protoc")
    if os.path.isfile(proto) and protoc:
        r = subprocess.run([protoc, "--encode=optower.v1.ServerConfig", "-I", os.path.join(lint.root, "proto"),
                            proto], input=text.encode(), capture_output=True)
        lint.expect(r.returncode == 0, where, "is not a valid optower.v1.ServerConfig: " +
                    r.stderr.decode(errors="replace").strip().replace("\n", "; "))
    else:
        lint.notes.append("server.textproto: not checked against the proto (no protoc or proto file)")
    return text


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
    for n in lint.notes:
        print(f"note: {n}")
    for f in lint.failures:
        print(f"FAIL: {f}", file=sys.stderr)
    print(f"deploy_lint: {lint.checks} checks, {len(lint.failures)} failed ({lint.root})")
    return 1 if lint.failures else 0


if __name__ == "__main__":
    sys.exit(main())
