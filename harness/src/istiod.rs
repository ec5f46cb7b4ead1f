//! The bundle's Istio resources (`istio/`) as istiod 1.30.3 renders them into Envoy
//! configuration: the ingress gateway for a `Gateway`, its `VirtualService`, a
//! `RequestAuthentication` and an `AuthorizationPolicy`; and the RBAC filters an
//! `AuthorizationPolicy` gives a workload's sidecar.
//!
//! What is mirrored, read from istio/istio at 1.30.3:
//! - the listener `0.0.0.0_<targetPort>` with one HTTP connection manager, stat prefix
//!   `outbound_0.0.0.0_<port>;` (pilot/pkg/networking/core/gateway.go), the virtual host
//!   `*:<port>` and the VirtualService's route to `outbound|<port>||<host>` with its timeout
//!   and Istio's default retry policy;
//! - the HTTP filters in istiod's order (listener_builder.go): `jwt_authn` (authn), RBAC
//!   DENY then ALLOW (authz), `grpc_stats`, `fault`, `cors`, the router. Istio's own `alpn`
//!   and `istio.stats` filters exist only in Istio's proxy build and are left out;
//! - `jwt_authn` as `convertToEnvoyJwtConfig` writes it (pilot/pkg/security/authn/
//!   policy_applier.go): one provider `origins-<i>` per rule, sorted by issuer, the JWKS
//!   inline (`local_jwks.inline_string`, as istiod inlines what it fetched from `jwksUri`),
//!   the payload in the metadata under `payload`, space-delimited `permission` and `scope`,
//!   and the requirement `{provider OR allow_missing}`: an invalid token is refused (401),
//!   a missing one passes on to the RBAC filter;
//! - RBAC policies named `ns[<ns>]-policy[<name>]-rule[<i>]`, a request principal
//!   `<iss>/<sub>` matched as two metadata matchers on `envoy.filters.http.jwt_authn`
//!   `payload.iss` and `payload.sub` (pilot/pkg/security/authz/model/generator.go:
//!   `requestPrincipals: ["*"]` is `.+` for both). In 1.30.3 this reads the jwt_authn
//!   filter's metadata; older releases read `istio_authn`'s `request.auth.principal`.
//!
//! Only the fields the bundle uses are rendered; any other field of these resources is
//! refused, naming it, rather than silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The JWT filter's name, and where RBAC reads the token's payload.
pub const JWT_FILTER: &str = "envoy.filters.http.jwt_authn";
const JWT_PAYLOAD: &str = "payload";

/// The four resources of an ingress route, as read from the bundle.
#[derive(Clone, Debug)]
pub struct Ingress {
    pub gateway: Gateway,
    pub routes: Vec<Route>,
    pub jwt_rules: Vec<JwtRule>,
    pub policies: Vec<Policy>,
    /// The files they came from, for messages.
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct Gateway {
    pub name: String,
    pub namespace: String,
    /// The gateway pods' labels it selects (`istio: ingressgateway`).
    pub selector: BTreeMap<String, String>,
    /// The server's port (the gateway Service's port).
    pub port: u16,
    pub hosts: Vec<String>,
}

/// One HTTP route of the VirtualService.
#[derive(Clone, Debug)]
pub struct Route {
    pub name: String,
    pub prefix: Option<String>,
    pub exact: Option<String>,
    pub method: Option<String>,
    /// The destination Service's host and port.
    pub host: String,
    pub port: u16,
    pub timeout: Option<String>,
}

/// A `RequestAuthentication` JWT rule.
#[derive(Clone, Debug)]
pub struct JwtRule {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks_uri: Option<String>,
    /// An inline JWKS (`jwks`), instead of `jwksUri`.
    pub jwks: Option<String>,
    pub forward_original_token: bool,
}

/// An `AuthorizationPolicy` applying to the gateway.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub namespace: String,
    /// `ALLOW` or `DENY`.
    pub action: String,
    pub rules: Vec<Value>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Fail on any key of `v` not in `known` (what the rendering would silently drop).
fn only(v: &Value, known: &[&str], what: &str) -> Result<()> {
    if let Some(map) = v.as_object() {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                bail!("{what}.{key}: not rendered by the local mesh's ingress gateway");
            }
        }
    }
    Ok(())
}

fn selector_matches(spec: &Value, labels: &BTreeMap<String, String>) -> bool {
    match spec.get("selector").and_then(|s| s.get("matchLabels")) {
        Some(Value::Object(m)) => m
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str()),
        // No selector: every workload of the namespace.
        _ => true,
    }
}

/// Every object of the `.yaml` files of `dir`, with its file, in file order.
fn objects(dir: &Path) -> Result<Vec<(PathBuf, Value)>> {
    let mut objects = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path)?;
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc)
                .with_context(|| format!("{}: not YAML", path.display()))?;
            if v.is_object() {
                objects.push((path.clone(), v));
            }
        }
    }
    Ok(objects)
}

/// The AuthorizationPolicies of `dir` that apply to a workload of `namespace` with
/// `labels` (a selector matching them, or none), as its sidecar's RBAC renders them
/// ([`rbac_filters`]); a field the rendering does not know is refused, naming the file.
pub fn workload_policies(
    dir: &Path,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<Policy>> {
    let mut policies = Vec::new();
    for (file, o) in objects(dir)? {
        let applies = str_at(&o, &["kind"]) == Some("AuthorizationPolicy")
            && str_at(&o, &["metadata", "namespace"]) == Some(namespace)
            && selector_matches(&o["spec"], labels);
        if !applies {
            continue;
        }
        only(
            &o["spec"],
            &["selector", "action", "rules"],
            &format!("{}: spec", file.display()),
        )?;
        policies.push(Policy {
            name: str_at(&o, &["metadata", "name"]).unwrap_or("").to_string(),
            namespace: namespace.to_string(),
            action: str_at(&o, &["spec", "action"])
                .unwrap_or("ALLOW")
                .to_string(),
            rules: o["spec"]["rules"].as_array().cloned().unwrap_or_default(),
        });
        rbac_policies(&policies[policies.len() - 1..])
            .with_context(|| file.display().to_string())?;
    }
    Ok(policies)
}

impl Ingress {
    /// Read the Gateway named `gateway` (in `namespace`) from the `.yaml` files of `dir`,
    /// the VirtualServices bound to it, and the RequestAuthentications and
    /// AuthorizationPolicies of `gateway_namespace` that select the gateway's pods.
    pub fn read(dir: &Path, gateway: &str, gateway_namespace: &str) -> Result<Ingress> {
        let objects = objects(dir)?;
        let mut files = Vec::new();
        let (gw_file, gw) = objects
            .iter()
            .find(|(_, o)| {
                str_at(o, &["kind"]) == Some("Gateway")
                    && str_at(o, &["metadata", "name"]) == Some(gateway)
            })
            .with_context(|| format!("no Gateway `{gateway}` in {}", dir.display()))?;
        files.push(gw_file.clone());
        let where_ = |f: &Path, what: &str| format!("{}: {what}", f.display());
        let spec = &gw["spec"];
        only(spec, &["selector", "servers"], &where_(gw_file, "spec"))?;
        let selector: BTreeMap<String, String> = spec["selector"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let servers = spec["servers"].as_array().cloned().unwrap_or_default();
        let [server] = servers.as_slice() else {
            bail!(
                "{}: one server expected, found {}",
                where_(gw_file, "spec.servers"),
                servers.len()
            );
        };
        only(
            server,
            &["port", "hosts"],
            &where_(gw_file, "spec.servers[0]"),
        )?;
        if str_at(server, &["port", "protocol"]) != Some("HTTP") {
            bail!(
                "{}: only protocol HTTP is rendered",
                where_(gw_file, "spec.servers[0].port.protocol")
            );
        }
        let port = server["port"]["number"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .with_context(|| where_(gw_file, "spec.servers[0].port.number"))?;
        let hosts = strings(&server["hosts"]);
        let gw_namespace = str_at(gw, &["metadata", "namespace"])
            .unwrap_or("default")
            .to_string();

        let mut routes = Vec::new();
        for (file, vs) in objects
            .iter()
            .filter(|(_, o)| str_at(o, &["kind"]) == Some("VirtualService"))
        {
            let bound = strings(&vs["spec"]["gateways"])
                .iter()
                .any(|g| g == gateway || *g == format!("{gw_namespace}/{gateway}"));
            if !bound {
                continue;
            }
            files.push(file.clone());
            only(
                &vs["spec"],
                &["hosts", "gateways", "http"],
                &where_(file, "spec"),
            )?;
            for (i, http) in vs["spec"]["http"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let at = |f: &str| where_(file, &format!("spec.http[{i}]{f}"));
                only(http, &["name", "match", "route", "timeout"], &at(""))?;
                let matches = http["match"].as_array().cloned().unwrap_or_default();
                let m = match matches.as_slice() {
                    [] => Value::Null,
                    [m] => m.clone(),
                    _ => bail!("{}: one match expected", at(".match")),
                };
                only(&m, &["uri", "method"], &at(".match[0]"))?;
                only(&m["uri"], &["prefix", "exact"], &at(".match[0].uri"))?;
                only(&m["method"], &["exact"], &at(".match[0].method"))?;
                let dests = http["route"].as_array().cloned().unwrap_or_default();
                let [dest] = dests.as_slice() else {
                    bail!("{}: one destination expected", at(".route"));
                };
                only(dest, &["destination"], &at(".route[0]"))?;
                only(
                    &dest["destination"],
                    &["host", "port"],
                    &at(".route[0].destination"),
                )?;
                routes.push(Route {
                    name: str_at(http, &["name"]).unwrap_or("").to_string(),
                    prefix: str_at(&m, &["uri", "prefix"]).map(String::from),
                    exact: str_at(&m, &["uri", "exact"]).map(String::from),
                    method: str_at(&m, &["method", "exact"]).map(String::from),
                    host: str_at(dest, &["destination", "host"])
                        .with_context(|| at(".route[0].destination.host"))?
                        .to_string(),
                    port: dest["destination"]["port"]["number"]
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .with_context(|| at(".route[0].destination.port.number"))?,
                    timeout: str_at(http, &["timeout"]).map(String::from),
                });
            }
        }
        if routes.is_empty() {
            bail!(
                "no VirtualService in {} routes through Gateway `{gateway}`",
                dir.display()
            );
        }

        let applies = |o: &Value| {
            str_at(o, &["metadata", "namespace"]) == Some(gateway_namespace)
                && selector_matches(&o["spec"], &selector)
        };
        let mut jwt_rules = Vec::new();
        let mut policies = Vec::new();
        for (file, o) in &objects {
            match str_at(o, &["kind"]) {
                Some("RequestAuthentication") if applies(o) => {
                    files.push(file.clone());
                    only(&o["spec"], &["selector", "jwtRules"], &where_(file, "spec"))?;
                    for (i, r) in o["spec"]["jwtRules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let at = where_(file, &format!("spec.jwtRules[{i}]"));
                        only(
                            r,
                            &[
                                "issuer",
                                "audiences",
                                "jwksUri",
                                "jwks",
                                "forwardOriginalToken",
                            ],
                            &at,
                        )?;
                        jwt_rules.push(JwtRule {
                            issuer: str_at(r, &["issuer"])
                                .with_context(|| format!("{at}.issuer"))?
                                .to_string(),
                            audiences: strings(&r["audiences"]),
                            jwks_uri: str_at(r, &["jwksUri"]).map(String::from),
                            jwks: str_at(r, &["jwks"]).map(String::from),
                            forward_original_token: r["forwardOriginalToken"]
                                .as_bool()
                                .unwrap_or(false),
                        });
                    }
                }
                Some("AuthorizationPolicy") if applies(o) => {
                    files.push(file.clone());
                    only(
                        &o["spec"],
                        &["selector", "action", "rules"],
                        &where_(file, "spec"),
                    )?;
                    policies.push(Policy {
                        name: str_at(o, &["metadata", "name"]).unwrap_or("").to_string(),
                        namespace: gateway_namespace.to_string(),
                        action: str_at(o, &["spec", "action"])
                            .unwrap_or("ALLOW")
                            .to_string(),
                        rules: o["spec"]["rules"].as_array().cloned().unwrap_or_default(),
                    });
                    // Rendering now reports an unsupported field with the file's name.
                    rbac_policies(&policies[policies.len() - 1..])
                        .with_context(|| file.display().to_string())?;
                }
                _ => {}
            }
        }
        Ok(Ingress {
            gateway: Gateway {
                name: gateway.to_string(),
                namespace: gw_namespace,
                selector,
                port,
                hosts,
            },
            routes,
            jwt_rules,
            policies,
            files,
        })
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// `convertToEnvoyJwtConfig`: the `jwt_authn` filter's config for `rules`, each rule's JWKS
/// inline (`jwks(rule)` gives what istiod would have fetched from its `jwksUri`).
pub fn jwt_authn(rules: &[JwtRule], jwks: &dyn Fn(&JwtRule) -> Result<String>) -> Result<Value> {
    let mut sorted: Vec<&JwtRule> = rules.iter().collect();
    sorted.sort_by(|a, b| a.issuer.cmp(&b.issuer));
    let mut providers = serde_json::Map::new();
    let mut inner_and = Vec::new();
    let mut outer_or = Vec::new();
    for (i, rule) in sorted.iter().enumerate() {
        let name = format!("origins-{i}");
        let inline = match &rule.jwks {
            Some(inline) => inline.clone(),
            None => jwks(rule)?,
        };
        let mut provider = json!({
            "issuer": rule.issuer,
            "forward": rule.forward_original_token,
            "payload_in_metadata": JWT_PAYLOAD,
            "normalize_payload_in_metadata": { "space_delimited_claims": ["permission", "scope"] },
            "local_jwks": { "inline_string": inline },
        });
        if !rule.audiences.is_empty() {
            provider["audiences"] = json!(rule.audiences);
        }
        providers.insert(name.clone(), provider);
        inner_and.push(json!({ "requires_any": { "requirements": [
            { "provider_name": name },
            { "allow_missing": {} }
        ]}}));
        outer_or.push(json!({ "provider_name": name }));
    }
    let requires = if inner_and.len() == 1 {
        inner_and.remove(0)
    } else {
        outer_or.push(json!({ "requires_all": { "requirements": inner_and } }));
        json!({ "requires_any": { "requirements": outer_or } })
    };
    Ok(json!({
        "name": JWT_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "rules": [{ "match": { "prefix": "/" }, "requires": requires }],
            "bypass_cors_preflight": true
        }
    }))
}

/// `source.principals` as Istio renders them: the peer certificate's URI SAN,
/// `spiffe://` and the value (`*` any, `x*` prefix, `*x` suffix), ORed.
fn peer_principals(values: &[String]) -> Value {
    let ids: Vec<Value> = values
        .iter()
        .map(|v| {
            let matcher = match string_matcher(v) {
                m if m.get("exact").is_some() => json!({ "exact": format!("spiffe://{v}") }),
                m if m.get("prefix").is_some() => {
                    json!({ "prefix": format!("spiffe://{}", v.trim_end_matches('*')) })
                }
                m => m,
            };
            json!({ "authenticated": { "principal_name": matcher } })
        })
        .collect();
    json!({ "or_ids": { "ids": ids } })
}

/// Istio's `StringMatcher` for an AuthorizationPolicy value: `*` any (`.+`), `x*` prefix,
/// `*x` suffix, else exact.
fn string_matcher(value: &str) -> Value {
    if value == "*" {
        json!({ "safe_regex": { "regex": ".+" } })
    } else if let Some(prefix) = value.strip_suffix('*') {
        json!({ "prefix": prefix })
    } else if let Some(suffix) = value.strip_prefix('*') {
        json!({ "suffix": suffix })
    } else {
        json!({ "exact": value })
    }
}

fn claim(name: &str, matcher: Value) -> Value {
    json!({ "metadata": {
        "filter": JWT_FILTER,
        "path": [{ "key": JWT_PAYLOAD }, { "key": name }],
        "value": { "string_match": matcher }
    }})
}

/// `requestPrincipalGenerator.extendedPrincipal`: each value `<iss>/<sub>` (split at the
/// last `/`, an issuer may be a URL) as `iss AND sub`; several values ORed.
fn request_principals(values: &[String]) -> Value {
    let any = || json!({ "safe_regex": { "regex": ".+" } });
    let mut or: Vec<Value> = values
        .iter()
        .map(|value| {
            let (iss, sub, found) = match value.rfind('/') {
                Some(i) => (&value[..i], &value[i + 1..], true),
                None => (value.as_str(), "", false),
            };
            let (mi, ms) = if value == "*" {
                (any(), any())
            } else if value.starts_with('*') {
                if found {
                    let mi = if iss == "*" {
                        any()
                    } else {
                        json!({ "suffix": iss.trim_start_matches('*') })
                    };
                    (mi, json!({ "exact": sub }))
                } else {
                    (any(), json!({ "suffix": value.trim_start_matches('*') }))
                }
            } else if value.ends_with('*') {
                if found {
                    let ms = if sub == "*" {
                        any()
                    } else {
                        json!({ "prefix": sub.trim_end_matches('*') })
                    };
                    (json!({ "exact": iss }), ms)
                } else {
                    (json!({ "prefix": value.trim_end_matches('*') }), any())
                }
            } else {
                (json!({ "exact": iss }), json!({ "exact": sub }))
            };
            json!({ "and_ids": { "ids": [claim("iss", mi), claim("sub", ms)] } })
        })
        .collect();
    if or.len() == 1 {
        or.remove(0)
    } else {
        json!({ "or_ids": { "ids": or } })
    }
}

fn path_matcher(value: &str) -> Value {
    json!({ "url_path": { "path": string_matcher(value) } })
}

/// The RBAC rules of `policies` (one action), as `Model.Generate` builds them: per rule, the
/// permissions from `to` (AND of the operation's fields, each an OR of its values; `any`
/// without `to`) and the principals from `from` (AND of the source's fields; `any` without
/// `from`).
pub fn rbac_policies(policies: &[Policy]) -> Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for p in policies {
        if !matches!(p.action.as_str(), "ALLOW" | "DENY") {
            bail!(
                "AuthorizationPolicy `{}`: action {} is not rendered",
                p.name,
                p.action
            );
        }
        for (i, rule) in p.rules.iter().enumerate() {
            let at = format!("AuthorizationPolicy `{}` spec.rules[{i}]", p.name);
            only(rule, &["from", "to"], &at)?;
            let mut principals = Vec::new();
            for (j, from) in rule["from"].as_array().into_iter().flatten().enumerate() {
                only(from, &["source"], &format!("{at}.from[{j}]"))?;
                let source = &from["source"];
                only(
                    source,
                    &[
                        "requestPrincipals",
                        "notRequestPrincipals",
                        "principals",
                        "notPrincipals",
                    ],
                    &format!("{at}.from[{j}].source"),
                )?;
                let mut and = Vec::new();
                // Peer identities (mTLS): Istio matches `spiffe://<value>` of the peer's
                // certificate.
                let values = strings(&source["principals"]);
                if !values.is_empty() {
                    and.push(peer_principals(&values));
                }
                let not = strings(&source["notPrincipals"]);
                if !not.is_empty() {
                    and.push(json!({ "not_id": peer_principals(&not) }));
                }
                let values = strings(&source["requestPrincipals"]);
                if !values.is_empty() {
                    and.push(request_principals(&values));
                }
                let not = strings(&source["notRequestPrincipals"]);
                if !not.is_empty() {
                    and.push(json!({ "not_id": request_principals(&not) }));
                }
                if and.is_empty() {
                    and.push(json!({ "any": true }));
                }
                principals.push(json!({ "and_ids": { "ids": and } }));
            }
            if principals.is_empty() {
                principals.push(json!({ "and_ids": { "ids": [{ "any": true }] } }));
            }
            let mut permissions = Vec::new();
            for (j, to) in rule["to"].as_array().into_iter().flatten().enumerate() {
                only(to, &["operation"], &format!("{at}.to[{j}]"))?;
                let op = &to["operation"];
                only(
                    op,
                    &["methods", "paths"],
                    &format!("{at}.to[{j}].operation"),
                )?;
                let mut and = Vec::new();
                let methods = strings(&op["methods"]);
                if !methods.is_empty() {
                    let or: Vec<Value> = methods
                        .iter()
                        .map(|m| json!({ "header": { "name": ":method", "string_match": { "exact": m } } }))
                        .collect();
                    and.push(json!({ "or_rules": { "rules": or } }));
                }
                let paths = strings(&op["paths"]);
                if !paths.is_empty() {
                    let or: Vec<Value> = paths.iter().map(|p| path_matcher(p)).collect();
                    and.push(json!({ "or_rules": { "rules": or } }));
                }
                if and.is_empty() {
                    and.push(json!({ "any": true }));
                }
                permissions.push(json!({ "and_rules": { "rules": and } }));
            }
            if permissions.is_empty() {
                permissions.push(json!({ "and_rules": { "rules": [{ "any": true }] } }));
            }
            out.insert(
                format!("ns[{}]-policy[{}]-rule[{i}]", p.namespace, p.name),
                json!({ "permissions": permissions, "principals": principals }),
            );
        }
    }
    Ok(out)
}

/// The RBAC HTTP filters: DENY policies first, then ALLOW (none for an action without
/// policies: everything is allowed).
pub fn rbac_filters(policies: &[Policy]) -> Result<Vec<Value>> {
    let mut filters = Vec::new();
    for action in ["DENY", "ALLOW"] {
        let these: Vec<Policy> = policies
            .iter()
            .filter(|p| p.action == action)
            .cloned()
            .collect();
        if these.is_empty() {
            continue;
        }
        let mut rules = json!({ "policies": rbac_policies(&these)? });
        if action == "DENY" {
            rules["action"] = json!("DENY");
        }
        filters.push(json!({
            "name": "envoy.filters.http.rbac",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                "rules": rules
            }
        }));
    }
    Ok(filters)
}

/// Istio's default retry policy on a route (pilot/pkg/networking/core/route/retry).
fn default_retry_policy() -> Value {
    json!({
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2,
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" }
        }],
        "host_selection_retry_max_attempts": "5",
        "retriable_status_codes": [503]
    })
}

/// A `ServiceEntry` for a service outside the mesh (`MESH_EXTERNAL`): its first host and
/// port, as the sidecars route them.
#[derive(Clone, Debug)]
pub struct ExternalService {
    pub namespace: String,
    pub host: String,
    pub port: u16,
}

/// The `MESH_EXTERNAL` ServiceEntry named `name` in `dir`.
pub fn external_service(dir: &Path, name: &str) -> Result<ExternalService> {
    for (path, v) in objects(dir)? {
        if str_at(&v, &["kind"]) != Some("ServiceEntry")
            || str_at(&v, &["metadata", "name"]) != Some(name)
        {
            continue;
        }
        let spec = &v["spec"];
        if str_at(spec, &["location"]) != Some("MESH_EXTERNAL") {
            bail!(
                "{}: ServiceEntry {name} is not MESH_EXTERNAL",
                path.display()
            );
        }
        let host = spec["hosts"][0].as_str();
        let port = spec["ports"][0]["number"].as_u64();
        let (Some(host), Some(port)) = (host, port.and_then(|p| u16::try_from(p).ok())) else {
            bail!(
                "{}: ServiceEntry {name} names no host and port",
                path.display()
            );
        };
        return Ok(ExternalService {
            namespace: str_at(&v, &["metadata", "namespace"])
                .unwrap_or("default")
                .to_string(),
            host: host.to_string(),
            port,
        });
    }
    bail!("no ServiceEntry {name} in {}", dir.display())
}

/// TLS a sidecar of `namespace` originates to `host:port`, from the DestinationRule for it
/// there: `tls.mode: SIMPLE` at the port (server-authenticated TLS, the CA from
/// `credentialName`), its `sni`. Refused: no such rule, another mode, or no
/// `workloadSelector` (without one a sidecar ignores `credentialName` and builds no TLS at
/// all: the connection would leave in plaintext).
pub fn simple_tls_sni(dir: &Path, namespace: &str, host: &str, port: u16) -> Result<String> {
    for (path, v) in objects(dir)? {
        if str_at(&v, &["kind"]) != Some("DestinationRule")
            || str_at(&v, &["metadata", "namespace"]) != Some(namespace)
            || str_at(&v, &["spec", "host"]) != Some(host)
        {
            continue;
        }
        let spec = &v["spec"];
        if spec.get("workloadSelector").is_none() {
            bail!("{}: DestinationRule for {host} has no workloadSelector: Istio would ignore its credentialName and originate no TLS", path.display());
        }
        let settings = spec["trafficPolicy"]["portLevelSettings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["port"]["number"].as_u64() == Some(u64::from(port)));
        let Some(tls) = settings.map(|s| &s["tls"]) else {
            bail!(
                "{}: DestinationRule for {host} sets nothing for port {port}",
                path.display()
            );
        };
        if str_at(tls, &["mode"]) != Some("SIMPLE") {
            bail!("{}: DestinationRule for {host}:{port}: tls.mode must be SIMPLE (TLS the sidecar originates)", path.display());
        }
        return Ok(str_at(tls, &["sni"]).unwrap_or(host).to_string());
    }
    bail!(
        "no DestinationRule for {host} in namespace {namespace} in {}",
        dir.display()
    )
}

/// The outbound cluster Istio names for a destination.
pub fn cluster_name(host: &str, port: u16) -> String {
    format!("outbound|{port}||{host}")
}

/// The gateway's HTTP listener on `target_port`: the HTTP connection manager with the
/// filters above and the VirtualService's routes, `cluster_of` naming the cluster each
/// route's destination goes to.
pub fn listener(
    ingress: &Ingress,
    target_port: u16,
    jwt: Option<Value>,
    cluster_of: &dyn Fn(&Route) -> String,
) -> Result<Value> {
    let mut filters = Vec::new();
    filters.extend(jwt);
    filters.extend(rbac_filters(&ingress.policies)?);
    filters.push(json!({
        "name": "envoy.filters.http.grpc_stats",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
            "emit_filter_state": true,
            "stats_for_all_methods": false
        }
    }));
    filters.push(json!({
        "name": "envoy.filters.http.fault",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault" }
    }));
    filters.push(json!({
        "name": "envoy.filters.http.cors",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" }
    }));
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
    }));
    let routes: Vec<Value> = ingress
        .routes
        .iter()
        .map(|r| {
            let mut m = match (&r.prefix, &r.exact) {
                (_, Some(exact)) => json!({ "path": exact, "case_sensitive": true }),
                (Some(prefix), None) => json!({ "prefix": prefix, "case_sensitive": true }),
                (None, None) => json!({ "prefix": "/" }),
            };
            if let Some(method) = &r.method {
                m["headers"] = json!([{ "name": ":method", "string_match": { "exact": method } }]);
            }
            let mut route = json!({
                "cluster": cluster_of(r),
                "retry_policy": default_retry_policy()
            });
            route["timeout"] = json!(r.timeout.clone().unwrap_or_else(|| "0s".into()));
            json!({ "name": r.name, "match": m, "route": route, "decorator": { "operation": format!("{}:{}/*", r.host, r.port) } })
        })
        .collect();
    let port = ingress.gateway.port;
    let domains: Vec<String> = if ingress.gateway.hosts.iter().any(|h| h == "*") {
        vec!["*".into()]
    } else {
        ingress
            .gateway
            .hosts
            .iter()
            .flat_map(|h| [h.clone(), format!("{h}:*")])
            .collect()
    };
    let name = format!("0.0.0.0_{target_port}");
    Ok(json!({
        "name": name,
        "address": { "socket_address": { "address": "0.0.0.0", "port_value": target_port } },
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": format!("outbound_{name};"),
                "route_config": {
                    "name": format!("http.{target_port}"),
                    "virtual_hosts": [{
                        "name": format!("{}:{port}", ingress.gateway.hosts.first().map_or("*", String::as_str)),
                        "domains": domains,
                        "routes": routes
                    }],
                    "validate_clusters": false
                },
                "http_filters": filters,
                "use_remote_address": true,
                "normalize_path": true,
                "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
                "stream_idle_timeout": "0s",
                "server_name": "istio-envoy",
                "forward_client_cert_details": "SANITIZE_SET",
                "set_current_client_cert_details": { "subject": true, "dns": true, "uri": true }
            }
        }]}]
    }))
}

/// The stats tags istiod's bootstrap adds for HTTP (tools/packaging/common/
/// envoy_bootstrap.json): the connection manager's prefix, response codes, and the RBAC
/// result, so the gateway's refusals are series with labels, as in a mesh.
pub fn istio_http_stats_tags() -> Vec<Value> {
    vec![
        json!({ "tag_name": "http_conn_manager_prefix", "regex": r"^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)" }),
        json!({ "tag_name": "response_code", "regex": r"_rq(_(\d{3}))$" }),
        json!({ "tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$" }),
        json!({ "tag_name": "authz_enforce_result", "regex": r"rbac(\.(allowed|denied))" }),
        json!({ "tag_name": "authz_dry_run_result", "regex": r"(\.shadow_(allowed|denied))" }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Ingress {
        Ingress::read(
            &crate::bundle::default_istio_dir(),
            "kiosk-rest",
            "istio-ingress",
        )
        .unwrap()
    }

    #[test]
    fn the_bundle_gives_one_route_one_jwt_rule_and_a_policy_requiring_a_principal() {
        let ingress = bundle();
        assert_eq!(ingress.gateway.port, 80);
        assert_eq!(ingress.gateway.selector["istio"], "ingressgateway");
        assert_eq!(ingress.routes.len(), 1);
        assert_eq!(ingress.routes[0].prefix.as_deref(), Some("/topics/"));
        assert_eq!(ingress.routes[0].method.as_deref(), Some("POST"));
        assert_eq!(ingress.jwt_rules.len(), 1);
        assert!(ingress.jwt_rules[0].jwks_uri.is_some());
        assert_eq!(ingress.policies.len(), 1);
        assert_eq!(ingress.files.len(), 4, "{:?}", ingress.files);
    }

    #[test]
    fn any_request_principal_is_iss_and_sub_present_as_istio_renders_it() {
        let ingress = bundle();
        let filters = rbac_filters(&ingress.policies).unwrap();
        assert_eq!(filters.len(), 1);
        let policy = &filters[0]["typed_config"]["rules"]["policies"]
            ["ns[istio-ingress]-policy[kiosk-rest-require-jwt]-rule[0]"];
        assert_eq!(
            policy["permissions"],
            json!([{ "and_rules": { "rules": [{ "any": true }] } }])
        );
        let ids = &policy["principals"][0]["and_ids"]["ids"][0]["and_ids"]["ids"];
        for (i, claim) in ["iss", "sub"].iter().enumerate() {
            assert_eq!(ids[i]["metadata"]["filter"], JWT_FILTER);
            assert_eq!(
                ids[i]["metadata"]["path"],
                json!([{ "key": "payload" }, { "key": claim }])
            );
            assert_eq!(
                ids[i]["metadata"]["value"]["string_match"]["safe_regex"]["regex"],
                ".+"
            );
        }
        assert!(filters[0]["typed_config"]["rules"].get("action").is_none());
    }

    #[test]
    fn request_principal_values_follow_istios_generator() {
        // allow-full-rule-out.yaml of istio 1.30.3's builder tests.
        let m = |v: &str| request_principals(&[v.to_string()]);
        let pair = |v: &Value| {
            let ids = &v["and_ids"]["ids"];
            (
                ids[0]["metadata"]["value"]["string_match"].clone(),
                ids[1]["metadata"]["value"]["string_match"].clone(),
            )
        };
        assert_eq!(
            pair(&m("requestPrincipals")),
            (
                json!({ "exact": "requestPrincipals" }),
                json!({ "exact": "" })
            )
        );
        assert_eq!(
            pair(&m("requestPrincipals-prefix-*")),
            (
                json!({ "prefix": "requestPrincipals-prefix-" }),
                json!({ "safe_regex": { "regex": ".+" } })
            )
        );
        assert_eq!(
            pair(&m("*-suffix-requestPrincipals")),
            (
                json!({ "safe_regex": { "regex": ".+" } }),
                json!({ "suffix": "-suffix-requestPrincipals" })
            )
        );
        assert_eq!(
            pair(&m("http://issuer:8080/producer")),
            (
                json!({ "exact": "http://issuer:8080" }),
                json!({ "exact": "producer" })
            )
        );
        let two = request_principals(&["a/b".into(), "c/d".into()]);
        assert_eq!(two["or_ids"]["ids"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn the_jwt_filter_is_one_provider_or_allow_missing_with_the_jwks_inline() {
        let ingress = bundle();
        let f = jwt_authn(&ingress.jwt_rules, &|_| Ok(r#"{"keys":[]}"#.to_string())).unwrap();
        let c = &f["typed_config"];
        let p = &c["providers"]["origins-0"];
        assert_eq!(p["issuer"], ingress.jwt_rules[0].issuer);
        assert_eq!(p["payload_in_metadata"], "payload");
        assert_eq!(p["audiences"], json!(["kiosk-rest"]));
        assert_eq!(p["local_jwks"]["inline_string"], r#"{"keys":[]}"#);
        assert_eq!(
            c["rules"][0]["requires"],
            json!({ "requires_any": { "requirements": [{ "provider_name": "origins-0" }, { "allow_missing": {} }] } })
        );
        // Two issuers: each valid-or-missing, ORed with each alone.
        let mut rules = ingress.jwt_rules.clone();
        rules.push(JwtRule {
            issuer: "a-first".into(),
            ..rules[0].clone()
        });
        let f = jwt_authn(&rules, &|r| Ok(r.issuer.clone())).unwrap();
        let c = &f["typed_config"];
        assert_eq!(c["providers"]["origins-0"]["issuer"], "a-first");
        let any = c["rules"][0]["requires"]["requires_any"]["requirements"]
            .as_array()
            .unwrap();
        assert_eq!(any.len(), 3);
        assert!(any[2]["requires_all"].is_object());
    }

    #[test]
    fn the_registry_policy_renders_peer_identities_as_istio_does() {
        let istio = crate::bundle::default_istio_dir();
        let labels = BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                "test-kafka-istio-mongo".to_string(),
            ),
            (
                "app.kubernetes.io/instance".to_string(),
                "kiosk".to_string(),
            ),
            (
                "app.kubernetes.io/component".to_string(),
                "schema-registry".to_string(),
            ),
        ]);
        let policies = workload_policies(&istio, "pipeline", &labels).unwrap();
        assert_eq!(policies.len(), 1, "the bundle's schema-registry policy");
        let rendered = serde_json::to_string(&rbac_filters(&policies).unwrap()).unwrap();
        assert!(rendered.contains(
            r#"{"authenticated":{"principal_name":{"exact":"spiffe://cluster.local/ns/pipeline/sa/kiosk-test-producer"}}}"#
        ));
        let other = BTreeMap::from([("app".to_string(), "rest".to_string())]);
        assert!(workload_policies(&istio, "pipeline", &other)
            .unwrap()
            .is_empty());
        let mut wildcard = policies[0].clone();
        wildcard.rules =
            vec![json!({ "from": [{ "source": { "principals": ["cluster.local/ns/x/*"] } }] })];
        let rendered = serde_json::to_string(&rbac_policies(&[wildcard]).unwrap()).unwrap();
        assert!(
            rendered.contains(r#"{"prefix":"spiffe://cluster.local/ns/x/"}"#),
            "{rendered}"
        );
    }

    #[test]
    fn fields_the_gateway_would_not_render_are_refused_by_name() {
        let policy = Policy {
            name: "x".into(),
            namespace: "istio-ingress".into(),
            action: "ALLOW".into(),
            rules: vec![json!({ "from": [{ "source": { "namespaces": ["pipeline"] } }] })],
        };
        let err = rbac_policies(&[policy]).unwrap_err().to_string();
        assert!(err.contains("source.namespaces"), "{err}");
    }
}
