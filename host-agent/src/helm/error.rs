//! Helm failures, classified from helm's own `Error:` line so `up` can say
//! what to do (install helm, `helm repo update`, check the API server, look
//! at the pods) instead of dumping helm's output.

/// A failed helm call.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// `program` could not be run at all (the source says how).
    #[error(
        "helm is not installed ({source}); install Helm 3 (https://helm.sh/docs/intro/install/) or set $HOSTCTL_HELM"
    )]
    NotInstalled {
        program: String,
        #[source]
        source: crate::exec::ExecError,
    },
    #[error(
        "helm {command}: chart {chart} version {version} not found: {message} (run `helm repo update`, or check the pin in cluster_config/versions.rs)"
    )]
    ChartNotFound {
        command: String,
        chart: String,
        version: String,
        message: String,
    },
    #[error("helm {command}: the Kubernetes API server is unreachable: {message}")]
    Unreachable { command: String, message: String },
    #[error(
        "helm {command}: timed out waiting for the release's workloads: {message} (look at `kubectl -n kube-system get pods`)"
    )]
    TimedOut { command: String, message: String },
    #[error("helm {command} failed (exit {code}): {message}")]
    Failed {
        command: String,
        code: i32,
        message: String,
    },
    /// The release's chart is not available (see the source).
    #[error("the chart of release {release}")]
    Chart {
        release: String,
        #[source]
        source: Box<crate::charts::ChartError>,
    },
    #[error("cannot render the values of release {release}: {reason}")]
    Values { release: String, reason: String },
    #[error("cannot write helm's temporary {what} file: {source}")]
    TempFile {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Classifies a non-zero exit of `helm <command>` from its stderr. `chart`
/// and `version` are what was asked for (empty when not an install).
pub fn classify(command: &str, code: i32, stderr: &str, chart: &str, version: &str) -> HelmError {
    let message = error_line(stderr);
    let command = command.to_owned();
    if message.contains("Kubernetes cluster unreachable") {
        HelmError::Unreachable { command, message }
    } else if message.contains("context deadline exceeded")
        || message.contains("timed out waiting for the condition")
    {
        HelmError::TimedOut { command, message }
    } else if message.contains("no chart version found")
        || (message.contains("chart \"") && message.contains("not found"))
    {
        HelmError::ChartNotFound {
            command,
            chart: chart.to_owned(),
            version: version.to_owned(),
            message,
        }
    } else {
        HelmError::Failed {
            command,
            code,
            message,
        }
    }
}

/// The last `Error:` line of helm's stderr (helm prints warnings first),
/// without the prefix; the whole trimmed text when there is none.
fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| stderr.trim().to_owned())
}
