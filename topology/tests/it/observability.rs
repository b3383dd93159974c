//! The optional `observability:` section: k8sgpt's LLM backend, off by
//! default. Bad values are in the corpus (`k8sgpt-*.yaml`).

use topology::{LlmBackend, default_topology, parse};

fn with(section: &str) -> String {
    format!("{}{section}", topology::default_yaml())
}

#[test]
fn the_default_has_no_k8sgpt_backend() {
    assert_eq!(default_topology().k8sgpt(), None);
    let loaded = parse(&topology::default_yaml(), "t.yaml").expect("default loads");
    assert_eq!(loaded.topology.k8sgpt(), None);
}

#[test]
fn each_backend_parses_and_round_trips() {
    for (section, backend, url) in [
        (
            "observability:\n  k8sgpt:\n    backend: openai\n    model: gpt-4o-mini\n",
            LlmBackend::Openai,
            None,
        ),
        (
            "observability:\n  k8sgpt:\n    backend: google\n    model: gemini-2.0-flash\n",
            LlmBackend::Google,
            None,
        ),
        (
            "observability:\n  k8sgpt:\n    backend: localai\n    model: \"qwen2.5:7b\"\n    baseUrl: http://192.168.64.1:11434/v1\n",
            LlmBackend::Localai,
            Some("http://192.168.64.1:11434/v1"),
        ),
    ] {
        let loaded = parse(&with(section), "t.yaml").unwrap_or_else(|e| panic!("{section}: {e}"));
        let k = loaded.topology.k8sgpt().expect("backend kept");
        assert_eq!(k.backend, backend);
        assert_eq!(k.base_url.as_ref().map(|u| u.as_str()), url);
        assert_eq!(k.backend.needs_key(), backend != LlmBackend::Localai);
        let again = parse(&loaded.topology.to_yaml(), "again.yaml").expect("emitted form loads");
        assert_eq!(again.topology.observability, loaded.topology.observability);
    }
}

#[test]
fn an_empty_model_is_refused_at_its_field() {
    let err = parse(
        &with("observability:\n  k8sgpt:\n    backend: openai\n    model: \" \"\n"),
        "t.yaml",
    )
    .expect_err("empty model refused");
    let text = err.to_string();
    assert!(
        text.contains("observability.k8sgpt.model") && text.contains("gpt-4o-mini"),
        "{text}"
    );
}
