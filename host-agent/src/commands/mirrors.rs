//! `hostctl mirrors up|status|down [--purge]`: Harbor and Nexus on the
//! host's Docker for a topology with `mirrors: { managed: true }`
//! (docs/mirrors.md). `up` is also `hostctl up`'s `mirrors/host` step
//! ([`HostMirrors`]).
//!
//! `-o json` of `status` is the stable interface:
//! ```text
//! [ { "name" ("harbor"|"nexus"), "url", "state", "containers", "running" } ]
//! ```

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::mirrors::compose::HostArch;
use crate::mirrors::docker::DockerCli;
use crate::mirrors::layout::Layout;
use crate::mirrors::service::{HttpApis, Mirrors, UpReport};
use crate::mirrors::{Endpoints, error::MirrorError};
use crate::orchestrator::steps::mirrors::MirrorsUp;
use crate::output::{Table, render};
use crate::workspace::Workspace;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: MirrorsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum MirrorsCommand {
    /// Render, start and configure Harbor (:8443) and Nexus (:8081);
    /// running it again changes nothing that is already right.
    Up,
    /// Each mirror's containers and whether its API answers.
    Status,
    /// Remove the containers; the data stays unless --purge.
    Down {
        /// Also delete the mirrors' data, credentials and files.
        #[arg(long)]
        purge: bool,
    },
}

/// How long `up` waits for each mirror (first start pulls images; Harbor
/// may run under emulation).
const READY_WITHIN: Duration = Duration::from_secs(900);

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let workspace = Workspace::recorded(ctx)?;
    crate::cli::block_on(dispatch(ctx, &workspace, &args.command))?
}

/// The real mirrors of this home: Docker's CLI, HTTP APIs (also what
/// `status`, `verify` and the `registry-down` drill act on).
pub fn real<'a>(ctx: &Context, workspace: &Workspace, docker: &'a DockerCli) -> Mirrors<'a> {
    Mirrors {
        layout: Layout::new(ctx.home.root()),
        endpoints: Endpoints {
            host: workspace.resolved.host_agent_address(),
        },
        arch: HostArch::current(),
        docker,
        apis: &HttpApis,
        ready_within: READY_WITHIN,
    }
}

/// The lab root hostctl signs Harbor's certificate with (PEM).
pub fn lab_ca(ctx: &Context) -> Option<String> {
    let pki = crate::pki::open_existing(ctx).ok();
    pki.as_ref()
        .and_then(|p| p.lab_root())
        .map(|l| l.cert_pem().to_owned())
}

/// The real mirrors as `hostctl up`'s `mirrors/host` step starts them:
/// owned, since the step outlives the command's borrows.
pub struct HostMirrors {
    docker: DockerCli,
    layout: Layout,
    endpoints: Endpoints,
}

impl HostMirrors {
    pub fn new(ctx: &Context, workspace: &Workspace) -> HostMirrors {
        HostMirrors {
            docker: DockerCli::new(crate::exec::real()),
            layout: Layout::new(ctx.home.root()),
            endpoints: Endpoints {
                host: workspace.resolved.host_agent_address(),
            },
        }
    }
}

#[async_trait::async_trait]
impl MirrorsUp for HostMirrors {
    async fn up(
        &self,
        topology: &topology::Topology,
        lab: &certs::LabRoot,
    ) -> Result<UpReport, MirrorError> {
        Mirrors {
            layout: self.layout.clone(),
            endpoints: self.endpoints,
            arch: HostArch::current(),
            docker: &self.docker,
            apis: &HttpApis,
            ready_within: READY_WITHIN,
        }
        .up(topology, lab)
        .await
    }
}

async fn dispatch(
    ctx: &Context,
    workspace: &Workspace,
    command: &MirrorsCommand,
) -> anyhow::Result<Exit> {
    let docker = DockerCli::new(crate::exec::real());
    let mirrors = real(ctx, workspace, &docker);
    match command {
        MirrorsCommand::Up => {
            up(ctx, workspace, &mirrors).await?;
            Ok(Exit::Ok)
        }
        MirrorsCommand::Status => {
            let rows = mirrors.status(lab_ca(ctx).as_deref()).await;
            let text = render(ctx.output, &rows, || {
                let mut t = Table::new(["MIRROR", "URL", "STATE", "CONTAINERS"]);
                for r in &rows {
                    t.row([
                        r.name.to_owned(),
                        r.url.clone(),
                        r.state.clone(),
                        format!("{}/{}", r.running, r.containers),
                    ]);
                }
                t
            })?;
            crate::stdout::write(&text)?;
            Ok(Exit::Ok)
        }
        MirrorsCommand::Down { purge } => {
            for line in mirrors
                .down(*purge)
                .await
                .map_err(|e| coded(Exit::Precondition, e))?
            {
                crate::stdout::line(line)?;
            }
            Ok(Exit::Ok)
        }
    }
}

/// `mirrors up`: refuses a topology without `managed: true`.
pub async fn up(ctx: &Context, workspace: &Workspace, mirrors: &Mirrors<'_>) -> anyhow::Result<()> {
    if !workspace.topology.managed_mirrors() {
        return Err(coded(
            Exit::Precondition,
            anyhow::anyhow!(
                "the topology does not ask for managed mirrors; add `mirrors: {{ managed: true }}` to it"
            ),
        ));
    }
    let pki = crate::pki::ensure_pki(ctx, &workspace.resolved)?;
    let lab = pki
        .lab_root()
        .ok_or_else(|| coded(Exit::Precondition, MirrorError::NoLabRoot))?;
    let report = mirrors
        .up(&workspace.topology, lab)
        .await
        .map_err(|e| coded(Exit::Precondition, e))?;
    if report.changed.is_empty() {
        crate::stdout::line("mirrors: Harbor and Nexus already up and configured")?;
    }
    for change in &report.changed {
        crate::stdout::line(format!("mirrors: {change}"))?;
    }
    Ok(())
}
