//! From the located YAML tree to the typed [`Topology`].
//!
//! Shape problems (unknown or misspelt keys, wrong types, missing fields,
//! unparseable values) are all collected in one pass, each at the key or value
//! that causes it. The model is only built when the shape is entirely right:
//! semantic checks on a half-read file would report follow-on noise (a cluster
//! "without a control plane" because its control-plane node had a typo).

use crate::defaults::DEFAULT_HOST_AGENT;
use crate::mirror::{MirrorUrl, Mirrors};
use crate::model::{
    API_VERSION, Addressing, Cluster, ClusterRole, HostAgent, KIND, Network, Node, NodeRole, Pool,
    Topology,
};
use crate::observability::Observability;
use crate::report::{Report, SourceMap};
use crate::suggest::closest;
use crate::telemetry::Telemetry;
use crate::tree::{self, Pos, Value};
use crate::version::KubeVersion;
use std::net::IpAddr;

mod observability;
mod scalars;

const TOP_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "network",
    "hostAgent",
    "clusters",
    "nodes",
    "mirrors",
    "backups",
    "telemetry",
    "observability",
];
const TELEMETRY_KEYS: &[&str] = &["otlpEndpoint"];
const BACKUP_KEYS: &[&str] = &["managed"];
const MIRROR_KEYS: &[&str] = &["managed", "aptProxy", "registryMirror", "aptRepository"];
const NETWORK_KEYS: &[&str] = &["cidr", "addressing"];
const HOST_AGENT_KEYS: &[&str] = &["address", "port", "listen"];
const CLUSTER_KEYS: &[&str] = &[
    "name",
    "role",
    "kubernetesVersion",
    "podCidr",
    "serviceCidr",
    "metallbPool",
];
const POOL_KEYS: &[&str] = &["start", "end"];
const NODE_KEYS: &[&str] = &[
    "name", "cluster", "role", "address", "cpus", "memory", "disk",
];

/// An example value per key, used in "add `key: example`" fixes; `path` tells
/// a node's `role` from a cluster's.
fn example(path: &str, key: &str) -> &'static str {
    match key {
        "role" if path.starts_with("nodes") => "worker",
        "apiVersion" => API_VERSION,
        "kind" => KIND,
        "network" => "{ cidr: 192.168.64.0/24 }",
        "clusters" => "[ { name: mgmt, ... } ]",
        "nodes" => "[ { name: mgmt-cp, ... } ]",
        "cidr" => "192.168.64.0/24",
        "name" => "app1",
        "role" => "app",
        "kubernetesVersion" => "v1.35.0",
        "podCidr" => "10.101.0.0/16",
        "serviceCidr" => "10.97.0.0/16",
        "metallbPool" => "{ start: 211, end: 220 }",
        "start" => "211",
        "end" => "220",
        "cluster" => "app1",
        "address" => "20",
        "cpus" => "2",
        "memory" => "4GiB",
        "disk" => "40GiB",
        "aptProxy" => "http://192.168.64.1:8081",
        "registryMirror" => "https://192.168.64.1:8443",
        "aptRepository" => "http://192.168.64.1:8082/debs",
        "managed" => "true",
        "backend" => "localai",
        "model" => "qwen2.5:7b",
        _ => "...",
    }
}

/// Decodes a whole document. `None` when any shape problem was reported.
pub(crate) fn decode(root: &tree::Node, report: &mut Report<'_>) -> (Option<Topology>, SourceMap) {
    let mut d = Decoder {
        report,
        sources: SourceMap::default(),
    };
    let topology = d.topology(root);
    let ok = !d.report.has_errors();
    (topology.filter(|_| ok), d.sources)
}

struct Decoder<'r, 'a> {
    report: &'r mut Report<'a>,
    sources: SourceMap,
}

/// The known fields of one mapping, after unknown and repeated keys were reported.
struct Fields<'n> {
    path: String,
    pos: Option<Pos>,
    entries: Vec<(&'static str, &'n tree::Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n tree::Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Decoder<'_, '_> {
    fn topology(&mut self, root: &tree::Node) -> Option<Topology> {
        let f = self.mapping(root, "", TOP_KEYS, "the topology")?;
        self.header(&f, "apiVersion", API_VERSION);
        self.header(&f, "kind", KIND);
        let network = self.required(&f, "network").and_then(|n| self.network(n));
        let host_agent = match f.get("hostAgent") {
            Some(n) => self.host_agent(n),
            None => Some(DEFAULT_HOST_AGENT),
        };
        let clusters = self.list(&f, "clusters", |d, n, p| d.cluster(n, p));
        let nodes = self.list(&f, "nodes", |d, n, p| d.node(n, p));
        let mirrors = match f.get("mirrors") {
            Some(n) => self.mirrors(n).map(Some),
            None => Some(None),
        };
        let backups = match f.get("backups") {
            Some(n) => self.backups(n).map(Some),
            None => Some(None),
        };
        let telemetry = match f.get("telemetry") {
            Some(n) => self.telemetry(n).map(Some),
            None => Some(None),
        };
        let observability: Option<Option<Observability>> = match f.get("observability") {
            Some(n) => self.observability(n).map(Some),
            None => Some(None),
        };
        Some(Topology {
            network: network?,
            host_agent: host_agent?,
            clusters: clusters?,
            nodes: nodes?,
            mirrors: mirrors?,
            backups: backups?,
            telemetry: telemetry?,
            observability: observability?,
        })
    }

    fn telemetry(&mut self, node: &tree::Node) -> Option<Telemetry> {
        let f = self.mapping(node, "telemetry", TELEMETRY_KEYS, "the telemetry settings")?;
        let otlp_endpoint = match f.get("otlpEndpoint") {
            Some(n) => self
                .parsed::<MirrorUrl>(
                    n,
                    &join(&f.path, "otlpEndpoint"),
                    "an http:// or https:// URL",
                )
                .map(Some),
            None => Some(None),
        };
        Some(Telemetry {
            otlp_endpoint: otlp_endpoint?,
        })
    }

    fn backups(&mut self, node: &tree::Node) -> Option<crate::backups::Backups> {
        let f = self.mapping(node, "backups", BACKUP_KEYS, "the backups")?;
        let managed = match f.get("managed") {
            Some(n) => self.boolean(n, &join(&f.path, "managed")),
            None => Some(false),
        };
        Some(crate::backups::Backups { managed: managed? })
    }

    fn mirrors(&mut self, node: &tree::Node) -> Option<Mirrors> {
        let f = self.mapping(node, "mirrors", MIRROR_KEYS, "the mirrors")?;
        let mut url = |key: &str| match f.get(key) {
            Some(n) => self
                .parsed::<MirrorUrl>(n, &join(&f.path, key), "an http:// or https:// URL")
                .map(Some),
            None => Some(None),
        };
        let apt_proxy = url("aptProxy");
        let registry_mirror = url("registryMirror");
        let apt_repository = url("aptRepository");
        let managed = match f.get("managed") {
            Some(n) => self.boolean(n, &join(&f.path, "managed")),
            None => Some(false),
        };
        let mirrors = Mirrors {
            managed: managed?,
            apt_proxy: apt_proxy?,
            registry_mirror: registry_mirror?,
            apt_repository: apt_repository?,
        };
        if mirrors.managed {
            // hostctl's own Harbor and Nexus are then the mirrors; a URL of
            // the user's beside them would leave two answers to "where do
            // nodes pull from".
            for key in ["aptProxy", "registryMirror", "aptRepository"] {
                if let Some(n) = f.get(key) {
                    self.report.error_at(
                        n.pos,
                        &join(&f.path, key),
                        format!("`{key}` cannot be combined with `managed: true`: the mirrors are then hostctl's Harbor (:8443) and Nexus (:8081) on the host"),
                        format!("remove `{key}`, or remove `managed: true` to use mirrors of your own"),
                    );
                }
            }
            if self.report.has_errors() {
                return None;
            }
        }
        Some(mirrors)
    }

    fn header(&mut self, f: &Fields<'_>, key: &str, expected: &str) {
        let Some(node) = self.required(f, key) else {
            return;
        };
        let path = join(&f.path, key);
        if let Some(found) = self.string(node, &path)
            && found != expected
        {
            self.report.error_at(
                node.pos,
                &path,
                format!("`{found}` is not supported; this tool reads {key} `{expected}`"),
                format!("set `{key}: {expected}`"),
            );
        }
    }

    fn network(&mut self, node: &tree::Node) -> Option<Network> {
        let f = self.mapping(node, "network", NETWORK_KEYS, "the node network")?;
        let cidr = self.required_field(&f, "cidr", Self::ipv4_net);
        let addressing = match f.get("addressing") {
            Some(n) => self.choice(
                n,
                &join(&f.path, "addressing"),
                &[
                    ("provider", Addressing::Provider),
                    ("fixed", Addressing::Fixed),
                ],
            ),
            None => Some(Addressing::default()),
        };
        Some(Network {
            cidr: cidr?,
            addressing: addressing?,
        })
    }

    fn host_agent(&mut self, node: &tree::Node) -> Option<HostAgent> {
        let f = self.mapping(node, "hostAgent", HOST_AGENT_KEYS, "the host agent")?;
        let address = self.optional_field(&f, "address", DEFAULT_HOST_AGENT.address, Self::address);
        let port = self.optional_field(&f, "port", DEFAULT_HOST_AGENT.port, Self::integer);
        let listen = self.optional_field(&f, "listen", DEFAULT_HOST_AGENT.listen, |d, n, p| {
            d.parsed::<IpAddr>(n, p, "an IP address such as 0.0.0.0")
                .map(Some)
        });
        Some(HostAgent {
            address: address?,
            port: port?,
            listen: listen?,
        })
    }

    fn cluster(&mut self, node: &tree::Node, path: &str) -> Option<Cluster> {
        let f = self.mapping(node, path, CLUSTER_KEYS, "a cluster")?;
        let name = self.required_field(&f, "name", Self::string);
        let role = self.required_field(&f, "role", |d, n, p| {
            d.choice(
                n,
                p,
                &[("mgmt", ClusterRole::Mgmt), ("app", ClusterRole::App)],
            )
        });
        let version = self.required_field(&f, "kubernetesVersion", |d, n, p| {
            d.parsed::<KubeVersion>(n, p, "a version such as v1.35.0")
        });
        let pod_cidr = self.required_field(&f, "podCidr", Self::ipv4_net);
        let service_cidr = self.required_field(&f, "serviceCidr", Self::ipv4_net);
        let pool = self.required_field(&f, "metallbPool", Self::pool);
        Some(Cluster {
            name: name?,
            role: role?,
            kubernetes_version: version?,
            pod_cidr: pod_cidr?,
            service_cidr: service_cidr?,
            metallb_pool: pool?,
        })
    }

    fn pool(&mut self, node: &tree::Node, path: &str) -> Option<Pool> {
        let f = self.mapping(node, path, POOL_KEYS, "a MetalLB pool")?;
        let start = self.required_field(&f, "start", Self::address);
        let end = self.required_field(&f, "end", Self::address);
        Some(Pool {
            start: start?,
            end: end?,
        })
    }

    fn node(&mut self, node: &tree::Node, path: &str) -> Option<Node> {
        let f = self.mapping(node, path, NODE_KEYS, "a node")?;
        let name = self.required_field(&f, "name", Self::string);
        let cluster = self.required_field(&f, "cluster", Self::string);
        let role = self.required_field(&f, "role", |d, n, p| {
            d.choice(
                n,
                p,
                &[
                    ("control-plane", NodeRole::ControlPlane),
                    ("worker", NodeRole::Worker),
                ],
            )
        });
        let address = self.required_field(&f, "address", Self::address);
        let cpus = self.required_field(&f, "cpus", Self::integer);
        let memory = self.required_field(&f, "memory", Self::size);
        let disk = self.required_field(&f, "disk", Self::size);
        Some(Node {
            name: name?,
            cluster: cluster?,
            role: role?,
            address: address?,
            cpus: cpus?,
            memory: memory?,
            disk: disk?,
        })
    }

    // ---- structure -------------------------------------------------------

    /// Checks that `node` is a mapping with only `keys`, each at most once.
    fn mapping<'n>(
        &mut self,
        node: &'n tree::Node,
        path: &str,
        keys: &[&'static str],
        what: &str,
    ) -> Option<Fields<'n>> {
        self.sources.insert(path, node.pos);
        let Value::Map(entries) = &node.value else {
            self.wrong_type(
                node,
                path,
                "a mapping",
                &format!("write {what} as `key: value` lines"),
            );
            return None;
        };
        let mut fields = Fields {
            path: path.to_owned(),
            pos: node.pos,
            entries: Vec::new(),
        };
        for (key, value) in entries {
            let Value::Str(name) = &key.value else {
                self.report.error_at(
                    key.pos,
                    path,
                    format!("a key must be a field name, found {}", key.value.kind()),
                    format!("use one of: {}", keys.join(", ")),
                );
                continue;
            };
            let Some(known) = keys.iter().find(|k| **k == name.as_str()) else {
                self.unknown_key(key.pos, &join(path, name), name, keys, what);
                continue;
            };
            if fields.get(known).is_some() {
                let first = self
                    .sources
                    .lookup(&join(path, known))
                    .map_or(String::new(), |p| format!(" (first at line {})", p.line));
                self.report.error_at(
                    key.pos,
                    &join(path, known),
                    format!("`{known}` is given more than once{first}"),
                    "keep one of them",
                );
                continue;
            }
            self.sources.insert(&join(path, known), value.pos);
            fields.entries.push((known, value));
        }
        Some(fields)
    }

    fn unknown_key(&mut self, pos: Option<Pos>, path: &str, name: &str, keys: &[&str], what: &str) {
        let message = match closest(name, keys) {
            Some(s) => format!("unknown field `{name}` in {what}; did you mean `{s}`?"),
            None => format!("unknown field `{name}` in {what}"),
        };
        let fix = match closest(name, keys) {
            Some(s) => format!("rename it to `{s}`"),
            None => format!("remove it; the fields are: {}", keys.join(", ")),
        };
        self.report.error_at(pos, path, message, fix);
    }

    fn required<'n>(&mut self, f: &Fields<'n>, key: &str) -> Option<&'n tree::Node> {
        let found = f.get(key);
        if found.is_none() {
            self.report.error_at(
                f.pos,
                &join(&f.path, key),
                format!("missing field `{key}`"),
                format!(
                    "add `{key}: {}` (`hostctl init` writes a complete example)",
                    example(&f.path, key)
                ),
            );
        }
        found
    }

    fn required_field<T>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        read: impl FnOnce(&mut Self, &tree::Node, &str) -> Option<T>,
    ) -> Option<T> {
        let node = self.required(f, key)?;
        read(self, node, &join(&f.path, key))
    }

    fn optional_field<T>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        default: T,
        read: impl FnOnce(&mut Self, &tree::Node, &str) -> Option<T>,
    ) -> Option<T> {
        match f.get(key) {
            Some(node) => read(self, node, &join(&f.path, key)),
            None => Some(default),
        }
    }

    /// A list field; every item is decoded even after a bad one, so all
    /// problems show up together.
    fn list<T>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        mut item: impl FnMut(&mut Self, &tree::Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let node = self.required(f, key)?;
        let path = join(&f.path, key);
        let Value::Seq(items) = &node.value else {
            self.wrong_type(
                node,
                &path,
                "a list",
                &format!("write {key} as a list of `- name: ...` items"),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, n) in items.iter().enumerate() {
            match item(self, n, &format!("{path}[{i}]")) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}
