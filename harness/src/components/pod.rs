//! Pods: each workload in its own network namespace, as a Kubernetes node gives them.
//!
//! One Linux bridge per mesh (`kiosk<N>`, the first free) on a private /24 that nothing routes off the machine (no
//! default route in any pod, no NAT), one veth pair per pod, `/etc/netns/<ns>/hosts`
//! mapping the cluster's service and pod names to pod addresses (`ip netns exec` mounts it
//! over `/etc/hosts`), and in every pod with a sidecar the nat rules istio-iptables writes:
//! outbound TCP to 15001 except the sidecar's own uid, inbound TCP to 15006, the annotated
//! ports excluded.
//!
//! Everything made here is listed in [`Network`] (serialised into `mesh.json`), so that
//! `kiosk down` removes it even after the supervisor was killed.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The uid and gid Istio's sidecar runs as; its own traffic is never intercepted.
/// istio-iptables exempts both; the local mesh runs Envoy with gid 1337 and keeps uid 0,
/// so it can read the project's files wherever the checkout lies (a 0700 directory, say).
pub const SIDECAR_UID: u32 = 1337;
/// Envoy's outbound and inbound capture ports, as Istio's.
pub const OUTBOUND_CAPTURE_PORT: u16 = 15001;
pub const INBOUND_CAPTURE_PORT: u16 = 15006;
/// The sidecar's Prometheus endpoint (Istio: `/stats/prometheus` on 15090).
pub const STATS_PORT: u16 = 15090;
/// Istio's own ports, never redirected inbound (15008 HBONE, 15020 merged metrics, 15021
/// health, 15090 Envoy stats).
const ISTIO_PORTS: &[u16] = &[15008, 15020, 15021, STATS_PORT];
/// Inbound connections from the sidecar to the app come from this address, so they are
/// not captured again (Istio's `-o lo -s 127.0.0.6/32 -j RETURN`).
pub const INBOUND_PASSTHROUGH_SOURCE: &str = "127.0.0.6";

/// A network for a new mesh, on the first free bridge `kiosk<N>` and subnet `10.89.<N>.0/24`
/// (or `$KIOSK_POD_SUBNET`), so that meshes of different homes (a test run beside a demo)
/// never share a name.
pub fn free_network() -> Result<Network> {
    let links = Command::new("ip").args(["-o", "link", "show"]).output()?;
    let links = String::from_utf8_lossy(&links.stdout).to_string();
    let routes = Command::new("ip")
        .args(["-o", "-4", "route", "show"])
        .output()?;
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    for n in 0..64u8 {
        let bridge = format!("kiosk{n}");
        let subnet = std::env::var("KIOSK_POD_SUBNET").unwrap_or_else(|_| format!("10.89.{n}"));
        let taken = links.lines().any(|l| l.contains(&format!(": {bridge}:")))
            || routes.lines().any(|l| l.starts_with(&format!("{subnet}.")));
        if !taken {
            return Ok(Network::new(&bridge, &subnet));
        }
    }
    bail!("no free bridge kiosk0..kiosk63 (with a free 10.89.<N>.0/24): `kiosk down` the meshes left behind")
}

/// The pod network of one mesh: the bridge, its subnet and every pod.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Network {
    pub bridge: String,
    /// The first three octets of the /24 (`10.88.0`).
    pub subnet: String,
    pub pods: Vec<Pod>,
}

/// One pod: its namespace, address and what its sidecar (if any) intercepts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pod {
    /// The pod's name (`mirror`, `kiosk-dual-role-0`).
    pub name: String,
    /// Its Kubernetes namespace (`pipeline`, `kafka`).
    pub namespace: String,
    /// The network namespace (`<bridge>-<name>`, e.g. `kiosk0-mirror`).
    pub netns: String,
    /// The host end of its veth pair.
    pub veth: String,
    pub ip: Ipv4Addr,
    /// Traffic capture, when the pod has a sidecar.
    pub capture: Option<Capture>,
}

/// What istio-iptables redirects in a pod, from the pod's annotations.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Capture {
    /// `traffic.sidecar.istio.io/excludeInboundPorts`
    pub exclude_inbound: Vec<u16>,
    /// `traffic.sidecar.istio.io/excludeOutboundPorts`
    pub exclude_outbound: Vec<u16>,
}

impl Capture {
    /// The capture an annotation map asks for (ports as Istio reads them: comma-separated).
    pub fn from_annotations(
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<Capture> {
        let ports = |key: &str| -> Result<Vec<u16>> {
            annotations
                .get(key)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            p.parse::<u16>()
                                .with_context(|| format!("annotation {key}: `{p}` is not a port"))
                        })
                        .collect()
                })
                .unwrap_or(Ok(Vec::new()))
        };
        Ok(Capture {
            exclude_inbound: ports("traffic.sidecar.istio.io/excludeInboundPorts")?,
            exclude_outbound: ports("traffic.sidecar.istio.io/excludeOutboundPorts")?,
        })
    }
}

/// What `kiosk up` needs to make pods, checked before anything starts: one line per
/// missing piece.
pub fn preflight() -> Result<()> {
    let mut missing = Vec::new();
    if !nix::unistd::Uid::effective().is_root() {
        missing.push(format!(
            "root: pods are network namespaces, veth pairs and iptables rules (running as uid {})",
            nix::unistd::Uid::effective()
        ));
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("setpriv", "util-linux"),
    ] {
        if which(tool).is_none() {
            missing.push(format!(
                "`{tool}` (Debian package {package}; scripts/setup.sh installs it)"
            ));
        }
    }
    if !missing.is_empty() {
        bail!(
            "the local mesh cannot make its pods; missing:\n  - {}\nnothing was started",
            missing.join("\n  - ")
        );
    }
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Run a command to its end, failing with its stderr.
fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

impl Network {
    /// Plan a network (nothing is made yet): bridge `bridge` on `subnet`.0/24, the bridge
    /// itself at .1, pods from .10 on.
    pub fn new(bridge: &str, subnet: &str) -> Network {
        Network {
            bridge: bridge.to_string(),
            subnet: subnet.to_string(),
            pods: Vec::new(),
        }
    }

    /// Add a pod to the plan; returns its address.
    pub fn add_pod(&mut self, name: &str, namespace: &str, capture: Option<Capture>) -> Ipv4Addr {
        let n = self.pods.len() as u8 + 10;
        let ip: Ipv4Addr = format!("{}.{n}", self.subnet)
            .parse()
            .unwrap_or(Ipv4Addr::LOCALHOST);
        self.pods.push(Pod {
            name: name.to_string(),
            namespace: namespace.to_string(),
            netns: format!("{}-{name}", self.bridge),
            // At most 15 characters: `kiosk63` would give `kv63x250`.
            veth: format!("kv{}x{n}", self.bridge.trim_start_matches("kiosk")),
            ip,
            capture,
        });
        ip
    }

    pub fn pod(&self, name: &str) -> Result<&Pod> {
        self.pods
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("no pod `{name}`"))
    }

    /// The bridge's address: the host's side, from which Prometheus scrapes the pods.
    pub fn host_ip(&self) -> String {
        format!("{}.1", self.subnet)
    }

    /// Make the bridge and every pod, with `hosts` as every pod's `/etc/hosts`. On error,
    /// whatever was made is removed again (never another mesh's bridge or pods).
    pub fn create(&self, hosts: &str) -> Result<()> {
        let routes = Command::new("ip")
            .args(["-o", "-4", "route", "show"])
            .output()?;
        let prefix = format!("{}.", self.subnet);
        if let Some(line) = String::from_utf8_lossy(&routes.stdout)
            .lines()
            .find(|l| l.starts_with(&prefix))
        {
            bail!(
                "the pods' subnet {}.0/24 is already routed on this machine (`{line}`): set KIOSK_POD_SUBNET to a free /24 (e.g. 10.90.0), or `kiosk down` a mesh left behind",
                self.subnet
            );
        }
        // Ours from here on: a bridge that exists belongs to another mesh, and stays.
        ip(&["link", "add", &self.bridge, "type", "bridge"])
            .context("creating the pods' bridge (another mesh starting at the same moment?)")?;
        let result = self.try_create(hosts);
        if result.is_err() {
            self.remove();
        }
        result
    }

    fn try_create(&self, hosts: &str) -> Result<()> {
        for pod in &self.pods {
            if Path::new("/etc/netns").join(&pod.netns).exists() {
                bail!(
                    "/etc/netns/{} exists: a mesh left it behind (`kiosk down` removes it)",
                    pod.netns
                );
            }
        }
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.host_ip()),
            "dev",
            &self.bridge,
        ])?;
        ip(&["link", "set", &self.bridge, "up"])?;
        for pod in &self.pods {
            self.create_pod(pod, hosts)
                .with_context(|| format!("making pod {}", pod.name))?;
        }
        Ok(())
    }

    fn create_pod(&self, pod: &Pod, hosts: &str) -> Result<()> {
        // The hosts file first: `ip netns exec` mounts /etc/netns/<ns>/hosts if it exists.
        let etc = Path::new("/etc/netns").join(&pod.netns);
        std::fs::create_dir_all(&etc)?;
        std::fs::write(etc.join("hosts"), hosts)?;
        ip(&["netns", "add", &pod.netns])?;
        ip(&[
            "link", "add", &pod.veth, "type", "veth", "peer", "name", "eth0", "netns", &pod.netns,
        ])?;
        ip(&["link", "set", &pod.veth, "master", &self.bridge, "up"])?;
        let exec = |args: &[&str]| -> Result<()> {
            let mut all = vec!["netns", "exec", pod.netns.as_str()];
            all.extend_from_slice(args);
            ip(&all)
        };
        exec(&["ip", "link", "set", "lo", "up"])?;
        exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", pod.ip),
            "dev",
            "eth0",
        ])?;
        exec(&["ip", "link", "set", "eth0", "up"])?;
        if let Some(capture) = &pod.capture {
            for rule in istio_iptables(capture) {
                let mut args = vec!["iptables", "-w"];
                args.extend(rule.iter().map(String::as_str));
                exec(&args).context("installing the sidecar's iptables rules")?;
            }
        }
        Ok(())
    }

    /// Remove every pod and the bridge (whatever exists of them); never fails.
    pub fn remove(&self) {
        for pod in &self.pods {
            // Deleting the namespace deletes its veth end, and with it the pair.
            let _ = ip(&["netns", "delete", &pod.netns]);
            let _ = ip(&["link", "delete", &pod.veth]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&pod.netns));
        }
        let _ = ip(&["link", "delete", &self.bridge]);
    }

    /// What of this network still exists (namespaces, links, hosts files), for checks.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let namespaces = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let links = Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let has_link = |name: &str| {
            links
                .lines()
                .any(|l| l.contains(&format!(": {name}:")) || l.contains(&format!(": {name}@")))
        };
        if has_link(&self.bridge) {
            left.push(format!("bridge {}", self.bridge));
        }
        for pod in &self.pods {
            if namespaces
                .lines()
                .any(|l| l.split_whitespace().next() == Some(pod.netns.as_str()))
            {
                left.push(format!("network namespace {}", pod.netns));
            }
            if has_link(&pod.veth) {
                left.push(format!("veth {}", pod.veth));
            }
            if Path::new("/etc/netns").join(&pod.netns).exists() {
                left.push(format!("/etc/netns/{}", pod.netns));
            }
        }
        left
    }
}

impl Pod {
    /// `program` run inside this pod (its network namespace and hosts file); as the
    /// sidecar's group when `sidecar`, whose traffic the pod's iptables never redirect.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, sidecar: bool) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns]);
        if sidecar {
            command
                .arg("setpriv")
                .arg(format!("--regid={SIDECAR_UID}"))
                .arg("--clear-groups")
                .arg("--");
        }
        command.arg(program);
        command
    }
}

/// The nat rules istio-iptables writes for a sidecar (`istio-iptables` with
/// `-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*'`), with the excluded ports.
pub fn istio_iptables(capture: &Capture) -> Vec<Vec<String>> {
    let mut rules: Vec<String> = vec![
        "-t nat -N ISTIO_INBOUND".into(),
        "-t nat -N ISTIO_REDIRECT".into(),
        "-t nat -N ISTIO_IN_REDIRECT".into(),
        "-t nat -N ISTIO_OUTPUT".into(),
        "-t nat -A ISTIO_INBOUND -p tcp --dport 22 -j RETURN".to_string(),
    ];
    for port in ISTIO_PORTS.iter().chain(&capture.exclude_inbound) {
        rules.push(format!(
            "-t nat -A ISTIO_INBOUND -p tcp --dport {port} -j RETURN"
        ));
    }
    rules.extend([
        "-t nat -A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT".to_string(),
        format!("-t nat -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {INBOUND_CAPTURE_PORT}"),
        "-t nat -A PREROUTING -p tcp -j ISTIO_INBOUND".into(),
        format!("-t nat -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {OUTBOUND_CAPTURE_PORT}"),
        "-t nat -A OUTPUT -p tcp -j ISTIO_OUTPUT".into(),
        format!("-t nat -A ISTIO_OUTPUT -o lo -s {INBOUND_PASSTHROUGH_SOURCE}/32 -j RETURN"),
        format!("-t nat -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner {SIDECAR_UID} -j ISTIO_IN_REDIRECT"),
        format!("-t nat -A ISTIO_OUTPUT -o lo -m owner ! --uid-owner {SIDECAR_UID} -j RETURN"),
        format!("-t nat -A ISTIO_OUTPUT -m owner --uid-owner {SIDECAR_UID} -j RETURN"),
        format!("-t nat -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner {SIDECAR_UID} -j ISTIO_IN_REDIRECT"),
        format!("-t nat -A ISTIO_OUTPUT -o lo -m owner ! --gid-owner {SIDECAR_UID} -j RETURN"),
        format!("-t nat -A ISTIO_OUTPUT -m owner --gid-owner {SIDECAR_UID} -j RETURN"),
        "-t nat -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN".into(),
    ]);
    for port in &capture.exclude_outbound {
        rules.push(format!(
            "-t nat -A ISTIO_OUTPUT -p tcp --dport {port} -j RETURN"
        ));
    }
    rules.push("-t nat -A ISTIO_OUTPUT -j ISTIO_REDIRECT".into());
    rules
        .into_iter()
        .map(|r| r.split_whitespace().map(String::from).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_ports_return_before_the_redirects() {
        let capture = Capture {
            exclude_inbound: vec![9090, 9091],
            exclude_outbound: vec![8443],
        };
        let rules: Vec<String> = istio_iptables(&capture)
            .iter()
            .map(|r| r.join(" "))
            .collect();
        let at = |needle: &str| {
            rules
                .iter()
                .position(|r| r.contains(needle))
                .unwrap_or_else(|| panic!("no rule with {needle}: {rules:#?}"))
        };
        assert!(at("--dport 9091 -j RETURN") < at("ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"));
        assert!(at("--dport 8443 -j RETURN") < at("ISTIO_OUTPUT -j ISTIO_REDIRECT"));
        assert!(at("--uid-owner 1337 -j RETURN") < at("ISTIO_OUTPUT -j ISTIO_REDIRECT"));
        assert!(at("--gid-owner 1337 -j RETURN") < at("ISTIO_OUTPUT -j ISTIO_REDIRECT"));
        assert!(rules.iter().any(|r| r.ends_with("--to-ports 15006")));
    }

    #[test]
    fn annotations_give_the_excluded_ports() {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert(
            "traffic.sidecar.istio.io/excludeInboundPorts".to_string(),
            "9090,9091, 8443".to_string(),
        );
        let c = Capture::from_annotations(&annotations).unwrap();
        assert_eq!(c.exclude_inbound, vec![9090, 9091, 8443]);
        assert!(c.exclude_outbound.is_empty());
        annotations.insert(
            "traffic.sidecar.istio.io/excludeOutboundPorts".to_string(),
            "http".to_string(),
        );
        assert!(Capture::from_annotations(&annotations).is_err());
    }
}
