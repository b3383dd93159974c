//! The rendered policies' CEL evaluated by a real CEL implementation (the
//! `cel` crate) against good and bad Pods and Deployments, with `object`
//! and `variables` bound as Kyverno binds them (for a Deployment, autogen
//! evaluates the same expressions on the pod template, so `object` is the
//! template with the controller's labels: see [`autogen`]).

use super::{AUDITED, ENFORCED, render_for};
use cel::{Context, Env, Value as Cel, extensions};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

fn allowed() -> Vec<String> {
    ["docker.io", "registry.k8s.io", "harbor.lab.internal:8443"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn policy(name: &str) -> Value {
    render_for(&allowed())
        .into_iter()
        .find(|p| p["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not rendered"))
}

/// Whether `policy` admits `object`: every variable evaluated in order
/// into `variables`, then every validation must be `true`.
fn admits(policy: &Value, object: &Value) -> bool {
    let mut env = Env::stdlib();
    env.add_extension(extensions::strings).unwrap();
    let env = Arc::new(env);
    let mut vars: HashMap<String, Cel> = HashMap::new();
    let eval = |expr: &str, vars: &HashMap<String, Cel>| -> Cel {
        let program = env
            .compile(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e:?}"));
        let mut ctx = Context::with_env(env.clone());
        ctx.add_variable("object", object).unwrap();
        ctx.add_variable_from_value("variables", vars.clone());
        program
            .execute(&ctx)
            .unwrap_or_else(|e| panic!("{expr}: {e:?}"))
    };
    for v in policy["spec"]["variables"].as_array().unwrap() {
        let value = eval(v["expression"].as_str().unwrap(), &vars);
        vars.insert(v["name"].as_str().unwrap().to_owned(), value);
    }
    policy["spec"]["validations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| match eval(v["expression"].as_str().unwrap(), &vars) {
            Cel::Bool(b) => b,
            other => panic!("not a bool: {other:?}"),
        })
}

fn container(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image, "resources": {
        "requests": {"cpu": "10m", "memory": "16Mi"},
        "limits": {"cpu": "100m", "memory": "64Mi"},
    }})
}

fn pod(containers: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "labels": {"app": "a", "version": "1"}},
           "spec": {"containers": containers}})
}

/// What Kyverno's autogen evaluates for a Deployment: its pod template
/// (labels and spec) as `object`.
fn autogen(deployment: &Value) -> Value {
    deployment["spec"]["template"].clone()
}

fn deployment(labels: Value, containers: Vec<Value>) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": labels},
           "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}}})
}

fn with(mut pod: Value, field: &str, containers: Vec<Value>) -> Value {
    pod["spec"][field] = Value::Array(containers);
    pod
}

#[test]
fn the_actions_are_three_denies_and_one_audit() {
    for name in ENFORCED {
        assert_eq!(policy(name)["spec"]["validationActions"], json!(["Deny"]));
    }
    assert_eq!(
        policy(AUDITED)["spec"]["validationActions"],
        json!(["Audit"])
    );
}

#[test]
fn the_registry_rule_reads_image_references_as_containerd_does() {
    let p = policy("restrict-image-registries");
    for good in [
        "nginx",
        "library/nginx:1.27",
        "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "docker.io/library/nginx:1.27",
        "registry.k8s.io/pause:3.10",
        "harbor.lab.internal:8443/dockerhub/library/nginx@sha256:0123",
    ] {
        assert!(admits(&p, &pod(vec![container("c", good)])), "{good}");
    }
    for bad in [
        "quay.io/cilium/cilium:v1.18",
        "ghcr.io/x/y",
        "harbor.lab.internal:9443/x/y",
        "harbor.lab.internal/x/y",
        "localhost:5000/x",
        "evil.example/docker.io/nginx",
    ] {
        assert!(!admits(&p, &pod(vec![container("c", bad)])), "{bad}");
        let good = container("ok", "nginx");
        for field in ["initContainers", "ephemeralContainers"] {
            let object = with(pod(vec![good.clone()]), field, vec![container("x", bad)]);
            assert!(!admits(&p, &object), "{bad} in {field}");
        }
        let d = deployment(
            json!({"app": "a", "version": "1"}),
            vec![container("c", bad)],
        );
        assert!(!admits(&p, &autogen(&d)), "{bad} in a Deployment");
    }
}

#[test]
fn every_container_needs_cpu_and_memory_requests_and_limits() {
    let p = policy("require-requests-limits");
    assert!(admits(&p, &pod(vec![container("c", "nginx")])));
    let mut bare = container("c", "nginx");
    bare.as_object_mut().unwrap().remove("resources");
    let mut no_cpu_limit = container("c", "nginx");
    no_cpu_limit["resources"]["limits"] = json!({"memory": "64Mi"});
    let mut no_requests = container("c", "nginx");
    no_requests["resources"]
        .as_object_mut()
        .unwrap()
        .remove("requests");
    for bad in [bare, no_cpu_limit, no_requests] {
        assert!(!admits(&p, &pod(vec![bad.clone()])), "{bad}");
        for field in ["initContainers", "ephemeralContainers"] {
            let object = with(
                pod(vec![container("ok", "nginx")]),
                field,
                vec![bad.clone()],
            );
            assert!(!admits(&p, &object), "{bad} in {field}");
        }
        let d = deployment(json!({"app": "a"}), vec![bad.clone()]);
        assert!(!admits(&p, &autogen(&d)), "{bad} in a Deployment");
    }
}

#[test]
fn privileged_true_in_any_container_is_refused() {
    let p = policy("disallow-privileged");
    let mut unprivileged = container("c", "nginx");
    unprivileged["securityContext"] = json!({"privileged": false});
    assert!(admits(
        &p,
        &pod(vec![unprivileged, container("d", "nginx")])
    ));
    let mut bad = container("x", "nginx");
    bad["securityContext"] = json!({"privileged": true});
    assert!(!admits(&p, &pod(vec![bad.clone()])));
    for field in ["initContainers", "ephemeralContainers"] {
        let object = with(
            pod(vec![container("ok", "nginx")]),
            field,
            vec![bad.clone()],
        );
        assert!(!admits(&p, &object), "{field}");
    }
    let d = deployment(json!({"app": "a", "version": "1"}), vec![bad]);
    assert!(!admits(&p, &autogen(&d)));
}

#[test]
fn missing_labels_are_only_reported() {
    let p = policy(AUDITED);
    assert_eq!(p["spec"]["validationActions"], json!(["Audit"]));
    assert!(admits(&p, &pod(vec![container("c", "nginx")])));
    let good = deployment(
        json!({"app": "a", "version": "1"}),
        vec![container("c", "nginx")],
    );
    assert!(admits(&p, &autogen(&good)));
    for labels in [json!({"app": "a"}), json!({"version": "1"}), json!({})] {
        let d = deployment(labels.clone(), vec![container("c", "nginx")]);
        assert!(!admits(&p, &autogen(&d)), "{labels}");
    }
    let mut unlabelled = pod(vec![container("c", "nginx")]);
    unlabelled["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    assert!(!admits(&p, &unlabelled));
}
