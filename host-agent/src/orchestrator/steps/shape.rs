//! `up`'s graph as data (no jobs yet): the declared kinds applied to the
//! run's [`Targets`], so the edges can be tested without a provider or a
//! daemon. For each kind in table order, every subject it is declared
//! `per` gets a step, waiting for the steps its `after` names relative to
//! that subject. With the kinds declared today:
//!
//! ```text
//! mirrors/host, object-store/host       (when the topology manages them)
//! render/<n> → launch/<n> → enrol/<n> → prerequisites/<n>   (each node)
//! prerequisites/<n> ← mirrors/host      (the nodes pull through them)
//! kubeadm-init/<c>  ← prerequisites/<control plane>
//! kubeconfig/<c>    ← kubeadm-init/<c>
//! cni/<c>           ← kubeadm-init/<c>
//! kubeadm-join/<w>  ← prerequisites/<w>, kubeadm-init/<c>   (each worker)
//! nodes-ready/<c>   ← cni/<c>, every kubeadm-join/<w> of c
//! addons/<c>        ← nodes-ready/<c>
//! addon/<c>/<a>     ← addons/<c>, addon/<c>/<d> for each dependency d of a,
//!                     addon/<mgmt>/<m> for each mgmt dependency m of a,
//!                     object-store/host (Velero's location is read there)
//! ```

use super::Scope;
use super::StepKind;
use super::declare::{On, Per};
use super::targets::{AddonRef, ClusterRef, HostRef, NodeRef, Targets};
use crate::orchestrator::step_id::{HOST, StepId};

/// The host, node or cluster a planned step acts on.
#[derive(Debug, Clone)]
pub enum Target {
    Host(HostRef),
    Node(NodeRef),
    Cluster(ClusterRef),
    Addon(AddonRef),
}

impl Target {
    fn name(&self) -> &str {
        match self {
            Target::Host(_) => HOST,
            Target::Node(n) => n.name().as_str(),
            Target::Cluster(c) => c.name().as_str(),
            Target::Addon(a) => a.subject().name(),
        }
    }
}

/// One step of the plan: id, dependencies, subject.
#[derive(Debug, Clone)]
pub struct Planned {
    pub id: StepId,
    pub after: Vec<StepId>,
    pub target: Target,
}

/// A declared dependency that cannot be read from a subject (a node step
/// waiting for its cluster's control plane when the run does not build
/// that cluster): a mistake in the table, reported instead of dropping
/// the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step} waits for {dep} of {on:?}, which this run does not have")]
pub struct Unrelated {
    pub step: StepId,
    pub dep: StepKind,
    pub on: On,
}

/// See the module documentation.
pub fn plan_shape(targets: &Targets, scope: Scope) -> Result<Vec<Planned>, Unrelated> {
    let mut out = Vec::new();
    for &kind in StepKind::ALL {
        if !kind.per().in_scope(scope) {
            continue;
        }
        for target in subjects(targets, kind.per()) {
            let id = StepId::new(kind, target.name());
            let mut after = Vec::new();
            for &(dep, on) in kind.after() {
                let names = related(targets, &target, dep, on).ok_or_else(|| Unrelated {
                    step: id.clone(),
                    dep,
                    on,
                })?;
                after.extend(names.into_iter().map(|name| StepId::new(dep, &name)));
            }
            out.push(Planned { id, after, target });
        }
    }
    Ok(out)
}

/// Every subject a kind declared `per` gets a step for.
fn subjects(targets: &Targets, per: Per) -> Vec<Target> {
    match per {
        Per::HostMirrors => host_if(targets, targets.host().mirrors()),
        Per::HostObjectStore => host_if(targets, targets.host().object_store()),
        Per::Node => targets.nodes().iter().cloned().map(Target::Node).collect(),
        Per::Worker => targets
            .clusters()
            .iter()
            .flat_map(|c| c.workers().cloned().map(Target::Node))
            .collect(),
        Per::Cluster => targets
            .clusters()
            .iter()
            .cloned()
            .map(Target::Cluster)
            .collect(),
        Per::Addon => targets
            .clusters()
            .iter()
            .flat_map(ClusterRef::addons)
            .map(Target::Addon)
            .collect(),
    }
}

/// The host as the one subject, when it runs the service asked about.
fn host_if(targets: &Targets, runs: bool) -> Vec<Target> {
    if runs {
        vec![Target::Host(targets.host().clone())]
    } else {
        Vec::new()
    }
}

/// The subjects of `dep` steps that `on` names from `target`; `None` when
/// the run does not build the cluster it needs.
fn related(targets: &Targets, target: &Target, dep: StepKind, on: On) -> Option<Vec<String>> {
    let cluster = || match target {
        Target::Host(_) => None,
        Target::Cluster(c) => Some(c.clone()),
        Target::Node(n) => targets.cluster(n.cluster()).cloned(),
        Target::Addon(a) => Some(a.cluster().clone()),
    };
    let name = |n: &NodeRef| n.name().to_string();
    Some(match on {
        On::Same => vec![target.name().to_owned()],
        On::Host => subjects(targets, dep.per())
            .iter()
            .map(|t| t.name().to_owned())
            .collect(),
        On::OwnCluster => vec![cluster()?.name().to_string()],
        On::ControlPlane => vec![name(cluster()?.control_plane())],
        On::Workers => cluster()?.workers().map(name).collect(),
        On::Dependencies => match target {
            Target::Addon(a) => {
                let own = a.cluster().name().to_string();
                let mut deps: Vec<String> = a
                    .addon()
                    .depends_on
                    .iter()
                    .map(|dep| format!("{own}/{dep}"))
                    .collect();
                // mgmt's add-ons, when this run builds mgmt (else the step
                // finds out at run time, through the component's API).
                let mgmt = targets
                    .clusters()
                    .iter()
                    .find(|c| c.role() == topology::ClusterRole::Mgmt);
                if let Some(mgmt) = mgmt {
                    for dep in a.addon().after_mgmt {
                        let id = format!("{}/{dep}", mgmt.name());
                        if !deps.contains(&id) {
                            deps.push(id);
                        }
                    }
                }
                deps
            }
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::{Graph, GraphError, StepError, StepJob, StepMessages};

    /// The plan checked as a graph checks it (unique ids, every
    /// dependency planned): the table's own test.
    fn check(plan: &[Planned]) -> Result<(), GraphError> {
        let mut graph = Graph::new();
        for p in plan {
            graph.add(p.id.clone(), p.after.clone(), std::sync::Arc::new(NoJob))?;
        }
        graph.validate()
    }

    /// Stands in for a job where only the shape matters.
    struct NoJob;

    #[async_trait::async_trait]
    impl StepJob for NoJob {
        async fn run(&self, _: &StepId, _: &dyn StepMessages) -> Result<(), StepError> {
            Ok(())
        }
    }

    fn targets(nodes: &[&str]) -> Targets {
        targets_of(topology::default_topology(), nodes)
    }

    fn targets_of(topology: topology::Topology, nodes: &[&str]) -> Targets {
        let resolved = topology.resolve(None).unwrap();
        let nodes: Vec<String> = nodes.iter().map(|n| (*n).to_owned()).collect();
        Targets::resolve(&resolved, &nodes).unwrap()
    }

    fn after<'a>(plan: &'a [Planned], id: &str) -> Vec<&'a str> {
        plan.iter()
            .find(|p| p.id.as_str() == id)
            .unwrap_or_else(|| panic!("{id} not planned"))
            .after
            .iter()
            .map(StepId::as_str)
            .collect()
    }

    #[test]
    fn one_cluster_has_the_documented_edges() {
        let plan = plan_shape(&targets(&["app1-cp", "app1-worker-0"]), Scope::Clusters).unwrap();
        check(&plan).unwrap();
        // The node and cluster steps, six add-ons of the catalogue's
        // first waves, the two shippers (the Prometheus agent, Alloy),
        // k8sgpt's read-only binding, Kyverno and its policies (C4) and
        // Falco.
        assert_eq!(plan.len(), 8 + 6 + 6 + 2 + 1 + 2 + 1);
        assert_eq!(after(&plan, "render/app1-cp"), Vec::<&str>::new());
        assert_eq!(after(&plan, "launch/app1-cp"), ["render/app1-cp"]);
        assert_eq!(after(&plan, "enrol/app1-cp"), ["launch/app1-cp"]);
        assert_eq!(after(&plan, "prerequisites/app1-cp"), ["enrol/app1-cp"]);
        assert_eq!(after(&plan, "kubeadm-init/app1"), ["prerequisites/app1-cp"]);
        assert_eq!(after(&plan, "kubeconfig/app1"), ["kubeadm-init/app1"]);
        assert_eq!(after(&plan, "cni/app1"), ["kubeadm-init/app1"]);
        assert_eq!(
            after(&plan, "kubeadm-join/app1-worker-0"),
            ["prerequisites/app1-worker-0", "kubeadm-init/app1"]
        );
        assert_eq!(
            after(&plan, "nodes-ready/app1"),
            ["cni/app1", "kubeadm-join/app1-worker-0"]
        );
        assert_eq!(after(&plan, "addons/app1"), ["nodes-ready/app1"]);
        assert_eq!(after(&plan, "addon/app1/argocd-access"), ["addons/app1"]);
        assert_eq!(after(&plan, "addon/app1/cert-manager"), ["addons/app1"]);
        assert_eq!(
            after(&plan, "addon/app1/lab-ca"),
            ["addons/app1", "addon/app1/cert-manager"]
        );
        assert_eq!(
            plan.iter().filter(|p| p.id.subject().is_cluster()).count(),
            6 + 5 + 2 + 1 + 2 + 1
        );
        assert_eq!(
            after(&plan, "addon/app1/kyverno-policies"),
            ["addons/app1", "addon/app1/kyverno"]
        );
        // Without mgmt in the run, phase 2 and the store have no edge to
        // its Vault (they meet it through its API at run time).
        assert_eq!(
            after(&plan, "addon/app1/vault-issuer"),
            ["addons/app1", "addon/app1/lab-ca"]
        );
    }

    #[test]
    fn clusters_without_their_control_plane_get_no_steps() {
        let topology = topology::default_topology();
        let all: Vec<&str> = topology.nodes().iter().map(|n| n.name.as_str()).collect();
        let everything = plan_shape(&targets(&all), Scope::Clusters).unwrap();
        check(&everything).unwrap();
        let cluster_part = everything
            .iter()
            .filter(|p| !p.id.kind().per().in_scope(Scope::Nodes))
            .count();
        // Six per cluster, plus the catalogue's add-ons by role:
        // cert-manager, its lab CA, the Vault issuer, External Secrets and
        // the store everywhere; Vault, Argo CD and its registrations on
        // mgmt; Argo CD's binding on each app cluster; observability:
        // Alloy everywhere, the stack, Thanos, Loki, Tempo, Grafana and
        // hostctl's own scrape configuration on mgmt, the Prometheus agent
        // on each app cluster; k8sgpt on mgmt and its binding everywhere;
        // Kyverno and its policies (C4) and Falco on each app cluster only.
        assert_eq!(
            cluster_part,
            18 + 3 * 5 + 3 + 2 + 3 + 6 + 2 + 1 + 3 + 2 * 2 + 2
        );
        // C4: mgmt's plan has no Kyverno step, each app cluster has both.
        assert!(
            !everything
                .iter()
                .any(|p| p.id.as_str().starts_with("addon/mgmt/kyverno")),
            "Kyverno planned on mgmt"
        );
        for cluster in ["app1", "app2"] {
            for addon in ["kyverno", "kyverno-policies"] {
                after(&everything, &format!("addon/{cluster}/{addon}"));
            }
        }
        // Phase 2 (C5) and the secret stores wait for mgmt's Vault,
        // bootstrapped, on every cluster.
        for cluster in ["mgmt", "app1", "app2"] {
            let issuer = after(&everything, &format!("addon/{cluster}/vault-issuer"));
            assert!(
                issuer.contains(&"addon/mgmt/vault"),
                "{cluster}: {issuer:?}"
            );
            let store = after(&everything, &format!("addon/{cluster}/secret-store"));
            assert!(store.contains(&"addon/mgmt/vault"), "{cluster}: {store:?}");
            assert!(
                store.contains(&format!("addon/{cluster}/external-secrets").as_str()),
                "{store:?}"
            );
        }
        assert_eq!(
            after(&everything, "addon/mgmt/vault"),
            ["addons/mgmt", "addon/mgmt/lab-ca"]
        );
        assert_eq!(after(&everything, "addon/mgmt/argocd"), ["addons/mgmt"]);
        assert_eq!(
            after(&everything, "addon/mgmt/argocd-platform"),
            ["addons/mgmt", "addon/mgmt/argocd"]
        );
        let plan = plan_shape(&targets(&["app2-worker-0"]), Scope::Clusters).unwrap();
        assert!(
            plan.iter().all(|p| p.id.kind().per() == Per::Node),
            "{plan:?}"
        );
    }

    #[test]
    fn managed_mirrors_come_before_every_prerequisites_step_and_nothing_else() {
        let mut topology = topology::default_topology();
        topology.mirrors = Some(topology::Mirrors {
            managed: true,
            ..Default::default()
        });
        let nodes = ["app1-cp", "app1-worker-0"];
        for scope in [Scope::Nodes, Scope::Clusters] {
            let plan = plan_shape(&targets_of(topology.clone(), &nodes), scope).unwrap();
            check(&plan).unwrap();
            assert_eq!(after(&plan, "mirrors/host"), Vec::<&str>::new());
            for node in nodes {
                assert_eq!(
                    after(&plan, &format!("prerequisites/{node}")),
                    [format!("enrol/{node}").as_str(), "mirrors/host"]
                );
                // Launching and enrolling do not wait: Harbor's first
                // start (image pulls, emulation) overlaps the machines'.
                assert_eq!(
                    after(&plan, &format!("launch/{node}")),
                    [format!("render/{node}").as_str()]
                );
            }
            let waiting: Vec<&str> = plan
                .iter()
                .filter(|p| p.after.iter().any(|a| a.as_str() == "mirrors/host"))
                .map(|p| p.id.as_str())
                .collect();
            assert_eq!(
                waiting,
                ["prerequisites/app1-cp", "prerequisites/app1-worker-0"]
            );
        }
        // Without managed mirrors, there is no host step and no edge to one.
        let plan = plan_shape(&targets(&nodes), Scope::Nodes).unwrap();
        assert!(plan.iter().all(|p| p.id.as_str() != "mirrors/host"));
        assert_eq!(after(&plan, "prerequisites/app1-cp"), ["enrol/app1-cp"]);
    }

    #[test]
    fn managed_backups_put_the_object_store_before_every_add_on_of_a_cluster_run() {
        let mut topology = topology::default_topology();
        topology.backups = Some(topology::Backups { managed: true });
        let nodes = ["app1-cp", "app1-worker-0"];
        let plan = plan_shape(&targets_of(topology.clone(), &nodes), Scope::Clusters).unwrap();
        check(&plan).unwrap();
        assert_eq!(after(&plan, "object-store/host"), Vec::<&str>::new());
        let addons: Vec<&Planned> = plan
            .iter()
            .filter(|p| p.id.kind() == StepKind::Addon)
            .collect();
        assert!(
            addons.iter().any(|p| p.id.as_str() == "addon/app1/velero"),
            "Velero is planned with backups"
        );
        for step in &addons {
            assert!(
                step.after.iter().any(|a| a.as_str() == "object-store/host"),
                "{} does not wait for the store",
                step.id
            );
        }
        // Nothing of the nodes waits for it, and the mirrors are not planned.
        assert_eq!(after(&plan, "prerequisites/app1-cp"), ["enrol/app1-cp"]);
        assert!(plan.iter().all(|p| p.id.as_str() != "mirrors/host"));
        // A nodes-only run has no add-ons, so no store step either.
        let nodes_only = plan_shape(&targets_of(topology, &nodes), Scope::Nodes).unwrap();
        assert!(
            nodes_only
                .iter()
                .all(|p| p.id.as_str() != "object-store/host")
        );
    }

    #[test]
    fn nodes_only_plans_the_node_steps() {
        let plan = plan_shape(&targets(&["app1-cp", "app1-worker-0"]), Scope::Nodes).unwrap();
        check(&plan).unwrap();
        assert_eq!(plan.len(), 8);
        assert!(plan.iter().all(|p| !p.id.subject().is_cluster()));
    }
}
