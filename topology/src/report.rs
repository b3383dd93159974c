//! Collecting problems while decoding and validating.
//!
//! Checks speak in field paths only (`nodes[2].address`); [`SourceMap`] turns a
//! path into the line and column it was read from, so no check has to carry
//! positions around and the same checks work on a topology built in code.

use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::tree::Pos;
use std::collections::HashMap;

/// Where each field of a loaded topology was written.
///
/// Keys are field paths as used in diagnostics; a list item's own path
/// (`nodes[2]`) maps to the start of its mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    positions: HashMap<String, Pos>,
}

impl SourceMap {
    pub(crate) fn insert(&mut self, path: &str, pos: Option<Pos>) {
        if let Some(pos) = pos {
            self.positions.entry(path.to_owned()).or_insert(pos);
        }
    }

    /// The position of `path`, or of its closest recorded parent (a problem in
    /// a field that was defaulted points at the mapping that omits it).
    pub fn lookup(&self, path: &str) -> Option<Pos> {
        let mut current = path;
        loop {
            if let Some(pos) = self.positions.get(current) {
                return Some(*pos);
            }
            current = parent(current)?;
        }
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → None.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Accumulates diagnostics for one file.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    file: &'a str,
    sources: Option<&'a SourceMap>,
    items: Vec<Diagnostic>,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a str, sources: Option<&'a SourceMap>) -> Self {
        Report {
            file,
            sources,
            items: Vec::new(),
        }
    }

    /// Records an error located through the source map.
    pub fn error(&mut self, path: &str, message: impl Into<String>, fix: impl Into<String>) {
        let pos = self.sources.and_then(|s| s.lookup(path));
        self.push(Severity::Error, pos, path, message.into(), fix.into());
    }

    /// Records a warning located through the source map.
    pub fn warning(&mut self, path: &str, message: impl Into<String>, fix: impl Into<String>) {
        let pos = self.sources.and_then(|s| s.lookup(path));
        self.push(Severity::Warning, pos, path, message.into(), fix.into());
    }

    /// Records an error at an explicit position (decoder problems, where the
    /// position is that of a key or value that never reaches the model).
    pub fn error_at(
        &mut self,
        pos: Option<Pos>,
        path: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Severity::Error, pos, path, message.into(), fix.into());
    }

    fn push(
        &mut self,
        severity: Severity,
        pos: Option<Pos>,
        path: &str,
        message: String,
        fix: String,
    ) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.to_owned(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            path: path.to_owned(),
            message,
            fix,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// How many errors are reported so far: a decoder compares counts to
    /// tell whether one mapping had problems of its own (a misspelt key)
    /// before it checks how that mapping's fields fit together.
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn finish(self) -> Diagnostics {
        let mut all = Diagnostics(self.items);
        all.sort();
        all
    }
}
