//! Node-local storage (SPEC §7): Rancher's local-path provisioner and the
//! two StorageClasses the spec names, `local-path` (default, Delete) and
//! `local-path-retain` (Retain, for data that must outlive its claim such as
//! Vault's). Objects mirror upstream's `deploy/local-path-storage.yaml` for
//! the pinned release, typed, so a field typo fails to compile.
//!
//! Both classes make `local` PVs, not the provisioner's default `hostPath`,
//! so that Velero's file-system backup includes them ([`VOLUME_TYPE`]).
//!
//! Its namespace is labelled privileged: the provisioner's helper pods mount
//! the node's volume directory as hostPath, which PSA `baseline` refuses.

use super::psa::privileged_namespace;
use crate::cluster_config::error::Result;
use crate::cluster_config::versions::{LOCAL_PATH_HELPER_IMAGE, LOCAL_PATH_IMAGE};
use crate::cluster_config::yaml;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod,
    PodSpec, PodTemplateSpec, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// The provisioner name both StorageClasses use.
pub const PROVISIONER: &str = "rancher.io/local-path";
/// The default StorageClass: general use, volume deleted with its claim.
pub const STORAGE_CLASS: &str = "local-path";
/// The StorageClass whose volumes survive their claim (Vault, MinIO).
pub const STORAGE_CLASS_RETAIN: &str = "local-path-retain";
/// The annotation that makes a StorageClass the cluster default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// The provisioner's StorageClass annotation for the kind of PV it creates
/// (README "Volume Types"; read from the class's annotations, not its
/// parameters: `provisioner.go` of v0.0.32, l.409). A PVC's own
/// `volumeType` annotation overrides it.
pub const VOLUME_TYPE_ANNOTATION: &str = "defaultVolumeType";
/// `local` PVs rather than the default `hostPath` ones: Velero's
/// file-system backup skips hostPath volumes (velero-io/velero#9035,
/// #4335), so a hostPath PV would silently be left out of every backup.
/// Set before anything stateful is installed: existing PVs keep their type.
pub const VOLUME_TYPE: &str = "local";
/// Where volumes live on each node.
pub const VOLUME_ROOT: &str = "/opt/local-path-provisioner";

pub const NAMESPACE: &str = "local-path-storage";
const NAME: &str = "local-path-provisioner";
const SERVICE_ACCOUNT: &str = "local-path-provisioner-service-account";
const ROLE: &str = "local-path-provisioner-role";
const BINDING: &str = "local-path-provisioner-bind";
const CONFIG_MAP: &str = "local-path-config";
const CONFIG_MOUNT: &str = "/etc/config/";

/// The provisioner's objects as one multi-document YAML file.
pub fn provisioner_yaml(header: &str) -> Result<String> {
    let docs = [
        yaml::document("Namespace", &privileged_namespace(NAMESPACE))?,
        yaml::document("ServiceAccount", &service_account())?,
        yaml::document("Role", &role())?,
        yaml::document("ClusterRole", &cluster_role())?,
        yaml::document("RoleBinding", &role_binding())?,
        yaml::document("ClusterRoleBinding", &cluster_role_binding())?,
        yaml::document("Deployment", &deployment())?,
        yaml::document("ConfigMap", &config_map()?)?,
    ];
    Ok(yaml::file(header, &docs))
}

/// The two StorageClasses of SPEC §7.
pub fn storage_classes() -> Vec<StorageClass> {
    vec![
        storage_class(STORAGE_CLASS, "Delete", true),
        storage_class(STORAGE_CLASS_RETAIN, "Retain", false),
    ]
}

/// WaitForFirstConsumer: a local volume must be created on the node the pod
/// is scheduled to, so binding waits for scheduling. Volumes are `local`
/// PVs ([`VOLUME_TYPE`]), which Velero can back up.
fn storage_class(name: &str, reclaim: &str, default: bool) -> StorageClass {
    let mut annotations =
        BTreeMap::from([(VOLUME_TYPE_ANNOTATION.to_owned(), VOLUME_TYPE.to_owned())]);
    if default {
        annotations.insert(DEFAULT_CLASS_ANNOTATION.to_owned(), "true".to_owned());
    }
    StorageClass {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        provisioner: PROVISIONER.to_owned(),
        reclaim_policy: Some(reclaim.to_owned()),
        volume_binding_mode: Some("WaitForFirstConsumer".to_owned()),
        ..StorageClass::default()
    }
}

fn meta(name: &str, namespaced: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespaced.then(|| NAMESPACE.to_owned()),
        ..ObjectMeta::default()
    }
}

fn service_account() -> ServiceAccount {
    ServiceAccount {
        metadata: meta(SERVICE_ACCOUNT, true),
        ..ServiceAccount::default()
    }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 7] = [
    "get", "list", "watch", "create", "patch", "update", "delete",
];

/// Helper pods live in the provisioner's own namespace only.
fn role() -> Role {
    Role {
        metadata: meta(ROLE, true),
        rules: Some(vec![rule(&[""], &["pods"], &WRITE)]),
    }
}

fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: meta(ROLE, false),
        rules: Some(vec![
            rule(
                &[""],
                &[
                    "nodes",
                    "persistentvolumeclaims",
                    "configmaps",
                    "pods",
                    "pods/log",
                ],
                &READ,
            ),
            rule(&[""], &["persistentvolumes"], &WRITE),
            rule(&[""], &["events"], &["create", "patch"]),
            rule(&["storage.k8s.io"], &["storageclasses"], &READ),
        ]),
        ..ClusterRole::default()
    }
}

fn subjects() -> Option<Vec<Subject>> {
    Some(vec![Subject {
        kind: "ServiceAccount".to_owned(),
        name: SERVICE_ACCOUNT.to_owned(),
        namespace: Some(NAMESPACE.to_owned()),
        ..Subject::default()
    }])
}

fn role_ref(kind: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".to_owned(),
        kind: kind.to_owned(),
        name: ROLE.to_owned(),
    }
}

fn role_binding() -> RoleBinding {
    RoleBinding {
        metadata: meta(BINDING, true),
        role_ref: role_ref("Role"),
        subjects: subjects(),
    }
}

fn cluster_role_binding() -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(BINDING, false),
        role_ref: role_ref("ClusterRole"),
        subjects: subjects(),
    }
}

fn deployment() -> Deployment {
    let labels = BTreeMap::from([("app".to_owned(), NAME.to_owned())]);
    let env = |name: &str, value: Option<&str>, field: Option<&str>| EnvVar {
        name: name.to_owned(),
        value: value.map(str::to_owned),
        value_from: field.map(|path| EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
    };
    let container = Container {
        name: NAME.to_owned(),
        image: Some(LOCAL_PATH_IMAGE.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(
            [
                "local-path-provisioner",
                "start",
                "--config",
                "/etc/config/config.json",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
        volume_mounts: Some(vec![VolumeMount {
            name: "config-volume".to_owned(),
            mount_path: CONFIG_MOUNT.to_owned(),
            ..VolumeMount::default()
        }]),
        env: Some(vec![
            env("POD_NAMESPACE", None, Some("metadata.namespace")),
            env("CONFIG_MOUNT_PATH", Some(CONFIG_MOUNT), None),
        ]),
        ..Container::default()
    };
    Deployment {
        metadata: meta(NAME, true),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(SERVICE_ACCOUNT.to_owned()),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "config-volume".to_owned(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: CONFIG_MAP.to_owned(),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The provisioner's config, its setup/teardown scripts (run in helper pods
/// with `VOL_DIR` set) and the helper pod template, pinned to a busybox tag.
fn config_map() -> Result<ConfigMap> {
    let config = serde_json::json!({
        "nodePathMap": [{
            "node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
            "paths": [VOLUME_ROOT],
        }]
    });
    let helper = Pod {
        metadata: ObjectMeta {
            name: Some("helper-pod".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            priority_class_name: Some("system-node-critical".to_owned()),
            tolerations: Some(vec![k8s_openapi::api::core::v1::Toleration {
                key: Some("node.kubernetes.io/disk-pressure".to_owned()),
                operator: Some("Exists".to_owned()),
                effect: Some("NoSchedule".to_owned()),
                ..Default::default()
            }]),
            containers: vec![Container {
                name: "helper-pod".to_owned(),
                image: Some(LOCAL_PATH_HELPER_IMAGE.to_owned()),
                image_pull_policy: Some("IfNotPresent".to_owned()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let data = BTreeMap::from([
        ("config.json".to_owned(), format!("{config:#}\n")),
        (
            "setup".to_owned(),
            "#!/bin/sh\nset -eu\nmkdir -m 0777 -p \"$VOL_DIR\"\n".to_owned(),
        ),
        (
            "teardown".to_owned(),
            "#!/bin/sh\nset -eu\nrm -rf \"$VOL_DIR\"\n".to_owned(),
        ),
        (
            "helperPod.yaml".to_owned(),
            yaml::document("helper pod", &helper)?,
        ),
    ]);
    Ok(ConfigMap {
        metadata: meta(CONFIG_MAP, true),
        data: Some(data),
        ..ConfigMap::default()
    })
}
