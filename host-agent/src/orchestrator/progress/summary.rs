//! The summary `up` ends with: every step's outcome and time, as data
//! (`-o json|yaml`) and as tables, the host's steps, the nodes', then the
//! clusters', each with only the columns that ran, narrow enough for an
//! 80-column terminal.

use crate::orchestrator::StepKind;
use crate::orchestrator::executor::RunReport;
use crate::orchestrator::step_id::Subject;
use crate::output::Table;
use serde::Serialize;
use std::collections::BTreeMap;

/// One row of the summary: a subject and its steps in graph order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRow {
    pub subject: String,
    /// Which table the row goes in.
    #[serde(skip)]
    pub table: Group,
    pub steps: Vec<SummaryStep>,
}

/// The summary's tables, in the order they are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Host,
    Node,
    Cluster,
}

impl Group {
    fn of(subject: &Subject) -> Group {
        match subject {
            Subject::Host => Group::Host,
            Subject::Node(_) => Group::Node,
            Subject::Cluster(_) | Subject::Addon(_) => Group::Cluster,
        }
    }

    /// The first column's header.
    fn header(self) -> &'static str {
        match self {
            Group::Host => "HOST",
            Group::Node => "NODE",
            Group::Cluster => "CLUSTER",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryStep {
    /// Serialised as the kind's name (`launch`).
    pub step: StepKind,
    pub outcome: String,
    pub seconds: f64,
    /// `kind/subject: cause`, as `up-state.json` records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The report grouped by subject (in name order), each subject's steps in
/// graph order, for `-o json|yaml` and the tables.
pub fn summary(report: &RunReport) -> Vec<SummaryRow> {
    let mut rows: BTreeMap<(&str, Group), Vec<SummaryStep>> = BTreeMap::new();
    for r in report.results.values() {
        let subject = r.id.subject();
        rows.entry((subject.name(), Group::of(subject)))
            .or_default()
            .push(SummaryStep {
                step: r.id.kind(),
                outcome: r.outcome.label().to_owned(),
                seconds: r.elapsed.as_secs_f64(),
                error: r.failure(),
            });
    }
    rows.into_iter()
        .map(|((subject, table), mut steps)| {
            steps.sort_by_key(|s| s.step);
            SummaryRow {
                subject: subject.to_owned(),
                table,
                steps,
            }
        })
        .collect()
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

/// The table of `group`'s rows, with a column per kind that any of them
/// has, in graph order; `None` when no row.
fn table(group: Group, rows: &[SummaryRow]) -> Option<Table> {
    let rows: Vec<&SummaryRow> = rows.iter().filter(|r| r.table == group).collect();
    if rows.is_empty() {
        return None;
    }
    let first = group.header();
    let used: Vec<StepKind> = StepKind::ALL
        .iter()
        .copied()
        .filter(|k| rows.iter().any(|r| r.steps.iter().any(|s| s.step == *k)))
        .collect();
    let mut headers = vec![first.to_owned()];
    headers.extend(used.iter().map(|k| k.header().to_owned()));
    let mut t = Table::new(headers);
    for row in &rows {
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

/// The host table, the node table, then the cluster table, separated by
/// blank lines.
pub fn summary_tables(rows: &[SummaryRow]) -> String {
    [Group::Host, Group::Node, Group::Cluster]
        .into_iter()
        .filter_map(|group| table(group, rows))
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use StepKind as K;

    fn row(subject: &str, table: Group, steps: &[(StepKind, &str)]) -> SummaryRow {
        SummaryRow {
            subject: subject.into(),
            table,
            steps: steps
                .iter()
                .map(|(step, outcome)| SummaryStep {
                    step: *step,
                    outcome: (*outcome).into(),
                    seconds: 12.34,
                    error: None,
                })
                .collect(),
        }
    }

    #[test]
    fn nodes_and_clusters_get_their_own_tables_with_only_the_columns_that_ran() {
        let rows = vec![
            row(
                "app1-worker-0",
                Group::Node,
                &[
                    (K::Render, "done"),
                    (K::Launch, "already done"),
                    (K::Enrol, "done"),
                    (K::Prerequisites, "done"),
                    (K::KubeadmJoin, "interrupted"),
                ],
            ),
            row(
                "app1-cp",
                Group::Node,
                &[
                    (K::Render, "done"),
                    (K::Launch, "done"),
                    (K::Enrol, "done"),
                    (K::Prerequisites, "failed"),
                ],
            ),
            row(
                "app1",
                Group::Cluster,
                &[
                    (K::KubeadmInit, "done"),
                    (K::Kubeconfig, "done"),
                    (K::Cni, "not started"),
                    (K::NodesReady, "blocked"),
                    (K::Addons, "blocked"),
                ],
            ),
        ];
        let text = summary_tables(&rows);
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
        let nodes_only = summary_tables(&rows[..2]);
        assert!(!nodes_only.contains("CLUSTER"), "{nodes_only}");
        let json = serde_json::to_value(&rows[2]).unwrap();
        assert_eq!(json["steps"][0]["step"], "kubeadm-init");
        assert!(json.get("table").is_none(), "{json}");
    }

    #[test]
    fn the_hosts_steps_get_a_table_of_their_own_first() {
        let rows = vec![
            row("app1-cp", Group::Node, &[(K::Prerequisites, "done")]),
            row("host", Group::Host, &[(K::Mirrors, "failed")]),
        ];
        let text = summary_tables(&rows);
        let (host, nodes) = text.split_once("\n\n").expect("two tables");
        assert!(
            host.starts_with("HOST") && host.contains("MIRRORS"),
            "{text}"
        );
        assert!(host.contains("failed"), "{text}");
        assert!(
            nodes.starts_with("NODE") && !nodes.contains("MIRRORS"),
            "{text}"
        );
    }
}
