//! `kiosk issuer`: a small OAuth 2.0 token issuer, the identity provider the ingress
//! gateway's `RequestAuthentication` trusts.
//!
//! - `POST /token`: the client credentials grant (RFC 6749 §4.4), the client authenticated
//!   with HTTP Basic or form parameters (§2.3.1); the answer is `{"access_token", "token_type":
//!   "Bearer", "expires_in"}` (§5.1) or an error object (§5.2);
//! - `GET /.well-known/jwks.json`: the public key as a JSON Web Key Set (RFC 7517), the key
//!   id its RFC 7638 thumbprint;
//! - `GET /.well-known/openid-configuration`: the discovery document (issuer, jwks_uri,
//!   token_endpoint).
//!
//! Access tokens are JWTs (RFC 7519) signed ES256 (ECDSA P-256, RFC 7518 §3.4) with the
//! claims `iss`, `sub` (the client id), `aud`, `iat`, `nbf`, `exp`, `jti` and `client_id`
//! (RFC 9068). Clients and their secrets are read from a directory laid out as a mounted
//! Kubernetes Secret: one file per client id holding its secret, read at each request. A
//! token or a secret never reaches a log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The JWS algorithm of every token.
pub const ALGORITHM: &str = "ES256";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// The issuer identifier: the `iss` claim, and the base URL of the discovery
    /// document (what a RequestAuthentication's `issuer` names).
    #[arg(long)]
    pub issuer: String,
    /// The audience written into every token (`aud`).
    #[arg(long)]
    pub audience: String,
    /// The clients: a directory laid out as a mounted Secret, one file per client id
    /// holding that client's secret.
    #[arg(long, value_name = "DIR")]
    pub clients: PathBuf,
    /// The signing key (PKCS#8 PEM, ECDSA P-256). Without it, a key is made at start (a
    /// restart then changes the JWKS).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Lifetime of an access token, in seconds.
    #[arg(long, default_value_t = 300)]
    pub token_lifetime: u64,
}

/// An ES256 signing key with its key id.
pub struct SigningKey {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    kid: String,
    encoding: jsonwebtoken::EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A new P-256 key.
    pub fn generate() -> Result<SigningKey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("generating a P-256 key"))?;
        SigningKey::from_pkcs8(pkcs8.as_ref())
    }

    /// A key from its PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|e| anyhow::anyhow!("not a PKCS#8 ECDSA P-256 key: {e}"))?;
        let public = pair.public_key().as_ref().to_vec();
        let mut key = SigningKey {
            pkcs8: der.to_vec(),
            public,
            kid: String::new(),
            encoding: jsonwebtoken::EncodingKey::from_ec_der(der),
        };
        key.kid = key.thumbprint();
        Ok(key)
    }

    /// A key from PEM: PKCS#8 (`-----BEGIN PRIVATE KEY-----`) or SEC1 (`-----BEGIN EC
    /// PRIVATE KEY-----`, what Helm's `genPrivateKey "ecdsa"` and OpenSSL's `ecparam -genkey`
    /// write), P-256.
    pub fn from_pem(pem: &str) -> Result<SigningKey> {
        let block = |label: &str| -> Option<String> {
            let begin = format!("-----BEGIN {label}-----");
            let body: String = pem
                .lines()
                .map(str::trim)
                .skip_while(|l| *l != begin)
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .collect();
            (!body.is_empty()).then_some(body)
        };
        let decode = |body: String| {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .context("the PEM body is not base64")
        };
        if let Some(body) = block("PRIVATE KEY") {
            return SigningKey::from_pkcs8(&decode(body)?);
        }
        if let Some(body) = block("EC PRIVATE KEY") {
            return SigningKey::from_pkcs8(&pkcs8_of_sec1(&decode(body)?));
        }
        bail!("expected a PEM block `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1)")
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.pkcs8);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key's coordinates, base64url (the uncompressed point is 0x04 || x || y).
    fn coordinates(&self) -> (String, String) {
        (b64url(&self.public[1..33]), b64url(&self.public[33..65]))
    }

    /// RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace.
    fn thumbprint(&self) -> String {
        let (x, y) = self.coordinates();
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        b64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// The public key as a JWK (RFC 7517, RFC 7518 §6.2).
    pub fn jwk(&self) -> Value {
        let (x, y) = self.coordinates();
        json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": self.kid, "use": "sig", "alg": ALGORITHM })
    }

    /// The JWK Set with this key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    /// Sign `claims` as a compact JWS with this key's id in the header.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).context("signing a token")
    }

    /// Sign with this key but name another key id (a token the verifier must refuse: its
    /// signature does not verify under the key that id names).
    pub fn sign_as(&self, kid: &str, claims: &Claims) -> Result<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).context("signing a token")
    }
}

/// A SEC1 `ECPrivateKey` (RFC 5915) of P-256 wrapped as PKCS#8 `PrivateKeyInfo` (RFC 5208):
/// version 0, algorithm id-ecPublicKey with the prime256v1 parameters, the SEC1 DER as the
/// private key octets.
fn pkcs8_of_sec1(sec1: &[u8]) -> Vec<u8> {
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else if n < 0x100 {
            out.extend([0x81, n as u8]);
        } else {
            out.extend([0x82, (n >> 8) as u8, n as u8]);
        }
        out.extend_from_slice(content);
        out
    }
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let algorithm = der(0x30, &[EC_PUBLIC_KEY, PRIME256V1].concat());
    let body = [&[0x02, 0x01, 0x00][..], &algorithm, &der(0x04, sec1)].concat();
    der(0x30, &body)
}

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
    pub client_id: String,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Claims {
    /// The claims of a token for `client`, valid for `lifetime` from now.
    pub fn new(issuer: &str, audience: &str, client: &str, lifetime: Duration) -> Claims {
        let now = now();
        let mut id = [0u8; 16];
        let _ = SystemRandom::new().fill(&mut id);
        Claims {
            iss: issuer.to_string(),
            sub: client.to_string(),
            aud: audience.to_string(),
            iat: now,
            nbf: now,
            exp: now + lifetime.as_secs(),
            jti: b64url(&id),
            client_id: client.to_string(),
        }
    }
}

/// A client id as a file name of a mounted Secret: no path, no hidden file.
fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id.len() <= 253
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether `secret` is `client`'s, read from the clients directory (their SHA-256 digests
/// compared: the time taken tells nothing about the secret).
fn authenticate(dir: &Path, client: &str, secret: &str) -> bool {
    if !valid_client_id(client) {
        return false;
    }
    let Ok(expected) = std::fs::read_to_string(dir.join(client)) else {
        return false;
    };
    let expected = expected.trim();
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    !expected.is_empty() && digest(expected).as_ref() == digest(secret).as_ref()
}

struct Issuer {
    key: SigningKey,
    issuer: String,
    audience: String,
    clients: PathBuf,
    lifetime: Duration,
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 6749 §5.2.
fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("header"));
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            r#"Basic realm="kiosk-issuer""#.parse().expect("header"),
        );
    }
    response
}

/// The client's credentials: HTTP Basic (RFC 6749 §2.3.1, each part form-encoded) or the
/// form's `client_id` and `client_secret`.
fn credentials(headers: &HeaderMap, form: &TokenRequest) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        let unescape = |s: &str| url_decode(s).unwrap_or_default();
        return Some((unescape(id), unescape(secret)));
    }
    Some((form.client_id.clone()?, form.client_secret.clone()?))
}

/// `application/x-www-form-urlencoded` decoding of one value.
fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

async fn token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    Form(form): Form<TokenRequest>,
) -> Response {
    if form.grant_type.as_deref() != Some("client_credentials") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let Some((client, secret)) = credentials(&headers, &form) else {
        tracing::info!("token refused: no client credentials");
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    if !authenticate(&issuer.clients, &client, &secret) {
        // The client id is logged only when it is a well-formed one (never a secret pasted
        // into the wrong field).
        let who = if valid_client_id(&client) {
            client.as_str()
        } else {
            "(malformed)"
        };
        tracing::info!("token refused: client `{who}` failed authentication");
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let claims = Claims::new(&issuer.issuer, &issuer.audience, &client, issuer.lifetime);
    let access_token = match issuer.key.sign(&claims) {
        Ok(t) => t,
        Err(e) => {
            return token_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &e.to_string(),
            )
        }
    };
    tracing::info!(
        "token issued to client `{client}`, expires in {} s",
        issuer.lifetime.as_secs()
    );
    let mut response = Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": issuer.lifetime.as_secs(),
    }))
    .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("header"));
    h.insert(header::PRAGMA, "no-cache".parse().expect("header"));
    response
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        issuer.key.jwks().to_string(),
    )
        .into_response()
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    let base = issuer.issuer.trim_end_matches('/');
    Json(json!({
        "issuer": issuer.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["token"],
    }))
}

/// The issuer's routes (for tests: served by [`run`]).
fn router(issuer: Issuer) -> Router {
    Router::new()
        .route("/token", post(token))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .with_state(Arc::new(issuer))
}

pub async fn run(args: Args) -> Result<()> {
    let key = match &args.key_file {
        Some(path) => SigningKey::from_pem(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading the signing key {}", path.display()))?,
        )
        .with_context(|| format!("{}", path.display()))?,
        None => SigningKey::generate()?,
    };
    anyhow::ensure!(
        args.clients.is_dir(),
        "--clients {}: not a directory",
        args.clients.display()
    );
    anyhow::ensure!(args.token_lifetime > 0, "--token-lifetime must be positive");
    tracing::info!(
        "issuer {} (audience {}), signing key {} ({ALGORITHM}), on {}",
        args.issuer,
        args.audience,
        key.kid(),
        args.listen
    );
    let app = router(Issuer {
        key,
        issuer: args.issuer,
        audience: args.audience,
        clients: args.clients,
        lifetime: Duration::from_secs(args.token_lifetime),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};

    fn verify(token: &str, jwks: &Value, audience: &str) -> Result<Claims> {
        let header = decode_header(token)?;
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"].as_str() == header.kid.as_deref())
            .context("no key with that kid")?;
        let key = DecodingKey::from_ec_components(
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap(),
        )?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[audience]);
        Ok(decode::<Claims>(token, &key, &validation)?.claims)
    }

    #[test]
    fn tokens_verify_under_the_jwks_and_only_there() {
        let key = SigningKey::generate().unwrap();
        let claims = Claims::new(
            "http://issuer",
            "kiosk-rest",
            "producer",
            Duration::from_secs(60),
        );
        let token = key.sign(&claims).unwrap();
        assert_eq!(verify(&token, &key.jwks(), "kiosk-rest").unwrap(), claims);
        assert!(
            verify(&token, &key.jwks(), "someone-else").is_err(),
            "audience"
        );
        // Signed by another key under this key's id: refused.
        let other = SigningKey::generate().unwrap();
        let forged = other.sign_as(key.kid(), &claims).unwrap();
        assert!(verify(&forged, &key.jwks(), "kiosk-rest").is_err());
        // Expired: refused.
        let old = Claims {
            exp: now() - 600,
            iat: now() - 900,
            nbf: now() - 900,
            ..claims.clone()
        };
        assert!(verify(&key.sign(&old).unwrap(), &key.jwks(), "kiosk-rest").is_err());
    }

    #[test]
    fn the_key_survives_pem_and_its_id_is_the_rfc_7638_thumbprint() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(again.jwk(), key.jwk());
        let jwk = key.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        assert_eq!(key.kid(), b64url(digest.as_ref()));
        assert_eq!(key.kid().len(), 43);
        assert!(!format!("{key:?}").contains("PRIVATE"));
        assert!(SigningKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
        // SEC1, as `openssl ecparam -name prime256v1 -genkey -noout` writes it (and Go's
        // x509.MarshalECPrivateKey, behind Helm's genPrivateKey "ecdsa"); a throwaway key.
        let sec1 = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEINSdIyFa5khOPyNiS36Ad2DkwFYROJGnLDzvSGxP8GBxoAoGCCqGSM49
AwEHoUQDQgAE+cSly6FS5W22h/9t5CLfNUpWxkB9wcWP03LpJXUlZBgGjV8Idcq1
hRmBf+NVVPfTFs8H2n9MdfMiR8YFMHAgtw==
-----END EC PRIVATE KEY-----
";
        let key = SigningKey::from_pem(sec1).unwrap();
        let claims = Claims::new("i", "a", "c", Duration::from_secs(60));
        assert_eq!(
            verify(&key.sign(&claims).unwrap(), &key.jwks(), "a").unwrap(),
            claims
        );
    }

    #[test]
    fn clients_come_from_a_secret_directory_compared_whole() {
        let dir = std::env::temp_dir().join(format!("kiosk-issuer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("producer"), "s3cret\n").unwrap();
        assert!(authenticate(&dir, "producer", "s3cret"));
        assert!(!authenticate(&dir, "producer", "s3cre"));
        assert!(!authenticate(&dir, "producer", "s3cret2"));
        assert!(!authenticate(&dir, "nobody", "s3cret"));
        assert!(!authenticate(&dir, "../producer", "s3cret"));
        assert!(!authenticate(&dir, "..data", "s3cret"));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(url_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(url_decode("%4"), None);
    }
}
