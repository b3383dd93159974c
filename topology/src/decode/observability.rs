//! Decoding the optional `observability:` section ([`Observability`]).
//! `baseUrl` depends on the backend, so that check is made here with the
//! rest of the section's shape, at the field that is wrong.

use super::{Decoder, join};
use crate::mirror::MirrorUrl;
use crate::observability::{K8sgpt, LlmBackend, Observability};
use crate::tree;

const OBSERVABILITY_KEYS: &[&str] = &["k8sgpt"];
const K8SGPT_KEYS: &[&str] = &["backend", "model", "baseUrl"];

impl Decoder<'_, '_> {
    pub(super) fn observability(&mut self, node: &tree::Node) -> Option<Observability> {
        let f = self.mapping(
            node,
            "observability",
            OBSERVABILITY_KEYS,
            "the observability settings",
        )?;
        let k8sgpt = match f.get("k8sgpt") {
            Some(n) => self.k8sgpt(n, &join(&f.path, "k8sgpt")).map(Some),
            None => Some(None),
        };
        Some(Observability { k8sgpt: k8sgpt? })
    }

    fn k8sgpt(&mut self, node: &tree::Node, path: &str) -> Option<K8sgpt> {
        let errors_before = self.report.error_count();
        let f = self.mapping(node, path, K8SGPT_KEYS, "k8sgpt's LLM backend")?;
        let backend =
            self.required_field(&f, "backend", |d, n, p| d.choice(n, p, &LlmBackend::ALL));
        let model = self.required_field(&f, "model", Self::string);
        let base_url = match f.get("baseUrl") {
            Some(n) => self
                .parsed::<MirrorUrl>(n, &join(&f.path, "baseUrl"), "an http:// or https:// URL")
                .map(Some),
            None => Some(None),
        };
        let (backend, model, base_url) = (backend?, model?, base_url?);
        if self.report.error_count() > errors_before {
            // A misspelt `baseUrl` would read as a missing one.
            return None;
        }
        if model.trim().is_empty() {
            self.report.error_at(
                f.get("model").and_then(|n| n.pos),
                &join(&f.path, "model"),
                "the model name is empty",
                "name the backend's model, e.g. `model: gpt-4o-mini`",
            );
            return None;
        }
        match (backend, &base_url) {
            (LlmBackend::Localai, None) => {
                self.report.error_at(
                    f.pos,
                    &join(&f.path, "baseUrl"),
                    "backend `localai` needs the server's address",
                    "add `baseUrl: http://192.168.64.1:11434/v1` (an OpenAI-compatible server such as Ollama)",
                );
                return None;
            }
            (LlmBackend::Google, Some(_)) => {
                self.report.error_at(
                    f.get("baseUrl").and_then(|n| n.pos),
                    &join(&f.path, "baseUrl"),
                    "backend `google` has a fixed endpoint",
                    "remove `baseUrl`, or use `backend: localai` for a server of your own",
                );
                return None;
            }
            _ => {}
        }
        Some(K8sgpt {
            backend,
            model,
            base_url,
        })
    }
}
