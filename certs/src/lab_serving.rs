//! Whether a serving certificate the lab root issued for a host service
//! (Harbor's) still fits: it is checked every time the service is brought
//! up, so a changed host address (a new Multipass network), a new lab root
//! or a certificate near its end is re-issued before clients refuse it,
//! instead of being kept because a file exists.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::error::PkiError;
use crate::inspect::{cert_der_from_pem, is_issued_by, not_after, parse_der, sans_of};
use crate::lab::LabRoot;

/// Re-issued this long before it ends (a tenth of [`crate::LEAF_VALIDITY`]):
/// a rerun of `up` within the last month renews it.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// The verdict on a serving certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServingFit {
    /// Issued by this root for every address asked, not near its end.
    Fits,
    /// Why it must be issued again (for the user's line).
    Reissue(String),
}

impl LabRoot {
    /// [`serving_fit`] against this root.
    pub fn serving_fit(&self, cert_pem: &str, ips: &[IpAddr], now: SystemTime) -> ServingFit {
        serving_fit(self.cert_pem(), cert_pem, ips, now)
    }
}

/// Whether `cert_pem` is a serving certificate of the root `root_pem` for
/// every address in `ips`, valid past `now` + [`RENEW_BEFORE`] (only the
/// root's certificate is needed: `status` asks without loading its key).
/// A file that is not a certificate is a reason to re-issue, not an error:
/// what is there is hostctl's own output, replaced as a whole.
pub fn serving_fit(root_pem: &str, cert_pem: &str, ips: &[IpAddr], now: SystemTime) -> ServingFit {
    match check_serving(root_pem, cert_pem, ips, now) {
        Ok(fit) => fit,
        Err(e) => ServingFit::Reissue(format!("the certificate cannot be read ({e})")),
    }
}

fn check_serving(
    root_pem: &str,
    cert_pem: &str,
    ips: &[IpAddr],
    now: SystemTime,
) -> Result<ServingFit, PkiError> {
    let der = cert_der_from_pem(cert_pem)?;
    let cert = parse_der(&der)?;
    let root_der = cert_der_from_pem(root_pem)?;
    let root = parse_der(&root_der)?;
    if !is_issued_by(&cert, &root) {
        return Ok(ServingFit::Reissue(
            "it was not issued by this home's lab root".into(),
        ));
    }
    let (has, _) = sans_of(&der)?;
    if let Some(missing) = ips.iter().find(|ip| !has.contains(ip)) {
        let had: Vec<String> = has.iter().map(ToString::to_string).collect();
        return Ok(ServingFit::Reissue(format!(
            "the host's address is now {missing} (the certificate has {})",
            if had.is_empty() {
                "no address".to_owned()
            } else {
                had.join(", ")
            }
        )));
    }
    let ends = not_after(&cert);
    if ends <= now + RENEW_BEFORE {
        return Ok(ServingFit::Reissue(format!(
            "it ends {} (renewed {} days before)",
            crate::inspect::rfc3339(
                ends.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            ),
            RENEW_BEFORE.as_secs() / 86_400
        )));
    }
    Ok(ServingFit::Fits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pki, PkiSpec};

    fn lab(home: &std::path::Path) -> Pki {
        Pki::open_or_init(
            home,
            &PkiSpec {
                clusters: vec!["mgmt".into()],
                host_sans: vec!["127.0.0.1".into()],
            },
        )
        .expect("pki")
    }

    #[test]
    fn a_certificate_for_the_address_from_this_root_fits_until_its_last_month() {
        let home = tempfile::tempdir().expect("tempdir");
        let pki = lab(home.path());
        let root = pki.lab_root().expect("lab root");
        let old: IpAddr = "192.168.64.1".parse().expect("ip");
        let new: IpAddr = "192.168.252.1".parse().expect("ip");
        let pair = root.issue_server("harbor", &[old], &[]).expect("issue");
        let now = SystemTime::now();
        assert_eq!(
            root.serving_fit(&pair.cert_pem, &[old], now),
            ServingFit::Fits
        );

        let ServingFit::Reissue(why) = root.serving_fit(&pair.cert_pem, &[new], now) else {
            panic!("a certificate without the new address fits");
        };
        assert!(
            why.contains("192.168.252.1") && why.contains("192.168.64.1"),
            "{why}"
        );

        let late = now + crate::LEAF_VALIDITY - Duration::from_secs(86_400);
        let ServingFit::Reissue(why) = root.serving_fit(&pair.cert_pem, &[old], late) else {
            panic!("a certificate in its last day fits");
        };
        assert!(why.contains("renewed 30 days before"), "{why}");
    }

    #[test]
    fn a_certificate_from_another_root_or_not_a_certificate_is_reissued() {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let (pa, pb) = (lab(a.path()), lab(b.path()));
        let ip: IpAddr = "192.168.64.1".parse().expect("ip");
        let other = pb
            .lab_root()
            .expect("root")
            .issue_server("harbor", &[ip], &[])
            .expect("issue");
        let root = pa.lab_root().expect("root");
        let now = SystemTime::now();
        let ServingFit::Reissue(why) = root.serving_fit(&other.cert_pem, &[ip], now) else {
            panic!("another root's certificate fits");
        };
        assert!(why.contains("not issued by this home's lab root"), "{why}");
        let ServingFit::Reissue(why) = root.serving_fit("garbage", &[ip], now) else {
            panic!("garbage fits");
        };
        assert!(why.contains("cannot be read"), "{why}");
    }
}
