//! The mesh's certificate authority, made per run, and a SPIFFE certificate per workload,
//! as istiod issues them: `spiffe://cluster.local/ns/<namespace>/sa/<serviceaccount>` as the
//! only URI SAN, short-lived, ECDSA P-256. Written as Istio mounts them
//! (`root-cert.pem`, `cert-chain.pem`, `key.pem`), the key readable by the sidecar's uid
//! only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
pub use rcgen::DnType;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

/// Istio's trust domain.
pub const TRUST_DOMAIN: &str = "cluster.local";

/// The SPIFFE identity of a workload.
pub fn spiffe_id(namespace: &str, service_account: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}")
}

/// A workload's certificate files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub root: PathBuf,
    pub chain: PathBuf,
    pub key: PathBuf,
    pub identity: String,
}

/// The mesh CA of one run.
pub struct MeshCa {
    issuer: Issuer<'static, KeyPair>,
    root_pem: String,
    dir: PathBuf,
}

impl MeshCa {
    /// A new self-signed root, written to `<dir>/root-cert.pem`.
    pub fn generate(dir: &Path) -> Result<MeshCa> {
        MeshCa::generate_named(dir, "kiosk local mesh CA")
    }

    /// A new self-signed root named `common_name` (Strimzi's cluster CA, clients CA).
    pub fn generate_named(dir: &Path, common_name: &str) -> Result<MeshCa> {
        std::fs::create_dir_all(dir)?;
        let key = KeyPair::generate().context("generating the mesh CA key")?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, TRUST_DOMAIN);
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let root = params.self_signed(&key).context("signing the mesh CA")?;
        let root_pem = root.pem();
        std::fs::write(dir.join("root-cert.pem"), &root_pem)?;
        Ok(MeshCa {
            issuer: Issuer::new(params, key),
            root_pem,
            dir: dir.to_path_buf(),
        })
    }

    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// `<dir>/root-cert.pem`.
    pub fn root_file(&self) -> PathBuf {
        self.dir.join("root-cert.pem")
    }

    /// Issue the certificate of `namespace/service_account` into `<dir>/<name>/`, the key
    /// owned by `owner` (the sidecar's uid) with mode 0600.
    pub fn issue(
        &self,
        name: &str,
        namespace: &str,
        service_account: &str,
        owner: Option<u32>,
    ) -> Result<CertFiles> {
        let identity = spiffe_id(namespace, service_account);
        let sans = vec![SanType::URI(identity.clone().try_into()?)];
        self.issue_with(name, DistinguishedName::new(), sans, identity, owner)
    }

    /// Issue a certificate with subject `CN=<common_name>` (a Strimzi `tls` user's
    /// identity: Kafka's principal `User:CN=<user>`).
    pub fn issue_user(
        &self,
        name: &str,
        common_name: &str,
        owner: Option<u32>,
    ) -> Result<CertFiles> {
        self.issue_client(name, &[(DnType::CommonName, common_name)], owner)
    }

    /// Issue a client certificate whose subject is `subject`, written most specific first
    /// as RFC 4514 prints it (`CN=verify,OU=pipeline,O=kiosk`: a MongoDB X.509 user's
    /// name); its identity is that string.
    pub fn issue_client(
        &self,
        name: &str,
        subject: &[(DnType, &str)],
        owner: Option<u32>,
    ) -> Result<CertFiles> {
        let short = |t: &DnType| match t {
            DnType::CommonName => "CN",
            DnType::OrganizationalUnitName => "OU",
            DnType::OrganizationName => "O",
            DnType::CountryName => "C",
            _ => "?",
        };
        let identity = subject
            .iter()
            .map(|(t, v)| format!("{}={v}", short(t)))
            .collect::<Vec<_>>()
            .join(",");
        // A certificate lists the least specific attribute first.
        let mut dn = DistinguishedName::new();
        for (t, v) in subject.iter().rev() {
            dn.push(t.clone(), *v);
        }
        self.issue_with(name, dn, Vec::new(), identity, owner)
    }

    /// Issue a server certificate for `dns_names` (a broker's names), with a PEM keystore
    /// beside it (`keystore.pem`: the key, then the chain), as Kafka reads one.
    pub fn issue_server(&self, name: &str, dns_names: &[String]) -> Result<CertFiles> {
        let sans = dns_names
            .iter()
            .map(|n| Ok(SanType::DnsName(n.clone().try_into()?)))
            .collect::<Result<Vec<_>>>()?;
        let common = dns_names.first().cloned().unwrap_or_default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common.as_str());
        let files = self.issue_with(name, dn, sans, common.clone(), None)?;
        let keystore =
            std::fs::read_to_string(&files.key)? + &std::fs::read_to_string(&files.chain)?;
        write_private(
            &files.key.with_file_name("keystore.pem"),
            keystore.as_bytes(),
            None,
        )?;
        Ok(files)
    }

    fn issue_with(
        &self,
        name: &str,
        dn: DistinguishedName,
        sans: Vec<SanType>,
        identity: String,
        owner: Option<u32>,
    ) -> Result<CertFiles> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("issuing the certificate of {identity}"))?;
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let files = CertFiles {
            root: dir.join("root-cert.pem"),
            chain: dir.join("cert-chain.pem"),
            key: dir.join("key.pem"),
            identity,
        };
        std::fs::write(&files.root, &self.root_pem)?;
        std::fs::write(&files.chain, cert.pem())?;
        write_private(&files.key, key.serialize_pem().as_bytes(), owner)?;
        Ok(files)
    }
}

/// A file only `owner` (or the caller) can read.
fn write_private(path: &Path, bytes: &[u8], owner: Option<u32>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    if let Some(uid) = owner {
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(uid)),
        )
        .with_context(|| format!("giving {} to uid {uid}", path.display()))?;
    }
    Ok(())
}
