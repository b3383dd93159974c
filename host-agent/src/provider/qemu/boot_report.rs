//! What a VM's boot said, for the error `up` gives when a node never
//! enrolled: cloud-init's result read from the VM (through the guest agent:
//! `cloud-init status --long` and the node agent unit's state), else what
//! cloud-init printed on the serial console (its final line, module
//! failures, tracebacks), which every image writes.

use super::guest;
use std::path::Path;
use std::time::Duration;

/// Run in the guest: cloud-init's result (once it has one: a node refused
/// early is caught while cloud-init's last modules still run, so the script
/// first waits for it, bounded by [`CLOUD_INIT_WAIT_SECS`]), the agent
/// unit's state, and the agent's own last words. The unit's status lines alone are not enough: an
/// agent restarted every 2 s (e.g. after an enrolment refusal) fills them
/// with systemd's restart messages, so the agent's output is read from the
/// journal by `_SYSTEMD_UNIT` (what the unit's processes wrote, not what
/// systemd wrote about it).
const GUEST_SCRIPT: &str = "timeout 60 cloud-init status --wait >/dev/null 2>&1; \
    cloud-init status --long 2>&1; \
    systemctl --no-pager --lines=0 status hostctl-node-agent.service 2>&1; \
    echo 'last output of the node agent:'; \
    journalctl --no-pager -o cat -n 6 _SYSTEMD_UNIT=hostctl-node-agent.service 2>&1";

/// How long the report waits for cloud-init to finish (the `timeout` in
/// [`GUEST_SCRIPT`]).
const CLOUD_INIT_WAIT_SECS: u64 = 60;

/// Console lines that say how cloud-init fared.
fn console_lines(console: &str) -> Vec<String> {
    let interesting = |line: &str| {
        (line.contains("cloud-init") || line.contains("Cloud-init"))
            && (line.contains("finished at")
                || line.contains("Failed")
                || line.contains("failed")
                || line.contains("ERROR")
                || line.contains("WARNING"))
    };
    let mut lines: Vec<String> = console
        .lines()
        .map(|l| strip_terminal_codes(l).trim().to_owned())
        .filter(|l| interesting(l))
        .collect();
    let keep_from = lines.len().saturating_sub(8);
    lines.drain(..keep_from);
    lines
}

/// Removes ANSI colour sequences (systemd's on the console, the agent's
/// log colours in its journal) and other control characters.
fn strip_terminal_codes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// The report: the guest's own words when its agent answers, else the
/// console's.
pub async fn report(console: &Path, qga: &Path) -> String {
    let from_guest = guest::exec(
        qga,
        &["/bin/sh", "-c", GUEST_SCRIPT],
        Duration::from_secs(CLOUD_INIT_WAIT_SECS + 30),
    )
    .await;
    if let Ok(out) = from_guest {
        let said = format!("{}\n{}", out.stdout.trim_end(), out.stderr.trim_end());
        let said: Vec<String> = said.trim().lines().map(strip_terminal_codes).collect();
        return format!("read from the VM:\n{}", indent(&said.join("\n")));
    }
    let text = std::fs::read(console)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines = console_lines(&text);
    if lines.is_empty() {
        format!(
            "the serial console ({}) shows no cloud-init result yet",
            console.display()
        )
    } else {
        format!(
            "cloud-init on the serial console ({}):\n{}",
            console.display(),
            indent(&lines.join("\n"))
        )
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_guest_script_is_valid_shell() {
        use crate::exec::{Cmd, RealRunner, Runner as _};
        assert!(GUEST_SCRIPT.starts_with(&format!("timeout {CLOUD_INIT_WAIT_SECS} ")));
        let check = Cmd::new("sh").args(["-n", "-c", GUEST_SCRIPT]);
        if let Err(e) = RealRunner.run(&check).await {
            panic!("{e}");
        }
    }

    #[test]
    fn keeps_cloud_init_failures_and_its_final_line_without_colour_codes() {
        let console = "[    1.0] kernel: hello\n\
            [   13.27] cloud-init[254]: 2026-11-24 - util.py[WARNING]: failed stage init-local\n\
            \u{1b}[0;1;31mFAILED\u{1b}[0m] Failed to start cloud-init-local.service\n\
            [  150.00] cloud-init[400]: Cloud-init v. 22.4.2 finished at Tue. Datasource DataSourceNoCloud.  Up 150.0 seconds\n";
        let lines = console_lines(console);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].contains("failed stage init-local"));
        assert!(lines[1].starts_with("FAILED] Failed to start cloud-init-local"));
        assert!(lines[2].contains("finished at"));
        assert_eq!(
            strip_terminal_codes("\u{1b}[0;32m  OK  \u{1b}[0m] Started"),
            "  OK  ] Started"
        );
    }
}
