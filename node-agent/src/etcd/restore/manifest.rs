//! kubeadm's etcd static-pod manifest: what a restore must match (member
//! name, initial cluster, peer URL, image) and the one field it changes
//! (the `etcd-data` volume's hostPath), as kubeadm writes them
//! (`cmd/kubeadm/app/phases/etcd/local.go`).

use std::path::Path;

use serde_json::Value;

/// The kubeadm volume holding etcd's data directory.
pub const DATA_VOLUME: &str = "etcd-data";

/// Why the manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        message: String,
    },
}

/// The parsed manifest.
#[derive(Debug, Clone)]
pub struct EtcdManifest {
    doc: Value,
    /// Host path of the `etcd-data` volume, e.g. `/var/lib/etcd`.
    pub data_dir: String,
    /// `--name`.
    pub name: String,
    /// `--initial-cluster` (kubeadm: `<name>=https://<ip>:2380`).
    pub initial_cluster: String,
    /// `--initial-advertise-peer-urls`.
    pub peer_urls: String,
    /// The etcd image (it also carries `etcdutl`).
    pub image: String,
}

fn flag(command: &[Value], name: &str) -> Option<String> {
    let prefix = format!("--{name}=");
    command
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
}

impl EtcdManifest {
    /// Reads and checks the manifest at `path`.
    pub fn load(path: &Path) -> Result<EtcdManifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        EtcdManifest::parse(&text).map_err(|message| ManifestError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses manifest text.
    pub fn parse(text: &str) -> Result<EtcdManifest, String> {
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let spec = &doc["spec"];
        let container = spec["containers"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "etcd").or(c.first()))
            .ok_or("no containers")?;
        let command: Vec<Value> = container["command"].as_array().cloned().unwrap_or_default();
        let need =
            |name: &str| flag(&command, name).ok_or(format!("the etcd command has no --{name}"));
        let data_dir = data_volume(&doc)
            .and_then(|v| v["hostPath"]["path"].as_str().map(str::to_owned))
            .ok_or(format!("no hostPath volume named {DATA_VOLUME}"))?;
        Ok(EtcdManifest {
            name: need("name")?,
            initial_cluster: need("initial-cluster")?,
            peer_urls: need("initial-advertise-peer-urls")?,
            image: container["image"].as_str().unwrap_or_default().to_owned(),
            data_dir,
            doc,
        })
    }

    /// The manifest with the data volume pointing at `host_path` (the
    /// container still mounts it where `--data-dir` says).
    pub fn with_data_dir(&self, host_path: &str) -> Result<String, String> {
        let mut doc = self.doc.clone();
        let volumes = doc["spec"]["volumes"].as_array_mut().ok_or("no volumes")?;
        let volume = volumes
            .iter_mut()
            .find(|v| v["name"] == DATA_VOLUME)
            .ok_or(format!("no volume {DATA_VOLUME}"))?;
        volume["hostPath"]["path"] = Value::String(host_path.to_owned());
        serde_saphyr::to_string(&doc).map_err(|e| e.to_string())
    }
}

fn data_volume(doc: &Value) -> Option<&Value> {
    doc["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == DATA_VOLUME)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBEADM: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://10.0.0.10:2379
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://10.0.0.10:2380
    - --initial-cluster=app1-cp=https://10.0.0.10:2380
    - --name=app1-cp
    image: registry.k8s.io/etcd:3.6.5-0
    name: etcd
    volumeMounts:
    - mountPath: /var/lib/etcd
      name: etcd-data
  volumes:
  - hostPath:
      path: /etc/kubernetes/pki/etcd
      type: DirectoryOrCreate
    name: etcd-certs
  - hostPath:
      path: /var/lib/etcd
      type: DirectoryOrCreate
    name: etcd-data
"#;

    #[test]
    fn reads_what_restore_must_match() {
        let m = EtcdManifest::parse(KUBEADM).unwrap();
        assert_eq!(m.data_dir, "/var/lib/etcd");
        assert_eq!(m.name, "app1-cp");
        assert_eq!(m.initial_cluster, "app1-cp=https://10.0.0.10:2380");
        assert_eq!(m.peer_urls, "https://10.0.0.10:2380");
        assert_eq!(m.image, "registry.k8s.io/etcd:3.6.5-0");
    }

    #[test]
    fn repoints_only_the_data_volume() {
        let m = EtcdManifest::parse(KUBEADM).unwrap();
        let again = EtcdManifest::parse(&m.with_data_dir("/var/lib/etcd-new").unwrap()).unwrap();
        assert_eq!(again.data_dir, "/var/lib/etcd-new");
        assert_eq!(again.name, m.name);
        let text = m.with_data_dir("/var/lib/etcd-new").unwrap();
        assert!(text.contains("/etc/kubernetes/pki/etcd"), "{text}");
        assert!(text.contains("--data-dir=/var/lib/etcd"), "{text}");
    }

    #[test]
    fn missing_flags_are_named() {
        let err = EtcdManifest::parse(&KUBEADM.replace("    - --name=app1-cp\n", "")).unwrap_err();
        assert!(err.contains("--name"), "{err}");
    }
}
