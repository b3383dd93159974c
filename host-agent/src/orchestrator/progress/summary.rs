//! The summary `up` ends with: every step's outcome and time, as data
//! (`-o json|yaml`) and as two tables, nodes then clusters, each with only
//! the columns that ran, narrow enough for an 80-column terminal.

use crate::orchestrator::executor::{Outcome, RunReport};
use crate::output::Table;
use serde::Serialize;
use std::collections::BTreeMap;

/// One row of the summary: a subject and its steps in graph order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRow {
    pub subject: String,
    pub steps: Vec<SummaryStep>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryStep {
    pub step: String,
    pub outcome: String,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The report grouped by subject, for `-o json|yaml` and the table.
pub fn summary(report: &RunReport, kinds: &[&str]) -> Vec<SummaryRow> {
    let mut rows: BTreeMap<String, Vec<SummaryStep>> = BTreeMap::new();
    for r in report.results.values() {
        rows.entry(r.id.subject().to_owned())
            .or_default()
            .push(SummaryStep {
                step: r.id.kind().to_owned(),
                outcome: r.outcome.label().to_owned(),
                seconds: r.elapsed.as_secs_f64(),
                error: match &r.outcome {
                    Outcome::Failed(e) => Some(e.0.clone()),
                    _ => None,
                },
            });
    }
    let rank = |k: &str| kinds.iter().position(|x| *x == k).unwrap_or(kinds.len());
    rows.into_iter()
        .map(|(subject, mut steps)| {
            steps.sort_by_key(|s| rank(&s.step));
            SummaryRow { subject, steps }
        })
        .collect()
}

/// The table header of a step kind: short, so that a node's row with every
/// column fits 80 characters.
fn header(kind: &str) -> String {
    match kind {
        "prerequisites" => "PREREQS".to_owned(),
        "kubeadm-init" => "INIT".to_owned(),
        "kubeadm-join" => "JOIN".to_owned(),
        "nodes-ready" => "READY".to_owned(),
        other => other.to_uppercase(),
    }
}

/// A step's cell: `1.2s`, `ok` (already done), or the outcome.
fn cell(step: &SummaryStep) -> String {
    match step.outcome.as_str() {
        "done" => format!("{:.1}s", step.seconds),
        "already done" => "ok".to_owned(),
        "not started" => "-".to_owned(),
        other => other.to_owned(),
    }
}

/// One table for `rows` (under `first`, `NODE` or `CLUSTER`) with a column
/// per kind that any of them has, in graph order; `None` when no row.
fn table(first: &str, rows: &[&SummaryRow], kinds: &[&str]) -> Option<Table> {
    if rows.is_empty() {
        return None;
    }
    let used: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| rows.iter().any(|r| r.steps.iter().any(|s| s.step == *k)))
        .collect();
    let mut headers = vec![first.to_owned()];
    headers.extend(used.iter().map(|k| header(k)));
    let mut t = Table::new(headers);
    for row in rows {
        let mut cells = vec![row.subject.clone()];
        for kind in &used {
            cells.push(
                row.steps
                    .iter()
                    .find(|s| s.step == *kind)
                    .map_or_else(|| "-".to_owned(), cell),
            );
        }
        t.row(cells);
    }
    Some(t)
}

/// The node table, then the cluster table (subjects that are cluster
/// names), separated by a blank line.
pub fn summary_tables(rows: &[SummaryRow], kinds: &[&str], clusters: &[&str]) -> String {
    let (cluster_rows, node_rows): (Vec<&SummaryRow>, Vec<&SummaryRow>) = rows
        .iter()
        .partition(|r| clusters.contains(&r.subject.as_str()));
    [
        table("NODE", &node_rows, kinds),
        table("CLUSTER", &cluster_rows, kinds),
    ]
    .into_iter()
    .flatten()
    .map(|t| t.to_string())
    .collect::<Vec<_>>()
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(subject: &str, steps: &[(&str, &str)]) -> SummaryRow {
        SummaryRow {
            subject: subject.into(),
            steps: steps
                .iter()
                .map(|(step, outcome)| SummaryStep {
                    step: (*step).into(),
                    outcome: (*outcome).into(),
                    seconds: 12.34,
                    error: None,
                })
                .collect(),
        }
    }

    #[test]
    fn nodes_and_clusters_get_their_own_tables_with_only_the_columns_that_ran() {
        let kinds = crate::orchestrator::steps::KINDS;
        let rows = vec![
            row(
                "app1-worker-0",
                &[
                    ("render", "done"),
                    ("launch", "already done"),
                    ("enrol", "done"),
                    ("prerequisites", "done"),
                    ("kubeadm-join", "interrupted"),
                ],
            ),
            row(
                "app1-cp",
                &[
                    ("render", "done"),
                    ("launch", "done"),
                    ("enrol", "done"),
                    ("prerequisites", "failed"),
                ],
            ),
            row(
                "app1",
                &[
                    ("kubeadm-init", "done"),
                    ("kubeconfig", "done"),
                    ("cni", "not started"),
                    ("nodes-ready", "blocked"),
                    ("addons", "blocked"),
                ],
            ),
        ];
        let text = summary_tables(&rows, kinds, &["app1"]);
        let (nodes, clusters) = text.split_once("\n\n").expect("two tables");
        assert!(nodes.starts_with("NODE"), "{text}");
        assert!(
            nodes.contains("PREREQS") && nodes.contains("JOIN"),
            "{text}"
        );
        assert!(!nodes.contains("CNI") && !nodes.contains("INIT"), "{text}");
        assert!(clusters.starts_with("CLUSTER"), "{text}");
        assert!(
            clusters.contains("INIT") && clusters.contains("READY"),
            "{text}"
        );
        assert!(!clusters.contains("LAUNCH"), "{text}");
        assert!(nodes.contains("12.3s") && nodes.contains("ok") && nodes.contains("interrupted"));
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "{} columns: {line}",
                line.chars().count()
            );
        }
        let nodes_only = summary_tables(&rows[..2], kinds, &["app1"]);
        assert!(!nodes_only.contains("CLUSTER"), "{nodes_only}");
    }
}
