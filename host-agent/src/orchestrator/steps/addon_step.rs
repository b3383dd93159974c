//! `addon/<cluster>/<name>`: one catalogue add-on rendered for its cluster
//! (credentials minted now) and installed ([`crate::addons::install`]),
//! then recorded in `addons.json` with the fingerprint of its review
//! rendering. A rerun skips it when the record matches what would be
//! installed now and its readiness still holds; otherwise it installs
//! again (helm upgrade and server-side apply are idempotent), so a failed
//! or interrupted install simply resumes.

use super::UpContext;
use super::cluster::{admin, admin_now};
use super::targets::AddonRef;
use crate::addons::Hook;
use crate::addons::install::{Target, install};
use crate::addons::readiness::{check, first_unmet};
use crate::addons::record::{Installed, fingerprint};
use crate::addons::render::{Credentials, RenderContext, Rendered, render};
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use crate::secrets::VaultTarget;
use async_trait::async_trait;
use std::sync::Arc;

pub struct AddonStep {
    ctx: Arc<UpContext>,
    addon: AddonRef,
}

impl AddonStep {
    pub fn new(ctx: Arc<UpContext>, addon: AddonRef) -> AddonStep {
        AddonStep { ctx, addon }
    }

    fn cluster(&self) -> &str {
        self.addon.cluster().name().as_str()
    }

    fn render(&self, credentials: Credentials<'_>) -> Result<Rendered, StepError> {
        // The store's location and this cluster's own key, when the
        // topology asks for backups (`object-store/host` ran first).
        let backup = self.ctx.cluster.addons.backups.get(self.cluster());
        let ctx = RenderContext {
            resolved: &self.ctx.resolved,
            cluster: self.cluster(),
            credentials,
            platform: &self.ctx.cluster.addons.platform,
            backup: backup.as_ref(),
        };
        render(self.addon.addon(), &ctx).map_err(StepError::from_error)
    }
}

impl AddonStep {
    fn vault_target(&self) -> Result<VaultTarget, StepError> {
        let settings = &self.ctx.cluster;
        VaultTarget::locate(
            &self.ctx.resolved,
            &settings.pki,
            settings.addons.vault.address.clone(),
        )
        .map_err(StepError::from_error)
    }

    /// Whether what the add-on's hook set up still holds (Vault: initialised
    /// and unsealed); no hook, nothing to hold.
    async fn hook_holds(&self) -> bool {
        match self.addon.addon().hook {
            None => true,
            Some(Hook::VaultBootstrap) => {
                let Ok(client) = self
                    .vault_target()
                    .and_then(|t| t.client().map_err(StepError::from_error))
                else {
                    return false;
                };
                vault::status(&client)
                    .await
                    .is_ok_and(|s| s.initialized && !s.sealed)
            }
        }
    }

    /// Runs the add-on's hook; each run checks and repairs what it set up.
    async fn run_hook(&self, say: &(dyn Fn(&str) + Send + Sync)) -> Result<(), StepError> {
        let Some(hook) = self.addon.addon().hook else {
            return Ok(());
        };
        match hook {
            Hook::VaultBootstrap => {
                let settings = &self.ctx.cluster;
                let target = self.vault_target()?;
                say(&format!("bootstrap Vault at {}", target.address));
                let report = crate::secrets::bootstrap(
                    &self.ctx.resolved,
                    &settings.pki,
                    &settings.addons.vault.home,
                    &target,
                    settings.addons.vault.wait,
                )
                .await
                .map_err(StepError::from_error)?;
                say(&format!("Vault: {report}"));
                Ok(())
            }
        }
    }
}

#[async_trait]
impl StepJob for AddonStep {
    /// Installed as it would be now, and still ready.
    async fn satisfied(&self) -> Result<bool, StepError> {
        let settings = &self.ctx.cluster.addons;
        let record = settings.record.load().map_err(StepError::from_error)?;
        let want = fingerprint(&self.render(Credentials::Placeholder)?);
        let addon = self.addon.addon();
        if record
            .get(self.cluster(), addon.name)
            .is_none_or(|i| i.fingerprint != want)
        {
            return Ok(false);
        }
        let Ok((client, _)) = admin_now(&self.ctx, self.cluster()).await else {
            return Ok(false);
        };
        let ready = check(&client, addon, addon.readiness)
            .await
            .is_ok_and(|checks| first_unmet(&checks).is_none());
        Ok(ready && self.hook_holds().await)
    }

    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let settings = &self.ctx.cluster;
        let review = self.render(Credentials::Placeholder)?;
        let rendered = self.render(Credentials::Mint(&settings.pki))?;
        let (client, kubeconfig) = admin(&self.ctx, self.cluster()).await?;
        let target = Target {
            helm: settings.helm.as_ref(),
            charts: &settings.charts,
            client: &client,
            kubeconfig: &kubeconfig,
        };
        let say = |text: &str| messages.message(step, text);
        install(&target, &rendered, settings.addons.limits, &say)
            .await
            .map_err(StepError::from_error)?;
        self.run_hook(&say).await?;
        let installed = Installed {
            version: self.addon.addon().chart.map(|c| c.version.to_owned()),
            fingerprint: fingerprint(&review),
            installed_at: jiff::Timestamp::now().to_string(),
        };
        let (cluster, name) = (self.cluster().to_owned(), self.addon.addon().name);
        settings
            .addons
            .record
            .update(move |r| {
                r.clusters
                    .entry(cluster)
                    .or_default()
                    .insert(name.to_owned(), installed);
            })
            .await
            .map_err(StepError::from_error)?;
        Ok(())
    }
}
