//! Reading a topology file: YAML → located tree → typed model → checks.
//!
//! Every command that reads a topology goes through [`parse`] or
//! [`load_file`], so none of them can start work on a file with a mistake in it.

use crate::decode::decode;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::Topology;
use crate::report::{Report, SourceMap};
use crate::tree::{self, Pos};
use crate::validate::validate;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Budget, DuplicateKeyPolicy, Options};
use std::path::Path;

/// Nesting deeper than this is refused (the format itself needs 4 levels).
const MAX_DEPTH: usize = 12;

/// A topology that passed every check, with the warnings that remain.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The topology as written (addresses not yet resolved).
    pub topology: Topology,
    /// Problems that do not stop a command (printed before it runs).
    pub warnings: Vec<Diagnostic>,
    pub(crate) file: String,
    pub(crate) sources: SourceMap,
}

impl Loaded {
    /// Where each field was written, for locating later problems.
    pub fn source_map(&self) -> &SourceMap {
        &self.sources
    }

    /// The file name diagnostics carry.
    pub fn file(&self) -> &str {
        &self.file
    }
}

/// Parses and checks topology text. `file` is only used in diagnostics.
///
/// Errors: every problem found (errors and warnings, in source order) when
/// at least one is an error. Never panics, whatever `src` holds.
pub fn parse(src: &str, file: &str) -> Result<Loaded, Diagnostics> {
    let mut report = Report::new(file, None);
    let root = match read_tree(src) {
        Ok(Some(root)) => root,
        Ok(None) => {
            report.error_at(
                None,
                "",
                "the file is empty",
                "run `hostctl init` to write the default topology, then edit it",
            );
            return Err(report.finish());
        }
        Err((pos, message)) => {
            let fix = if message.contains("budget") || message.contains("limit") {
                "remove the deep nesting, anchors and aliases; a topology needs none"
            } else {
                "fix the YAML syntax at this position"
            };
            report.error_at(pos, "", format!("not valid YAML: {message}"), fix);
            return Err(report.finish());
        }
    };
    let (topology, sources) = decode(&root, &mut report);
    let Some(topology) = topology else {
        return Err(report.finish());
    };
    // Shape problems were reported without the source map; checks use it.
    let mut report = Report::new(file, Some(&sources));
    validate(&topology, &mut report, topology.network.cidr.trunc());
    let diagnostics = report.finish();
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    Ok(Loaded {
        topology,
        warnings: diagnostics.0,
        file: file.to_owned(),
        sources,
    })
}

/// Reads and checks a topology file; diagnostics name it as `path` was given.
pub fn load_file(path: &Path) -> Result<Loaded, Diagnostics> {
    let file = path.display().to_string();
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the file: {e}"))
        .and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| "the file is not UTF-8 text (is it a YAML file?)".to_owned())
        });
    match text {
        Ok(text) => parse(&text, &file),
        Err(message) => {
            let mut report = Report::new(&file, None);
            report.error_at(
                None,
                "",
                message,
                "check the path, or create the file with `hostctl init`",
            );
            Err(report.finish())
        }
    }
}

/// The YAML tree, `None` for an empty document, or the syntax error.
fn read_tree(src: &str) -> Result<Option<tree::Node>, (Option<Pos>, String)> {
    let mut options = Options::default();
    // Repeated keys reach the decoder, which reports each one and carries on.
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    // `yes`/`no`/`on` stay strings: a node named `no` must not become `false`.
    options.strict_booleans = true;
    options.with_snippet = false;
    // A topology is four levels deep. Each level of nesting costs tens of KiB
    // of stack in a debug build, and serde-saphyr's default limit (64) is
    // enough to overflow a 2 MiB thread; refuse anything deeper than
    // MAX_DEPTH long before that.
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options::<Option<tree::Node>>(src, options).map_err(|e| {
        let pos = e.location().and_then(Pos::from_location);
        let message = match e.without_snippet() {
            serde_saphyr::Error::MultipleDocuments { .. } => {
                "the file holds more than one YAML document (`---`); a topology is one document"
                    .to_owned()
            }
            serde_saphyr::Error::Budget {
                breach: BudgetBreach::Depth { .. },
                ..
            } => format!("it is nested more than {MAX_DEPTH} levels deep (a topology needs 4)"),
            serde_saphyr::Error::Budget { breach, .. } => {
                format!("it exceeds the parser's safety limits (budget breached: {breach:?})")
            }
            other => strip_position(&other.to_string()),
        };
        (pos, message)
    })
}

/// saphyr appends " at line N, column M"; diagnostics carry the position already.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(cut) if message[cut..].contains(", column ") => message[..cut].to_owned(),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::strip_position;

    #[test]
    fn strips_saphyr_positions_only() {
        assert_eq!(
            strip_position("unclosed bracket '[' at line 1, column 4"),
            "unclosed bracket '['"
        );
        assert_eq!(strip_position("plain message"), "plain message");
    }
}
