//! One YAML emitter for everything under `k8s`: a header comment followed by
//! `---`-separated documents, so every rendered file looks alike and diffs
//! cleanly in golden tests.

use super::error::{K8sError, Result};
use serde::Serialize;

/// Emitter options: multi-line strings (scripts, embedded files) become
/// literal blocks a reviewer can read, while long single-line values (base64
/// CA bundles) stay plain scalars instead of being folded, so every YAML
/// reader, Helm included, takes them verbatim.
fn options() -> serde_saphyr::SerializerOptions {
    serde_saphyr::ser_options! {
        folded_wrap_chars: usize::MAX,
    }
}

/// Serialises one value as a YAML document body.
pub(crate) fn document<T: Serialize>(what: &str, value: &T) -> Result<String> {
    serde_saphyr::to_string_with_options(value, options()).map_err(|source| K8sError::Yaml {
        what: what.to_owned(),
        source,
    })
}

/// Joins `header` (each line becomes a `# ` comment) and the documents with
/// `---` separators. Comments carry what a reviewer must know that the
/// fields cannot say (placeholders, who fills them in).
pub(crate) fn file(header: &str, documents: &[String]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    for (i, doc) in documents.iter().enumerate() {
        if i > 0 || !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Serialises each value and joins them as [`file`] does.
pub(crate) fn documents<T: Serialize>(what: &str, header: &str, values: &[T]) -> Result<String> {
    let docs = values
        .iter()
        .map(|v| document(what, v))
        .collect::<Result<Vec<_>>>()?;
    Ok(file(header, &docs))
}
