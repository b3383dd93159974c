//! The platform layer: the add-on catalogue ([`catalogue`]) and everything
//! that reads it — rendering values and objects per cluster ([`render`]),
//! installing them through Helm and server-side apply with a readiness
//! check ([`install`], [`readiness`]), the fit report ([`fit`]) and the
//! Argo CD entries ([`argocd`]). `docs/platform.md` explains the choices.

pub mod argocd;
pub mod budget;
pub mod catalogue;
pub mod cert_manager;
pub mod error;
pub mod external_secrets;
pub mod falco;
pub mod fit;
pub mod install;
pub mod k8sgpt;
pub mod kyverno;
pub mod observability;
pub mod plan;
pub mod readiness;
pub mod record;
pub mod remote;
pub mod render;
pub mod vault;
pub mod velero;

pub use catalogue::{
    Addon, Available, Chart, ChartRepo, CustomCondition, Hook, Manifest, Placement, Readiness,
    catalogue,
};
pub use error::AddonError;
pub use render::RenderContext;
