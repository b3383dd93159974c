//! What the tests stand up around the server: hostctl's lab root (an
//! rcgen CA implementing [`RootSigner`]), each test cluster's
//! service-account key (signing ES256 tokens as kube-apiserver would), and
//! the [`Fixture`] tying a server, a key directory and a config together.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;
use vault::{BootstrapConfig, ClusterAuth, PkiConfig, RootSigner, VaultClient, WaitPolicy};

use test_support::openbao::{Bao, bao_or_skip};

/// The issuer every test cluster's tokens carry (kubeadm's default).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// hostctl's lab root, as a test keeps it.
pub struct LabRoot {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl LabRoot {
    pub fn new(cn: &str) -> LabRoot {
        let key = KeyPair::generate().expect("root key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).expect("root").pem();
        LabRoot {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }
}

impl RootSigner for LabRoot {
    fn root_pem(&self) -> Result<String, String> {
        Ok(self.pem.clone())
    }

    fn sign_intermediate(&self, csr_pem: &str) -> Result<String, String> {
        let mut csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| e.to_string())?;
        csr.params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        csr.params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        csr.signed_by(&self.issuer)
            .map(|c| c.pem())
            .map_err(|e| e.to_string())
    }
}

/// A test cluster's service-account key pair (`sa.key` / `sa.pub`).
pub struct ClusterKey {
    pub name: String,
    pkcs8: Vec<u8>,
    pub public_pem: String,
}

impl ClusterKey {
    pub fn new(name: &str) -> ClusterKey {
        let key = KeyPair::generate().expect("ECDSA P-256 key");
        ClusterKey {
            name: name.to_owned(),
            pkcs8: key.serialize_der(),
            public_pem: key.public_key_pem(),
        }
    }

    pub fn auth(&self) -> ClusterAuth {
        ClusterAuth {
            name: self.name.clone(),
            sa_public_key_pem: self.public_pem.clone(),
            issuer: ISSUER.to_owned(),
        }
    }

    /// A service-account token for `namespace:sa` with audience `vault`,
    /// signed ES256 as kube-apiserver signs projected tokens.
    pub fn token(&self, namespace: &str, sa: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let header = json!({"alg": "ES256", "typ": "JWT"});
        let claims = json!({
            "iss": ISSUER,
            "sub": format!("system:serviceaccount:{namespace}:{sa}"),
            "aud": ["vault"],
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8, &rng)
            .expect("pkcs8");
        let sig = key.sign(&rng, signing_input.as_bytes()).expect("sign");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// One test's server, key directory, clusters, lab root and config.
pub struct Fixture {
    pub bao: Bao,
    pub clusters: Vec<ClusterKey>,
    pub root: LabRoot,
    pub config: BootstrapConfig,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    /// `None` when there is no `bao` (skipped).
    pub fn start(test: &str, clusters: &[&str]) -> Option<Fixture> {
        let binary = bao_or_skip(test)?;
        let tmp = tempfile::tempdir().expect("tempdir");
        let bao = Bao::start(&binary, tmp.path()).expect("start bao");
        let clusters: Vec<ClusterKey> = clusters.iter().map(|c| ClusterKey::new(c)).collect();
        let config = BootstrapConfig {
            key_dir: tmp.path().join("home/pki/vault"),
            clusters: clusters.iter().map(ClusterKey::auth).collect(),
            pki: PkiConfig::default(),
            wait: WaitPolicy {
                deadline: Duration::from_secs(60),
                interval: Duration::from_millis(100),
            },
        };
        Some(Fixture {
            bao,
            clusters,
            root: LabRoot::new("hostctl test lab root"),
            config,
            _tmp: tmp,
        })
    }

    pub fn client(&self) -> VaultClient {
        VaultClient::new(&self.bao.address(), &self.bao.ca_pem).expect("client")
    }

    pub fn key_dir(&self) -> PathBuf {
        self.config.key_dir.clone()
    }

    /// Runs the bootstrap; panics with the server's log on failure.
    pub async fn bootstrap(&self) -> vault::Report {
        match self.try_bootstrap().await {
            Ok(r) => r,
            Err(e) => panic!("bootstrap: {e}\n--- bao.log ---\n{}", self.bao.log()),
        }
    }

    pub async fn try_bootstrap(&self) -> Result<vault::Report, vault::VaultError> {
        vault::bootstrap(&self.client(), &self.config, &self.root).await
    }

    /// A client with hostctl's admin token from the key directory.
    pub fn admin(&self) -> VaultClient {
        let token =
            std::fs::read_to_string(self.key_dir().join(vault::ADMIN_TOKEN)).expect("admin token");
        self.client().with_token(vault::Secret::new(token.trim()))
    }
}
