//! The optional `observability:` section. Today it holds only k8sgpt's LLM
//! backend (spec §4.2): without one k8sgpt analyses nothing, because every
//! backend either sends cluster data to a third party (OpenAI, Gemini) or
//! needs a model server the user runs (a local, OpenAI-compatible one such
//! as Ollama). Choosing is the user's decision, so the default is none.

use crate::mirror::MirrorUrl;
use serde::Serialize;
use std::fmt;

/// Observability settings the user chooses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observability {
    /// k8sgpt's backend; `None`: k8sgpt is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8sgpt: Option<K8sgpt>,
}

/// Which LLM k8sgpt asks to explain what it finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sgpt {
    /// Which API k8sgpt talks to.
    pub backend: LlmBackend,
    /// The backend's model name, e.g. `gpt-4o-mini`, `gemini-2.0-flash`,
    /// `qwen2.5:7b`.
    pub model: String,
    /// The API's base URL: required for `localai` (e.g. Ollama on the host,
    /// `http://192.168.64.1:11434/v1`), optional for `openai` (an
    /// OpenAI-compatible endpoint), refused for `google` (k8sgpt's Gemini
    /// client has a fixed endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<MirrorUrl>,
}

/// The k8sgpt backends hostctl supports: the two the spec names and a
/// local one. Names are the k8sgpt operator's own `spec.ai.backend` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmBackend {
    /// OpenAI's API (or a compatible one at `baseUrl`); needs an API key.
    Openai,
    /// Google Gemini; needs an API key.
    Google,
    /// Any OpenAI-compatible server at `baseUrl`; no key.
    Localai,
}

impl LlmBackend {
    /// Every backend with its name as written in the topology.
    pub const ALL: [(&'static str, LlmBackend); 3] = [
        ("openai", LlmBackend::Openai),
        ("google", LlmBackend::Google),
        ("localai", LlmBackend::Localai),
    ];

    /// The name in the topology and in the K8sGPT object.
    pub fn as_str(self) -> &'static str {
        match self {
            LlmBackend::Openai => "openai",
            LlmBackend::Google => "google",
            LlmBackend::Localai => "localai",
        }
    }

    /// Whether the backend needs an API key (kept in Vault, never in the
    /// topology).
    pub fn needs_key(self) -> bool {
        !matches!(self, LlmBackend::Localai)
    }
}

impl fmt::Display for LlmBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
