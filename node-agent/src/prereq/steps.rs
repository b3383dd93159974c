//! The steps, in order, each with the inputs its result depends on, a
//! `check` (is it in place?) and an `apply` (put it in place; idempotent).
//!
//! Checks read the files a step owns and, where the kernel or dpkg can be
//! observed, the live state: `/proc/swaps`, `/sys/module`, `/proc/sys`
//! under the root, and `dpkg-query`/`systemctl is-enabled` through the
//! runner. Where that state cannot be observed (the local provider's root
//! has no `/proc`; the recording stand-in answers no queries) the check
//! rests on the files alone and the caller's record of completion.

use std::path::Path;

use super::files::{self, FileSpec};
use super::inputs::AptSources;
use super::record::StepInputs;
use super::{Inputs, PrereqError, apt, archive};
use crate::exec::{Runner, argv};

/// The Kubernetes packages that are pinned and held.
pub const KUBE_PACKAGES: [&str; 3] = ["kubelet", "kubeadm", "kubectl"];

/// What every step works with.
pub struct Ctx<'a> {
    /// The node's `/`.
    pub root: &'a Path,
    pub inputs: &'a Inputs,
    pub runner: &'a dyn Runner,
}

/// One prerequisite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Swap,
    KernelModules,
    Sysctl,
    AptProxy,
    UbuntuArchive,
    AptRepository,
    Containerd,
    ContainerdConfig,
    KubernetesRepo,
    KubernetesPackages,
    Crictl,
}

impl Step {
    /// Every step, in the order they run (modules before the sysctls that
    /// need them; the proxy, the archive's sources and the flat repository
    /// before anything uses apt; containerd before its configuration is
    /// loaded; the repository before its packages).
    pub const ALL: [Step; 11] = [
        Step::Swap,
        Step::KernelModules,
        Step::Sysctl,
        Step::AptProxy,
        Step::UbuntuArchive,
        Step::AptRepository,
        Step::Containerd,
        Step::ContainerdConfig,
        Step::KubernetesRepo,
        Step::KubernetesPackages,
        Step::Crictl,
    ];

    /// The name in `prerequisites/<name>` and in the state file.
    pub fn name(self) -> &'static str {
        match self {
            Step::Swap => "swap",
            Step::KernelModules => "kernel-modules",
            Step::Sysctl => "sysctl",
            Step::AptProxy => "apt-proxy",
            Step::UbuntuArchive => "ubuntu-archive",
            Step::AptRepository => "apt-repository",
            Step::Containerd => "containerd",
            Step::ContainerdConfig => "containerd-config",
            Step::KubernetesRepo => "kubernetes-repo",
            Step::KubernetesPackages => "kubernetes-packages",
            Step::Crictl => "crictl",
        }
    }

    /// The inputs the step's result depends on; a change redoes the step.
    pub fn inputs(self, inputs: &Inputs) -> StepInputs {
        let one = |k: &str, v: String| StepInputs::from([(k.to_owned(), v)]);
        match self {
            Step::AptProxy => one("aptProxy", inputs.apt_proxy.clone().unwrap_or_default()),
            Step::UbuntuArchive => {
                let suites: Vec<String> = inputs
                    .ubuntu_archive
                    .iter()
                    .map(|s| format!("{} {}", s.url, s.suite))
                    .collect();
                one("ubuntuArchive", suites.join(","))
            }
            Step::AptRepository => one(
                "aptRepository",
                inputs.apt_repository.clone().unwrap_or_default(),
            ),
            Step::ContainerdConfig => {
                let hosts: Vec<String> = inputs
                    .registry_hosts
                    .iter()
                    .map(|h| {
                        format!(
                            "{}={}>{}{}",
                            h.registry,
                            h.upstream,
                            h.mirror,
                            if h.override_path { " override" } else { "" }
                        )
                    })
                    .collect();
                StepInputs::from([
                    (
                        "registryMirror".to_owned(),
                        inputs.registry_mirror.clone().unwrap_or_default(),
                    ),
                    ("registryHosts".to_owned(), hosts.join(",")),
                    (
                        "registryCa".to_owned(),
                        inputs
                            .registry_ca_pem
                            .as_deref()
                            .map(|p| hex_sha256(p.as_bytes()))
                            .unwrap_or_default(),
                    ),
                ])
            }
            Step::KubernetesRepo => one("repository", inputs.repository()),
            Step::KubernetesPackages => one("version", inputs.package_pin()),
            _ => StepInputs::new(),
        }
    }

    /// Is the step's result in place?
    pub async fn check(self, ctx: &Ctx<'_>) -> Result<bool, PrereqError> {
        let root = ctx.root;
        Ok(match self {
            Step::Swap => {
                let fstab = files::read(root, files::FSTAB)?.unwrap_or_default();
                let proc_swaps = files::read(root, "/proc/swaps")?.unwrap_or_default();
                !String::from_utf8_lossy(&fstab)
                    .lines()
                    .any(files::is_swap_entry)
                    && String::from_utf8_lossy(&proc_swaps).lines().count() <= 1
            }
            Step::KernelModules => {
                files::matches(root, &files::modules_load())?
                    && (!files::exists(root, "/sys/module")?
                        || all_present(root, files::MODULES.map(|m| format!("/sys/module/{m}")))?)
            }
            Step::Sysctl => files::matches(root, &files::sysctl())? && sysctls_applied(root)?,
            Step::AptProxy => match &ctx.inputs.apt_proxy {
                Some(url) => files::matches(root, &files::apt_proxy(url))?,
                None => files::absent(root, files::APT_PROXY)?,
            },
            Step::UbuntuArchive => archive::in_place(root, &ctx.inputs.ubuntu_archive)?,
            Step::AptRepository => match &ctx.inputs.apt_repository {
                Some(url) => files::matches(root, &files::apt_mirror_list(url))?,
                None => files::absent(root, files::APT_MIRROR_LIST)?,
            },
            Step::Containerd => {
                let installed = ["dpkg-query", "-W", "-f=${Status}", "containerd"];
                let enabled = ["systemctl", "is-enabled", "containerd"];
                query_says(ctx, &installed, |o| o.ends_with("install ok installed")).await?
                    && query_says(ctx, &enabled, |o| o.trim() == "enabled").await?
            }
            Step::ContainerdConfig => {
                let mut ok = files::matches(root, &files::containerd_config())?;
                for spec in mirror_files(ctx.inputs) {
                    ok &= match spec {
                        Ok(spec) => files::matches(root, &spec)?,
                        Err(path) => files::absent(root, &path)?,
                    };
                }
                ok
            }
            Step::KubernetesRepo => match ctx.inputs.apt_sources() {
                AptSources::System => {
                    files::matches(root, &files::sources_list(ctx.inputs))?
                        && files::read(root, files::KEYRING)?.is_some_and(|k| !k.is_empty())
                }
                AptSources::Mirror { .. } => {
                    files::absent(root, files::SOURCES_LIST)?
                        && files::absent(root, files::KEYRING)?
                }
            },
            Step::KubernetesPackages => {
                let prefix = ctx.inputs.installed_prefix();
                let mut argv = vec!["dpkg-query", "-W", "-f=${Package} ${Version} ${Status}\\n"];
                argv.extend(KUBE_PACKAGES);
                query_says(ctx, &argv, |out| {
                    KUBE_PACKAGES.iter().all(|p| {
                        out.lines().any(|l| {
                            l.starts_with(&format!("{p} {prefix}"))
                                && l.ends_with("hold ok installed")
                        })
                    })
                })
                .await?
            }
            Step::Crictl => files::matches(root, &files::crictl())?,
        })
    }

    /// Puts the step's result in place.
    pub async fn apply(self, ctx: &Ctx<'_>) -> Result<(), PrereqError> {
        let root = ctx.root;
        match self {
            Step::Swap => {
                run(ctx, &["swapoff", "-a"]).await?;
                let fstab = files::read(root, files::FSTAB)?.unwrap_or_default();
                if let Some(text) = files::fstab_without_swap(&String::from_utf8_lossy(&fstab)) {
                    files::write(
                        root,
                        &FileSpec {
                            path: files::FSTAB.into(),
                            contents: text.into_bytes(),
                            mode: 0o644,
                        },
                    )?;
                }
            }
            Step::KernelModules => {
                files::write(root, &files::modules_load())?;
                for module in files::MODULES {
                    run(ctx, &["modprobe", module]).await?;
                }
            }
            Step::Sysctl => {
                files::write(root, &files::sysctl())?;
                run(ctx, &["sysctl", "--system"]).await?;
            }
            Step::AptProxy => match &ctx.inputs.apt_proxy {
                Some(url) => files::write(root, &files::apt_proxy(url))?,
                None => files::remove(root, files::APT_PROXY)?,
            },
            Step::UbuntuArchive => archive::apply(root, &ctx.inputs.ubuntu_archive)?,
            Step::AptRepository => match &ctx.inputs.apt_repository {
                Some(url) => files::write(root, &files::apt_mirror_list(url))?,
                None => files::remove(root, files::APT_MIRROR_LIST)?,
            },
            Step::Containerd => {
                let (sources, archive) = match (
                    &ctx.inputs.apt_repository,
                    ctx.inputs.ubuntu_archive.first(),
                ) {
                    (Some(url), _) => (url.as_str(), url.as_str()),
                    (None, Some(mirror)) => ("the configured apt sources", mirror.url.as_str()),
                    (None, None) => ("the configured apt sources", "the Ubuntu archive"),
                };
                run_apt(ctx, &["update"], sources).await?;
                run_apt(ctx, &["install", "-y", "containerd"], archive).await?;
                run(ctx, &["systemctl", "enable", "--now", "containerd"]).await?;
            }
            Step::ContainerdConfig => {
                files::write(root, &files::containerd_config())?;
                for spec in mirror_files(ctx.inputs) {
                    match spec {
                        Ok(spec) => files::write(root, &spec)?,
                        Err(path) => files::remove(root, &path)?,
                    }
                }
                run(ctx, &["systemctl", "restart", "containerd"]).await?;
            }
            Step::KubernetesRepo if ctx.inputs.apt_repository.is_some() => {
                // The flat repository carries the packages; a pkgs.k8s.io
                // source left by an earlier run would only fail to fetch.
                files::remove(root, files::SOURCES_LIST)?;
                files::remove(root, files::KEYRING)?;
            }
            Step::KubernetesRepo => {
                let url = ctx.inputs.key_url();
                let armoured = ctx.runner.fetch(&url).await?;
                let key = super::key::dearmor(&armoured)
                    .map_err(|reason| PrereqError::BadKey { url, reason })?;
                let keyring = FileSpec {
                    path: files::KEYRING.into(),
                    contents: key,
                    mode: 0o644,
                };
                files::write(root, &keyring)?;
                files::write(root, &files::sources_list(ctx.inputs))?;
            }
            Step::KubernetesPackages => {
                let repository = ctx.inputs.repository();
                let pinned = KUBE_PACKAGES.map(|p| format!("{p}={}", ctx.inputs.package_pin()));
                let mut install = vec!["install", "-y", "--allow-change-held-packages"];
                install.extend(pinned.iter().map(String::as_str));
                run_apt(ctx, &["update"], &repository).await?;
                run_apt(ctx, &install, &repository).await?;
                let mut hold = vec!["apt-mark", "hold"];
                hold.extend(KUBE_PACKAGES);
                run(ctx, &hold).await?;
            }
            Step::Crictl => files::write(root, &files::crictl())?,
        }
        Ok(())
    }
}

/// Per owned registry: the `hosts.toml` to write (`Ok`), or the path to
/// remove when it has no mirror (`Err`); plus the mirrors' CA files. The
/// per-upstream hosts (hostctl's Harbor) win over the single mirror.
fn mirror_files(inputs: &Inputs) -> Vec<Result<FileSpec, String>> {
    let mut out = Vec::new();
    let mut mirrored: Vec<&str> = Vec::new();
    if inputs.registry_hosts.is_empty() {
        if let Some(mirror) = &inputs.registry_mirror {
            for (registry, upstream) in files::MIRRORED {
                out.push(Ok(files::hosts_toml(
                    registry, upstream, mirror, false, None,
                )));
                mirrored.push(registry);
            }
        }
    } else {
        for host in &inputs.registry_hosts {
            let ca = inputs
                .registry_ca_pem
                .as_ref()
                .map(|_| files::mirror_ca_path(host.mirror_authority()));
            out.push(Ok(files::hosts_toml(
                &host.registry,
                &host.upstream,
                &host.mirror,
                host.override_path,
                ca.as_deref(),
            )));
            mirrored.push(&host.registry);
        }
        if let Some(pem) = &inputs.registry_ca_pem {
            let mut authorities: Vec<&str> = inputs
                .registry_hosts
                .iter()
                .map(|h| h.mirror_authority())
                .collect();
            authorities.dedup();
            out.extend(
                authorities
                    .into_iter()
                    .map(|a| Ok(files::mirror_ca(a, pem))),
            );
        }
    }
    for registry in files::OWNED_REGISTRIES {
        if !mirrored.contains(&registry) {
            out.push(Err(files::hosts_toml_path(registry)));
        }
    }
    out
}

/// A digest standing for a CA bundle in the step's recorded inputs (the
/// state file need not hold the certificate).
fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn all_present(root: &Path, paths: impl IntoIterator<Item = String>) -> Result<bool, PrereqError> {
    for path in paths {
        if !files::exists(root, &path)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Each sysctl reads 1 where `/proc/sys` is visible under the root.
fn sysctls_applied(root: &Path) -> Result<bool, PrereqError> {
    for key in files::SYSCTLS {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        if let Some(value) = files::read(root, &path)?
            && String::from_utf8_lossy(&value).trim() != "1"
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A query's verdict; a runner that cannot observe the machine defers to
/// the record (true).
async fn query_says(
    ctx: &Ctx<'_>,
    args: &[&str],
    ok: impl Fn(&str) -> bool,
) -> Result<bool, PrereqError> {
    Ok(match ctx.runner.query(&argv(args)).await? {
        Some(out) => out.success() && ok(&out.stdout),
        None => true,
    })
}

async fn run(ctx: &Ctx<'_>, args: &[&str]) -> Result<(), PrereqError> {
    let argv = argv(args);
    let out = ctx.runner.run(&argv).await?;
    if out.success() {
        return Ok(());
    }
    Err(PrereqError::CommandFailed {
        command: argv.join(" "),
        status: out.status,
        output: apt::tail(&format!("{}\n{}", out.stdout, out.stderr)),
    })
}

/// `apt-get args…` against the inputs' sources; a failure is classified,
/// naming `repository` as where a missing package was looked for.
async fn run_apt(ctx: &Ctx<'_>, args: &[&str], repository: &str) -> Result<(), PrereqError> {
    let argv = apt::apt_get(&ctx.inputs.apt_sources(), args);
    let out = ctx.runner.run(&argv).await?;
    if out.success() {
        return Ok(());
    }
    Err(apt::classify(&argv, &out, repository))
}
