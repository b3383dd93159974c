//! Shared by the `cluster_config_*` tests: the default topology resolved, YAML
//! parsing into JSON values, the field-list checker for kubeadm documents
//! and the dotted-path flattening used for Cilium values.

pub mod fields;

use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use topology::Resolved;

/// The shared reference material beside the checkout (present in CI).
pub fn shared_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/fixtures")
        .join(name)
}

/// Reads a shared fixture as JSON.
pub fn shared_json(name: &str) -> Value {
    let path = shared_fixture(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} must be readable (shared reference): {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The spec's environment, resolved in its declared network.
pub fn default_resolved() -> Resolved {
    topology::default_topology()
        .resolve(None)
        .expect("the default topology resolves")
}

/// Every YAML document of `text` as JSON (comments and headers dropped).
pub fn docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("rendered YAML must parse: {e}\n{text}"))
}

/// The document of `kind` in `text`.
pub fn doc_of_kind(text: &str, kind: &str) -> Value {
    docs(text)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} document in\n{text}"))
}

/// A field list: type name → JSON field names, and `Type.field` → nested type.
pub struct FieldList {
    pub types: HashMap<String, HashSet<String>>,
    pub nested: HashMap<String, String>,
}

impl FieldList {
    /// hostctl's own list ([`fields`]).
    pub fn own() -> Self {
        FieldList {
            types: fields::TYPES
                .iter()
                .map(|(t, f)| (t.to_string(), f.iter().map(|s| s.to_string()).collect()))
                .collect(),
            nested: fields::NESTED
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The shared fixture `kubeadm-v1beta4-fields.json` (same shape).
    pub fn shared() -> Self {
        let json = shared_json("kubeadm-v1beta4-fields.json");
        let object = json.as_object().expect("fields fixture is an object");
        let types = object
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .filter_map(|(k, v)| {
                let names = v
                    .as_array()?
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_owned));
                Some((k.clone(), names.collect()))
            })
            .collect();
        let mut nested: HashMap<String, String> = object["_fieldTypes"]
            .as_object()
            .expect("_fieldTypes")
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        // The fixture records nested types for struct fields (and
        // featureGates) only; a map[string]string field it lists by name,
        // such as KubeletConfiguration.systemReserved, takes its map type
        // from our own list, which comes from the same upstream types.go.
        let types: HashMap<String, HashSet<String>> = types;
        for (path, ty) in fields::NESTED {
            let (owner, field) = path.split_once('.').unwrap_or_default();
            let listed = types.get(owner).is_some_and(|f| f.contains(field));
            if ty.starts_with("map[") && listed {
                nested.entry((*path).to_owned()).or_insert((*ty).to_owned());
            }
        }
        FieldList { types, nested }
    }

    /// Every key of `doc` (recursively) that its type does not have, as
    /// `Type.key` paths; a nested object whose type is not listed is
    /// reported too, since it could not be checked.
    pub fn violations(&self, doc: &Value) -> Vec<String> {
        let kind = doc["kind"].as_str().unwrap_or("<no kind>").to_owned();
        let mut out = Vec::new();
        self.walk(&kind, doc, &kind, &mut out);
        out
    }

    fn walk(&self, ty: &str, value: &Value, path: &str, out: &mut Vec<String>) {
        let Some(map) = value.as_object() else {
            out.push(format!("{path}: expected an object of type {ty}"));
            return;
        };
        let Some(fields) = self.types.get(ty) else {
            out.push(format!("{path}: no field list for type {ty}"));
            return;
        };
        for (key, child) in map {
            let child_path = format!("{path}.{key}");
            if !fields.contains(key) {
                out.push(format!("{child_path}: {ty} has no field {key}"));
                continue;
            }
            match self.nested.get(&format!("{ty}.{key}")).map(String::as_str) {
                Some(t) if t.starts_with("map[") => {}
                Some(t) if t.ends_with("[]") => {
                    let item = &t[..t.len() - 2];
                    for (i, element) in child.as_array().into_iter().flatten().enumerate() {
                        self.walk(item, element, &format!("{child_path}[{i}]"), out);
                    }
                }
                Some(t) => self.walk(t, child, &child_path, out),
                None if child.is_object() => {
                    out.push(format!("{child_path}: no nested type for {ty}.{key}"))
                }
                None => {}
            }
        }
    }
}

/// Dotted paths of every leaf of a Helm values tree. Free-form maps
/// (`annotations`, `labels`) and lists are leaves: their insides are data,
/// not chart keys.
pub fn value_paths(values: &Value) -> BTreeSet<String> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
        match v.as_object() {
            Some(map)
                if !map.is_empty()
                    && !prefix.ends_with("annotations")
                    && !prefix.ends_with("labels") =>
            {
                for (k, child) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, child, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk("", values, &mut out);
    out
}

/// The objects the add-on `addon` renders for `cluster` of the default
/// topology, minted from `pki` or with placeholders (`None`), as JSON.
pub fn addon_objects(pki: Option<&certs::Pki>, cluster: &str, addon: &str) -> Vec<Value> {
    addon_objects_of(&default_resolved(), pki, cluster, addon)
}

/// [`addon_objects`] for the topology `resolved`.
pub fn addon_objects_of(
    resolved: &Resolved,
    pki: Option<&certs::Pki>,
    cluster: &str,
    addon: &str,
) -> Vec<Value> {
    use host_agent::addons::render::{Credentials, PlatformSource, RenderContext, render_cluster};
    let platform = PlatformSource::served_by_host(resolved, None);
    let ctx = RenderContext {
        resolved,
        cluster,
        credentials: pki.map_or(Credentials::Placeholder, Credentials::Mint),
        platform: &platform,
        backup: None,
    };
    let rendered = render_cluster(&ctx).expect("renders");
    let r = rendered
        .iter()
        .find(|r| r.addon.name == addon)
        .unwrap_or_else(|| panic!("{cluster} has no {addon}"));
    r.manifests
        .iter()
        .flat_map(|m| {
            host_agent::cluster_api::apply::parse_documents(&m.file, &m.yaml).expect("parses")
        })
        .map(|d| serde_json::to_value(&d.object).expect("json"))
        .collect()
}
