//! Reading kubeadm's output: phase markers become progress, the last lines
//! are kept for error reports, and a failed run is classified so the caller
//! knows whether a retry can help and whether `kubeadm reset -f` must come
//! first.
//!
//! kubeadm ≥ 1.34 exits 1 for every failure
//! (`cmd/kubeadm/app/util/errors/errors.go`: `HandleError` always uses
//! `defaultErrorExitCode = 1` and prints `error: <msg>` on stderr); older
//! releases exited 2 for preflight and 3 for validation
//! (`cmd/kubeadm/app/util/error.go`: `PreFlightExitCode`,
//! `ValidationExitCode`, the codes CABPK's retry script maps). So the class
//! comes from the text, with 2 and 3 still honoured. The texts matched:
//!
//! - every phase failure is wrapped as `error execution phase <phase>: …`
//!   (`cmd/kubeadm/app/cmd/phases/workflow/runner.go`, `Run`);
//! - preflight check failures read `[preflight] Some fatal errors occurred:`
//!   followed by `[ERROR <Check>]: …` lines
//!   (`cmd/kubeadm/app/preflight/checks.go`, `Error.Error`);
//! - join's discovery runs inside its `preflight` phase and fails with
//!   `couldn't validate the identity of the API Server`, `could not find a
//!   JWS signature in the cluster-info ConfigMap`, or a dial error towards
//!   the API server (`cmd/kubeadm/app/discovery/token/token.go`);
//! - configuration errors happen before the phase runner starts, so they
//!   carry no `error execution phase` and name a field (`Invalid value`,
//!   `unknown field`, `strict decoding error`, `no kind`) or say
//!   `validating`/`unable to decode`.

use std::collections::VecDeque;

/// The phase markers of `kubeadm init` in the order they print, used to
/// estimate progress. Sub-check markers (`kubelet-check`,
/// `control-plane-check`, `apiclient`, `kubelet`) sit where they appear.
pub const INIT_PHASES: &[&str] = &[
    "init",
    "preflight",
    "certs",
    "kubeconfig",
    "etcd",
    "control-plane",
    "kubelet-start",
    "wait-control-plane",
    "kubelet-check",
    "control-plane-check",
    "apiclient",
    "upload-config",
    "kubelet",
    "upload-certs",
    "mark-control-plane",
    "bootstrap-token",
    "kubelet-finalize",
    "addons",
];

/// The phase markers of `kubeadm join` (worker) in print order.
pub const JOIN_PHASES: &[&str] = &[
    "preflight",
    "discovery",
    "kubelet-start",
    "kubelet-check",
    "patches",
];

/// Lines of output kept for an error's detail.
pub const TAIL_LINES: usize = 60;

/// The phase a line announces: `[certs] Generating …` → `certs`.
pub fn phase_of(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (name, _) = rest.split_once(']')?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '/');
    valid.then_some(name)
}

/// Turns phase markers into a percentage that never goes backwards.
#[derive(Debug, Clone)]
pub struct PhaseTracker {
    order: &'static [&'static str],
    reached: usize,
}

impl PhaseTracker {
    /// A tracker for the phases of one command.
    pub fn new(order: &'static [&'static str]) -> Self {
        PhaseTracker { order, reached: 0 }
    }

    /// The estimate after `phase` was seen (unknown phases keep the last).
    pub fn percent(&mut self, phase: &str) -> f32 {
        if let Some(i) = self.order.iter().position(|p| *p == phase) {
            self.reached = self.reached.max(i + 1);
        }
        // 100 is left for the final event.
        (self.reached as f32 * 99.0 / self.order.len().max(1) as f32).min(99.0)
    }
}

/// The last lines of a command's output.
#[derive(Debug, Clone, Default)]
pub struct Tail {
    lines: VecDeque<String>,
    /// The whole error message kubeadm printed, which can be older than the
    /// tail (`error execution phase …` and the lines after it).
    error: Vec<String>,
    in_error: bool,
}

impl Tail {
    /// Keeps `line`, dropping the oldest beyond [`TAIL_LINES`].
    pub fn push(&mut self, line: &str) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_owned());
        if error_line(line).is_some() {
            self.in_error = true;
            self.error.clear();
        }
        if self.in_error && self.error.len() < TAIL_LINES {
            self.error.push(line.to_owned());
        }
    }

    /// The kept lines, joined.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every line seen since kubeadm started printing its error, or all
    /// kept lines when it printed no `error execution phase`.
    fn error_text(&self) -> String {
        if self.error.is_empty() {
            self.text()
        } else {
            self.error.join("\n")
        }
    }
}

/// `error execution phase <phase>: …` (with or without the `error: ` prefix
/// kubeadm ≥ 1.34 adds) → the phase and the message after it.
fn error_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let rest = line.strip_prefix("error execution phase ")?;
    rest.split_once(": ")
}

/// What kind of failure a kubeadm run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureClass {
    /// A preflight check failed: the node is not in a state kubeadm accepts
    /// (port in use, swap on, old files). Retrying changes nothing.
    Preflight,
    /// The configuration was refused before any phase ran: a rendering
    /// bug on the host. Never retried.
    Validation,
    /// The API server or token was not usable yet (join's discovery):
    /// nothing was changed on the node, so a retry needs no reset.
    Discovery,
    /// A phase that changes the node failed (`phase` as kubeadm names it,
    /// e.g. `wait-control-plane`, `kubelet-start`); `reset -f` then retry.
    Action { phase: String },
}

impl FailureClass {
    /// A short name for messages and traces.
    pub fn name(&self) -> String {
        match self {
            FailureClass::Preflight => "preflight".into(),
            FailureClass::Validation => "validation".into(),
            FailureClass::Discovery => "discovery".into(),
            FailureClass::Action { phase } => phase.clone(),
        }
    }
}

const DISCOVERY_MARKERS: &[&str] = &[
    "couldn't validate the identity of the API Server",
    "could not find a JWS signature in the cluster-info ConfigMap",
    "failed to request the cluster-info ConfigMap",
    "cluster-info",
    "connect: connection refused",
    "i/o timeout",
    "no route to host",
];

const VALIDATION_MARKERS: &[&str] = &[
    "Invalid value",
    "unknown field",
    "strict decoding error",
    "no kind",
    "validating",
    "unable to decode",
    "Required value",
    "Unsupported value",
];

/// Classifies a failed run from its exit status and output.
pub fn classify(status: i32, tail: &Tail) -> FailureClass {
    let text = tail.error_text();
    let phase = tail
        .error
        .first()
        .and_then(|l| error_line(l))
        .map(|(p, _)| p);
    match (status, phase) {
        (2, _) => FailureClass::Preflight,
        (3, _) => FailureClass::Validation,
        (_, Some("preflight")) => {
            if text.contains("Some fatal errors occurred") || text.contains("[ERROR ") {
                FailureClass::Preflight
            } else if DISCOVERY_MARKERS.iter().any(|m| text.contains(m)) {
                FailureClass::Discovery
            } else {
                FailureClass::Preflight
            }
        }
        (_, Some(phase)) => FailureClass::Action {
            phase: phase.to_owned(),
        },
        (_, None) if VALIDATION_MARKERS.iter().any(|m| text.contains(m)) => {
            FailureClass::Validation
        }
        (_, None) => FailureClass::Action {
            phase: "unknown".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(lines: &[&str]) -> Tail {
        let mut t = Tail::default();
        for l in lines {
            t.push(l);
        }
        t
    }

    #[test]
    fn phase_markers() {
        assert_eq!(phase_of("[certs] Generating \"apiserver\""), Some("certs"));
        assert_eq!(phase_of("[kubelet-check] Waiting"), Some("kubelet-check"));
        assert_eq!(phase_of("\t[ERROR Port-6443]: Port 6443 is in use"), None);
        assert_eq!(phase_of("[ERROR Port-6443]: Port 6443 is in use"), None);
        assert_eq!(phase_of("Your Kubernetes control-plane"), None);
    }

    #[test]
    fn percent_never_goes_back() {
        let mut t = PhaseTracker::new(INIT_PHASES);
        let a = t.percent("certs");
        let b = t.percent("preflight");
        let c = t.percent("addons");
        assert!(a > 0.0 && b == a && c > a && c <= 99.0, "{a} {b} {c}");
    }

    #[test]
    fn classes() {
        let preflight = tail(&[
            "[preflight] Running pre-flight checks",
            "error: error execution phase preflight: [preflight] Some fatal errors occurred:",
            "\t[ERROR Port-6443]: Port 6443 is in use",
        ]);
        assert_eq!(classify(1, &preflight), FailureClass::Preflight);
        let discovery = tail(&[
            "[preflight] Running pre-flight checks",
            "error: error execution phase preflight: couldn't validate the identity of the API Server: Get \"https://10.0.0.1:6443/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s\": dial tcp 10.0.0.1:6443: connect: connection refused",
        ]);
        assert_eq!(classify(1, &discovery), FailureClass::Discovery);
        let action = tail(&[
            "[kubelet-start] Starting the kubelet",
            "error execution phase kubelet-start: timed out waiting for the condition",
            "To see the stack trace of this error execute with --v=5 or higher",
        ]);
        assert_eq!(
            classify(1, &action),
            FailureClass::Action {
                phase: "kubelet-start".into()
            }
        );
        let validation = tail(&["error: networking.podSubnet: Invalid value: \"x\""]);
        assert_eq!(classify(1, &validation), FailureClass::Validation);
        assert_eq!(classify(3, &tail(&[])), FailureClass::Validation);
        assert_eq!(classify(2, &tail(&[])), FailureClass::Preflight);
    }

    #[test]
    fn the_error_survives_a_long_tail() {
        let mut t = tail(&["error execution phase addons/coredns: boom"]);
        for i in 0..(TAIL_LINES * 2) {
            t.push(&format!("stack line {i}"));
        }
        assert_eq!(
            classify(1, &t),
            FailureClass::Action {
                phase: "addons/coredns".into()
            }
        );
    }
}
