"""Readiness by progress (docs/exactly-once.md, "Probes"; services/src/health.rs): a service that
reports its progress touches a health file while it makes progress, and its probes run
`kiosk-services health --file F --max-age S` on that file. Checked: the file is named and in
a writable directory, readiness spans two touches or more, liveness a greater age, no other
kiosk program has a probe on a health file; the model is read back from the code."""

from __future__ import annotations

import copy
import posixpath
import re

from .common import ROOT, Report, ident
from .k8s import arg_value, container_env, containers, expand_refs, parts_text, pod_templates
from .probe import chart_variants, expect_refusals, probe
from .services import KIOSK_DOCKERFILE, kiosk_entrypoint, kiosk_program, kiosk_subcommands


HEALTH_RS = ROOT / "services/src/health.rs"


HEALTH_FILE_ARG = "--health-file"
HEALTH_FILE_ENV = "KIOSK_HEALTH_FILE"
# Directories of debian:bookworm-slim (the image's runtime stage) every user may write: a health
# file on the root filesystem must be in one (the program creates no directory).
ROOT_FS_WRITABLE_DIRS = {"/tmp", "/var/tmp"}


# A service's Args take the health file's options (health::FileArgs) and its loop reports
# progress through them; or the module touches a file itself.
HEALTH_WRITER = re.compile(r"#\[command\(flatten\)\]\s*pub\s+\w+\s*:\s*crate::health::FileArgs|\.touch_while_healthy\(")


def health_writers() -> set[str]:
    """The subcommands whose program touches a health file: its Args flatten
    health::FileArgs (whose `progress()` touches the file), or it calls .touch_while_healthy()."""
    return {cmd for cmd, module in kiosk_subcommands().items()
            if (ROOT / f"services/src/{module}.rs").exists() and HEALTH_WRITER.search((ROOT / f"services/src/{module}.rs").read_text())}


def health_model() -> tuple[int | None, int | None]:
    """(how often a healthy service touches its file, `health`'s default --max-age), seconds,
    from services/src/health.rs."""
    text = HEALTH_RS.read_text()
    every = re.search(r"pub const TOUCH_EVERY: Duration = Duration::from_secs\((\d+)\)", text)
    default = re.search(r"#\[arg\([^\]]*default_value_t\s*=\s*(\d+)[^\]]*\)\]\s*pub\s+max_age\s*:", text)
    return (int(every.group(1)) if every else None), (int(default.group(1)) if default else None)


def health_probe(probe: dict | None, entrypoint: str | None, default_age: int | None) -> tuple[str | None, int | None, str]:
    """(the file, --max-age) a probe's `kiosk-services health` reads, or why it is not that.
    The kubelet expands no $(VAR) in a probe's command: it is taken as written."""
    if not probe:
        return None, None, "no such probe"
    if "exec" not in probe:
        return None, None, f"a {'/'.join(k for k in probe if k in ('httpGet', 'tcpSocket', 'grpc')) or 'non-exec'} probe, which says nothing of progress"
    cmd = [str(a) for a in (probe["exec"] or {}).get("command") or []]
    if not cmd or entrypoint is None or cmd[0] not in (entrypoint, posixpath.basename(entrypoint)):
        return None, None, f"it runs {cmd[:1] or 'nothing'}, not the image's binary {entrypoint} (docker/kiosk.Dockerfile ENTRYPOINT)"
    if cmd[1:2] != ["health"]:
        return None, None, f"it runs {' '.join(cmd[:2])}, not `health`"
    file = arg_value(cmd[2:], "--file")
    if file is None:
        return None, None, "no --file"
    age = arg_value(cmd[2:], "--max-age")
    try:
        return file, int(age) if age is not None else default_age, ""
    except ValueError:
        return file, None, f"--max-age {age!r} is not a number of seconds"


def check_health_probes(report: Report, label: str, objects: list[dict]) -> None:
    """Every container of a program that touches a health file (`kiosk-services mirror`) names
    its file, which is on a writable directory, and has a readiness probe running `health` on that
    same file with a --max-age spanning two touches and a liveness probe on it with a greater
    --max-age (a startup probe, if any, on it too), in a pod that restarts it; no other kiosk
    program gets a probe on a health file it never writes."""
    writers, entrypoint = health_writers(), kiosk_entrypoint()
    every, default_age = health_model()
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        for _labels, podspec in pod_templates(obj):
            volumes = {v.get("name"): v for v in podspec.get("volumes") or []}
            for c in containers(podspec):
                program = kiosk_program(c)
                if program is None:
                    continue
                who = f"{label}: {obj.get('_source')}: {ident(obj)}/{c.get('name')} (`kiosk-services {program}`)"
                probes = {k: c.get(k) for k in ("startupProbe", "readinessProbe", "livenessProbe")}
                if program not in writers:
                    on_file = [k for k, p in probes.items() if health_probe(p, entrypoint, default_age)[0] is not None]
                    report.check(not on_file, f"{who}: no probe reads a health file it never writes", f"its {', '.join(on_file)} runs `health`, and "
                                 f"`kiosk-services {program}` touches no health file: the probe fails for ever")
                    continue
                args = [str(a) for a in c.get("args") or []]
                env = container_env(objects, ns, c)
                arg = arg_value(args, HEALTH_FILE_ARG)
                if arg is not None:  # clap: the argument wins over the env; the kubelet expands args with the container's env
                    parts, where = expand_refs(arg, env), f"argument {HEALTH_FILE_ARG} {arg}"
                else:
                    parts, where = env.get(HEALTH_FILE_ENV), f"env {HEALTH_FILE_ENV}"
                known = parts is not None and all(kind == "text" for kind, _ in parts)
                if not report.check(known, f"{who}: names its health file ({HEALTH_FILE_ARG} or env {HEALTH_FILE_ENV})",
                                    f"{where}: {parts_text(parts)} is not known offline" if parts is not None else
                                    "neither: it touches no file, and every probe on one fails"):
                    continue
                file = posixpath.normpath(posixpath.join(c.get("workingDir") or "/", "".join(t for _, t in parts)))
                ages: dict[str, int | None] = {}
                for key, name in (("readinessProbe", "readiness"), ("livenessProbe", "liveness"), ("startupProbe", "startup")):
                    if key == "startupProbe" and not probes[key]:
                        continue  # optional: then readiness and liveness run from the start
                    pfile, age, why = health_probe(probes[key], entrypoint, default_age)
                    same = pfile is not None and posixpath.normpath(posixpath.join(c.get("workingDir") or "/", pfile)) == file
                    if report.check(same and age is not None, f"{who}: its {name} probe runs `{entrypoint} health` on its health file {file} ({where})",
                                    why or (f"--max-age {age}" if pfile is not None and same else f"it reads {pfile}, another file")):
                        ages[name] = age
                r, l = ages.get("readiness"), ages.get("liveness")
                if r is not None and every is not None:
                    report.check(r >= 2 * every, f"{who}: its readiness --max-age ({r} s) spans at least two touches (every {every} s, services/src/health.rs)",
                                 "a single late touch would make it not ready")
                if r is not None and l is not None:
                    report.check(l > r, f"{who}: its liveness --max-age ({l} s) exceeds its readiness --max-age ({r} s)",
                                 "the kubelet would restart it before, or as soon as, it is not ready: a mirror waiting out a broker restart would be killed instead of left to retry")
                # The program creates no directory: the file's directory must exist and be writable.
                d = posixpath.dirname(file)
                mounts = [m for m in c.get("volumeMounts") or [] if d == posixpath.normpath(m.get("mountPath", "")) or
                          d.startswith(posixpath.normpath(m.get("mountPath", "")).rstrip("/") + "/")]
                mount = max(mounts, key=lambda m: len(posixpath.normpath(m.get("mountPath", ""))), default=None)
                what = f"{who}: its health file's directory {d} is writable"
                if mount is not None:
                    vol = volumes.get(mount.get("name")) or {}
                    report.check("emptyDir" in vol and not mount.get("readOnly") and d == posixpath.normpath(mount["mountPath"]),
                                 f"{what} (the mount point of an emptyDir)",
                                 f"volume {mount.get('name')!r} at {mount.get('mountPath')}: " + (
                                     "mounted readOnly" if mount.get("readOnly") else
                                     f"a {next((k for k in vol if k != 'name'), 'missing volume')}, not an emptyDir" if "emptyDir" not in vol else
                                     f"{d} is below its mount point, and nothing creates it"))
                else:
                    read_only = bool((c.get("securityContext") or {}).get("readOnlyRootFilesystem"))
                    report.check(not read_only and d in ROOT_FS_WRITABLE_DIRS, f"{what} (the root filesystem)",
                                 "no volume is mounted there and the root filesystem is read-only (readOnlyRootFilesystem): mount an emptyDir" if read_only else
                                 f"no volume is mounted there, and the image lets every user write only {', '.join(sorted(ROOT_FS_WRITABLE_DIRS))}")
                report.check(podspec.get("restartPolicy", "Always") == "Always", f"{who}: its pod restarts it when its liveness probe fails (restartPolicy Always)",
                             f"restartPolicy {podspec.get('restartPolicy')}")


def health_code_checks(report: Report) -> None:
    """The validator's model of the health file and its probe is the code's."""
    cmds = kiosk_subcommands()
    report.check(cmds.get("health") == "health", "services/src/lib.rs: `kiosk-services health` is the probe (Command::Health(health::Args))", f"subcommands: {cmds}")
    text = HEALTH_RS.read_text()
    report.check(re.search(r"#\[arg\(long\)\]\s*pub\s+file\s*:\s*PathBuf", text) is not None and re.search(r"#\[arg\(long[^\]]*\)\]\s*pub\s+max_age\s*:\s*u64", text) is not None,
                 "services/src/health.rs: `health` takes --file and --max-age (seconds)")
    every, default_age = health_model()
    report.check(every is not None and default_age is not None, f"services/src/health.rs: a healthy service touches its file every {every} s; `health` --max-age defaults to {default_age} s")
    report.check(re.search(r'#\[arg\(long,\s*env\s*=\s*"' + HEALTH_FILE_ENV + r'"\)\]\s*pub\s+health_file\s*:', text) is not None
                 and re.search(r"\.touch_while_healthy\(", text) is not None,
                 f"services/src/health.rs: FileArgs touches the file named by {HEALTH_FILE_ARG} or env {HEALTH_FILE_ENV}")
    writers = health_writers()
    report.check({"mirror", "mongo-sink"} <= writers, f"services/src: the programs that touch a health file (health::FileArgs): {', '.join(sorted(writers)) or 'none'}; the mirror and mongo-sink are",
                 "the mirror or mongo-sink is not")
    entry = kiosk_entrypoint()
    report.check(entry is not None and re.search(r"^COPY\s.*\s" + re.escape(entry or "-") + r"\s*$", KIOSK_DOCKERFILE.read_text(), re.M) is not None,
                 f"docker/kiosk.Dockerfile: the image's binary is {entry} (ENTRYPOINT, copied there): the probes exec it")


def health_self_checks(report: Report, bundle: list[dict], kiosk_bundle: list[dict]) -> None:
    """Each way the mirror's probes could miss a mirror that stopped making progress, or restart
    a mirror that is only waiting, put into a copy of the kind install (default values, or with
    the kiosk services): check_health_probes must reject it, and accept the variants that keep
    them sound. The chart refuses a liveness age not above the readiness age."""

    def find(b, name):
        return next(o for o in b if o.get("kind") == "Deployment" and o["metadata"]["name"].endswith(name))

    def pod(b, name="-mirror"):
        return find(b, name)["spec"]["template"]["spec"]

    def mirror(b, name="-mirror", cname="mirror"):
        return next(c for c in containers(pod(b, name)) if c["name"] == cname)

    def cmd(b, key):
        return mirror(b)[key]["exec"]["command"]

    def set_cmd_arg(b, key, flag, value):
        c = cmd(b, key)
        if value is None:
            i = c.index(flag)
            del c[i:i + 2]
        else:
            c[c.index(flag) + 1] = value

    def env(b):
        return next(e for e in mirror(b)["env"] if e["name"] == HEALTH_FILE_ENV)

    def move_file(b, path):
        env(b)["value"] = path
        for key in ("startupProbe", "readinessProbe", "livenessProbe"):
            set_cmd_arg(b, key, "--file", path)

    def drop_mount(b):
        mirror(b).pop("volumeMounts")
        pod(b).pop("volumes")

    ready, live, start, named = "its readiness probe runs", "its liveness probe runs", "its startup probe runs", "names its health file"
    exceeds, two, writable = "exceeds its readiness --max-age", "spans at least two touches", "is writable"
    KIOSK = "kiosk"
    cases = [
        ("the kind install as it is", None, lambda b: None, None),
        ("the kind install with the kiosk services (REST entry, mongo-sink) as it is", KIOSK, lambda b: None, None),
        # The probes, on the mirror's own file.
        ("the readiness probe removed", None, lambda b: mirror(b).pop("readinessProbe"), ready),
        ("the liveness probe removed", None, lambda b: mirror(b).pop("livenessProbe"), live),
        ("the readiness probe reading another file (/var/run/kiosk/health/other)", None, lambda b: set_cmd_arg(b, "readinessProbe", "--file", "/var/run/kiosk/health/other"), ready),
        ("the liveness probe reading another file", None, lambda b: set_cmd_arg(b, "livenessProbe", "--file", "/var/run/kiosk/health/other"), live),
        ("the startup probe reading another file", None, lambda b: set_cmd_arg(b, "startupProbe", "--file", "/var/run/kiosk/health/other"), start),
        ("KIOSK_HEALTH_FILE naming another file than the probes", None, lambda b: env(b).update(value="/var/run/kiosk/health/other"), ready),
        ("KIOSK_HEALTH_FILE removed (the mirror touches nothing)", None, lambda b: mirror(b)["env"].remove(env(b)), named),
        ("a --health-file argument naming another file (it wins over the env)", None, lambda b: mirror(b)["args"].extend([HEALTH_FILE_ARG, "/var/run/kiosk/health/x"]), ready),
        ("KIOSK_HEALTH_FILE from a Secret (not known offline)", None,
         lambda b: [env(b).pop("value"), env(b).update(valueFrom={"secretKeyRef": {"name": "nowhere", "key": "file"}})], named),
        ("the readiness probe an httpGet (the mirror serves nothing)", None, lambda b: mirror(b).update(readinessProbe={"httpGet": {"path": "/", "port": 8080}}), ready),
        ("the readiness probe through a shell (sh -c)", None,
         lambda b: mirror(b)["readinessProbe"]["exec"].update(command=["sh", "-c", " ".join(cmd(b, "readinessProbe"))]), ready),
        ("the readiness probe running a binary the image does not have (/bin/kiosk-services)", None,
         lambda b: cmd(b, "readinessProbe").__setitem__(0, "/bin/kiosk-services"), ready),
        ("the readiness probe running another subcommand (verify)", None, lambda b: cmd(b, "readinessProbe").__setitem__(1, "verify"), ready),
        # The ages.
        ("the liveness --max-age (20) below the readiness one (30)", None, lambda b: set_cmd_arg(b, "livenessProbe", "--max-age", "20"), exceeds),
        ("the liveness --max-age equal to the readiness one", None, lambda b: set_cmd_arg(b, "livenessProbe", "--max-age", "30"), exceeds),
        ("the liveness probe without --max-age (health's default, 30 s, the readiness age)", None, lambda b: set_cmd_arg(b, "livenessProbe", "--max-age", None), exceeds),
        ("the readiness --max-age 5 (one touch interval)", None, lambda b: set_cmd_arg(b, "readinessProbe", "--max-age", "5"), two),
        # Where the file is.
        ("the health file on the read-only root filesystem (its emptyDir and mount removed)", None, drop_mount, writable),
        ("the emptyDir mounted readOnly", None, lambda b: mirror(b)["volumeMounts"][0].update(readOnly=True), writable),
        ("the health volume a ConfigMap instead of an emptyDir", None,
         lambda b: pod(b)["volumes"][0].update({"configMap": {"name": "x"}}) or pod(b)["volumes"][0].pop("emptyDir"), writable),
        ("the health file in a subdirectory of the emptyDir (nothing creates it)", None, lambda b: move_file(b, "/var/run/kiosk/health/sub/mirror"), writable),
        ("the root filesystem writable, the file in /var/run/kiosk (root's, not the mirror user's)", None,
         lambda b: [drop_mount(b), mirror(b)["securityContext"].update(readOnlyRootFilesystem=False)], writable),
        # Another kiosk program.
        ("the mirror's probes given to `kiosk rest` (it writes no health file)", KIOSK,
         lambda b: mirror(b, "-rest", "rest").update({k: copy.deepcopy(mirror(b)[k]) for k in ("readinessProbe", "livenessProbe")}), "no probe reads a health file"),
        ("`kiosk mongo-sink` without its health file's env (it writes one)", KIOSK,
         lambda b: mirror(b, "-mongo-sink", "mongo-sink")["env"].remove(
             next(e for e in mirror(b, "-mongo-sink", "mongo-sink")["env"] if e["name"] == HEALTH_FILE_ENV)), "names its health file"),
        ("`kiosk mongo-sink` reading the mirror's health file", KIOSK,
         lambda b: mirror(b, "-mongo-sink", "mongo-sink").update({k: copy.deepcopy(mirror(b)[k]) for k in ("readinessProbe", "livenessProbe")}), "on its health file"),
        # Accepted.
        ("the startup probe removed (readiness and liveness then run from the start)", None, lambda b: mirror(b).pop("startupProbe"), None),
        ("--health-file as an argument instead of the env", None,
         lambda b: [mirror(b)["args"].extend([HEALTH_FILE_ARG, env(b)["value"]]), mirror(b)["env"].remove(env(b))], None),
        ("the readiness probe without --max-age (health's default, 30 s)", None, lambda b: set_cmd_arg(b, "readinessProbe", "--max-age", None), None),
        ("the probes naming the binary through PATH (kiosk-services)", None, lambda b: [cmd(b, k).__setitem__(0, "kiosk-services") for k in ("readinessProbe", "livenessProbe")], None),
        ("the root filesystem writable and the file in /tmp, without a volume", None,
         lambda b: [drop_mount(b), mirror(b)["securityContext"].update(readOnlyRootFilesystem=False), move_file(b, "/tmp/mirror-health")], None),
    ]
    bases = {None: bundle, KIOSK: kiosk_bundle}
    expect_refusals(report, [(what, bases[base], doctor, want) for what, base, doctor, want in cases], lambda b: probe(check_health_probes, b),
                    "self-check: probes: {what}: accepted", "self-check: probes: {what}: rejected")

    # The chart: its numbers from values, the liveness age above the readiness age.
    def follow_values(values, objs):
        errs = probe(check_health_probes, objs)
        m = mirror(objs)
        got = (arg_value(m["readinessProbe"]["exec"]["command"], "--max-age"), arg_value(m["livenessProbe"]["exec"]["command"], "--max-age"), arg_value(m["args"], "--stuck-after-secs"))
        report.check(not errs and got == ("45", "600", "120"), f"self-check: probes: the test chart with {values}: the probes' ages and --stuck-after-secs follow the values ({got})", str(errs[:2]))

    chart_variants(report, "test-kafka-istio-mongo",
                   [({"mirror": {"health": {"readiness": {"maxAgeSeconds": 45}, "liveness": {"maxAgeSeconds": 600}, "stuckAfterSeconds": 120}}}, True),
                    ({"mirror": {"health": {"liveness": {"maxAgeSeconds": 20}}}}, False),
                    ({"mirror": {"health": {"readiness": {"maxAgeSeconds": 5}}}}, False)],
                   lambda values, ok: f"self-check: probes: the test chart with {values} {'renders' if ok else 'is refused (schema or template)'}", follow_values)
    health_code_checks(report)
