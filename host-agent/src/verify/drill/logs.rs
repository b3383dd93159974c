//! The logs half of `mgmt-down`'s C2: Alloy on each app cluster buffers
//! while mgmt's Loki is away and sends afterwards. Judged from Alloy's own
//! counters (summed over its pods, [`alloy_shipping`]) taken before the
//! outage and after mgmt is back: nothing dropped, and entries sent since.

use super::env::DrillEnv;
use super::{Observation, worst};
use crate::addons::observability::alloy::ALLOY;
use crate::addons::observability::shipping::{LogsShipping, alloy_shipping};
use crate::verify::Verdict;
use std::collections::BTreeMap;

pub const PROMISE: &str =
    "the app clusters' logs are buffered while mgmt is down and sent after, none dropped";

/// Each app cluster's Alloy counters, where `up` installed Alloy.
pub async fn figures(env: &DrillEnv<'_>) -> BTreeMap<String, Result<LogsShipping, String>> {
    let mut out = BTreeMap::new();
    for (name, client) in env.clusters(true).await {
        if !env.state.addon_done(&name, ALLOY.name) {
            continue;
        }
        let figures = match client {
            Ok(c) => alloy_shipping(&c).await,
            Err(e) => Err(e),
        };
        out.insert(name, figures);
    }
    out
}

/// The observation from the counters before the outage and after it.
pub fn judge(
    before: &BTreeMap<String, Result<LogsShipping, String>>,
    after: &BTreeMap<String, Result<LogsShipping, String>>,
) -> Observation {
    if before.is_empty() {
        return Observation::new(
            "C2",
            PROMISE,
            Verdict::NotInstalled,
            vec!["no Alloy installed on an app cluster".into()],
        );
    }
    let mut verdict = Verdict::NotInstalled;
    let mut observed = Vec::new();
    for (name, was) in before {
        let (v, line) = match (was, after.get(name)) {
            (Ok(b), Some(Ok(a))) if a.sent_entries < b.sent_entries => (
                Verdict::CannotTell,
                "Alloy restarted during the drill (its counters went back)".to_owned(),
            ),
            (Ok(b), Some(Ok(a))) if a.dropped_entries > b.dropped_entries => (
                Verdict::Broken,
                format!("{} entries dropped", a.dropped_entries - b.dropped_entries),
            ),
            (Ok(b), Some(Ok(a))) if a.sent_entries > b.sent_entries => (
                Verdict::Holds,
                format!(
                    "{} entries sent since the outage began, none dropped",
                    a.sent_entries - b.sent_entries
                ),
            ),
            (Ok(_), Some(Ok(_))) => (
                Verdict::CannotTell,
                "nothing sent since the outage began".to_owned(),
            ),
            (Err(e), _) | (_, Some(Err(e))) => (Verdict::CannotTell, e.clone()),
            (_, None) => (Verdict::CannotTell, "Alloy did not answer".to_owned()),
        };
        verdict = worst(verdict, v);
        observed.push(format!("{name}: {line}"));
    }
    Observation::new("C2", PROMISE, verdict, observed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloy(sent: f64, dropped: f64) -> Result<LogsShipping, String> {
        Ok(LogsShipping {
            shippers: 2,
            answering: 2,
            sent_entries: sent,
            dropped_entries: dropped,
            batch_retries: 0.0,
        })
    }

    #[test]
    fn sent_since_and_none_dropped_holds_a_drop_breaks_a_reset_cannot_tell() {
        let map = |r| BTreeMap::from([("app1".to_owned(), r)]);
        let before = map(alloy(100.0, 0.0));
        let held = judge(&before, &map(alloy(160.0, 0.0)));
        assert_eq!(held.verdict, Verdict::Holds);
        assert_eq!(
            held.observed,
            ["app1: 60 entries sent since the outage began, none dropped"]
        );
        assert_eq!(
            judge(&before, &map(alloy(160.0, 3.0))).verdict,
            Verdict::Broken
        );
        assert_eq!(
            judge(&before, &map(alloy(5.0, 0.0))).verdict,
            Verdict::CannotTell
        );
        assert_eq!(
            judge(&before, &map(alloy(100.0, 0.0))).verdict,
            Verdict::CannotTell
        );
        assert_eq!(
            judge(&BTreeMap::new(), &BTreeMap::new()).verdict,
            Verdict::NotInstalled
        );
    }
}
