//! `kiosk register-schemas`: register a subject's schema in a Confluent-compatible schema
//! registry (Apicurio Registry's `/apis/ccompat/v7`) with a compatibility level, then prove
//! the level is enforced. Run by the chart's registration Job after every install and upgrade,
//! and by the local mesh at start, as the producer's identity (the only one the registry's
//! AuthorizationPolicy lets write):
//!
//!  1. wait for the registry (unreachable, or 502/503/504 from the mesh: retried every 2 s
//!     for up to `--wait-secs`);
//!  2. `PUT /config/<subject>`: the level, answered back;
//!  3. `POST /subjects/<subject>/versions`: the schema (`--schema`, v1) and its id (a rerun
//!     gets the same id);
//!  4. `GET /schemas/ids/<id>`: the registry hands that schema back;
//!  5. `POST /compatibility/subjects/<subject>/versions/latest` for each `--compatible`
//!     schema: `is_compatible: true`, and it is not registered (v1 stays the latest version);
//!  6. the same for each `--refused` schema: `is_compatible: false`, and registering it
//!     answers 409;
//!  7. `GET /config/<subject>`: the level is still the one set.
//!
//! The last line, `<subject>: ready, schema id <id>`, names the id the producer frames with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};

use crate::registry::{clip, schema_of, Registry};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The registry's Confluent-compatible API base URL.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub registry: String,
    /// The subject (the topic's name and `-value`).
    #[arg(long, default_value = "events-value")]
    pub subject: String,
    /// The schema to register (JSON Schema): the subject's version the pipeline uses.
    #[arg(long, value_name = "FILE")]
    pub schema: PathBuf,
    /// The subject's compatibility level.
    #[arg(long, default_value = "BACKWARD")]
    pub compatibility: String,
    /// Schemas the level must accept: each judged compatible with the latest version, none
    /// registered.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub compatible: Vec<PathBuf>,
    /// Schemas the level must refuse: each judged incompatible, and its registration
    /// answered 409.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub refused: Vec<PathBuf>,
    /// How long to wait for the registry to answer (unreachable, or 502/503/504 from the
    /// mesh while it starts).
    #[arg(
        long,
        env = "KIOSK_WAIT_SECS",
        default_value_t = 300,
        value_name = "SECS"
    )]
    pub wait_secs: u64,
}

/// A schema file: its name (for the messages) and its text, checked to be JSON.
struct Schema {
    name: String,
    text: String,
}

impl Schema {
    fn read(file: &Path) -> Result<Schema> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the schema {}", file.display()))?;
        serde_json::from_str::<Value>(&text)
            .with_context(|| format!("{}: not JSON", file.display()))?;
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Schema { name, text })
    }

    fn body(&self) -> Value {
        json!({ "schemaType": "JSON", "schema": self.text })
    }
}

/// What to register and check, the files read.
struct Plan {
    subject: String,
    level: String,
    schema: Schema,
    compatible: Vec<Schema>,
    refused: Vec<Schema>,
}

impl Plan {
    fn read(args: &Args) -> Result<Plan> {
        let all = |files: &[PathBuf]| {
            files
                .iter()
                .map(|f| Schema::read(f))
                .collect::<Result<Vec<_>>>()
        };
        Ok(Plan {
            subject: args.subject.clone(),
            level: args.compatibility.clone(),
            schema: Schema::read(&args.schema)?,
            compatible: all(&args.compatible)?,
            refused: all(&args.refused)?,
        })
    }
}

/// The calls the registration makes: the registry's, or a model of it in the tests.
trait Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value)>;
}

impl Api for Registry {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        Registry::call(self, method, path, body).await
    }
}

/// Fails with `what` unless `ok`, quoting the answer (and on 403, why it likely came).
fn expect(ok: bool, what: &str, status: u16, answer: &Value) -> Result<()> {
    if ok {
        return Ok(());
    }
    let hint = if status == 403 {
        " (403: the registry's AuthorizationPolicy refused this identity)"
    } else {
        ""
    };
    bail!(
        "{what}: got {status} {}{hint}",
        clip(&answer.to_string(), 300)
    )
}

/// The level an answer of `GET /config/<subject>` names (Confluent's `compatibilityLevel`;
/// `compatibility` as `PUT` answers it).
fn config_level(answer: &Value) -> Option<&str> {
    answer["compatibilityLevel"]
        .as_str()
        .or_else(|| answer["compatibility"].as_str())
}

/// The id in an answer of a registration.
fn registered_id(status: u16, answer: &Value) -> Option<u32> {
    let id = answer["id"].as_u64().and_then(|id| u32::try_from(id).ok());
    id.filter(|_| status == 200)
}

/// The judgement in an answer of a compatibility check.
fn judged_compatible(status: u16, answer: &Value) -> Option<bool> {
    answer["is_compatible"].as_bool().filter(|_| status == 200)
}

/// Whether an answer of `GET /schemas/ids/<id>` holds the schema `text` (as JSON: the registry
/// may hand it back formatted otherwise).
fn hands_back(status: u16, answer: &Value, text: &str) -> bool {
    let Ok(want) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    status == 200 && schema_of(answer).is_ok_and(|got| got == want)
}

/// The registration and its checks (the module's steps 2 to 7), each line of progress handed to
/// `say`: the id of the registered schema.
async fn register(api: &impl Api, plan: &Plan, say: &mut impl FnMut(String)) -> Result<u32> {
    let Plan {
        subject,
        level,
        schema,
        ..
    } = plan;
    let config = format!("/config/{subject}");
    let versions = format!("/subjects/{subject}/versions");
    let compatibility = format!("/compatibility/subjects/{subject}/versions/latest");

    let (status, answer) = api
        .call(
            Method::PUT,
            &config,
            Some(json!({ "compatibility": level })),
        )
        .await?;
    expect(
        status == 200 && answer["compatibility"].as_str() == Some(level),
        &format!("PUT {config} {level}"),
        status,
        &answer,
    )?;
    say(format!("{subject}: compatibility {level}"));

    let (status, answer) = api
        .call(Method::POST, &versions, Some(schema.body()))
        .await?;
    let id = registered_id(status, &answer);
    expect(
        id.is_some(),
        &format!("registering {} as {subject}", schema.name),
        status,
        &answer,
    )?;
    let id = id.unwrap_or_default();
    say(format!("{subject}: {} registered, id {id}", schema.name));

    let (status, answer) = api
        .call(Method::GET, &format!("/schemas/ids/{id}"), None)
        .await?;
    expect(
        hands_back(status, &answer, &schema.text),
        &format!("GET /schemas/ids/{id} must hand back {}", schema.name),
        status,
        &answer,
    )?;
    say(format!(
        "{subject}: schema id {id} reads back as {}",
        schema.name
    ));

    for evolution in &plan.compatible {
        judge(api, &compatibility, evolution, true, plan).await?;
        say(format!(
            "{subject}: {} is compatible ({level}), not registered",
            evolution.name
        ));
    }

    for evolution in &plan.refused {
        judge(api, &compatibility, evolution, false, plan).await?;
        let (status, answer) = api
            .call(Method::POST, &versions, Some(evolution.body()))
            .await?;
        if status == 200 {
            bail!(
                "{} was registered under {subject} ({}): the registry does not enforce {level}, \
                 and the subject now holds an incompatible version",
                evolution.name,
                clip(&answer.to_string(), 300)
            );
        }
        expect(
            status == 409,
            &format!("registering {} must be refused with 409", evolution.name),
            status,
            &answer,
        )?;
        let why = clip(answer["message"].as_str().unwrap_or_default(), 160);
        say(format!(
            "{subject}: {} refused (409): {why}",
            evolution.name
        ));
    }

    let (status, answer) = api.call(Method::GET, &config, None).await?;
    expect(
        status == 200 && config_level(&answer) == Some(level),
        &format!("GET {config} must be {level}"),
        status,
        &answer,
    )?;
    say(format!("{subject}: ready, schema id {id}"));
    Ok(id)
}

/// Ask the registry whether `evolution` is compatible with the subject's latest version
/// (through `compatibility`, without registering it); fail unless it judges as `want`.
async fn judge(
    api: &impl Api,
    compatibility: &str,
    evolution: &Schema,
    want: bool,
    plan: &Plan,
) -> Result<()> {
    let (subject, level) = (&plan.subject, &plan.level);
    let (status, answer) = api
        .call(Method::POST, compatibility, Some(evolution.body()))
        .await?;
    let must = if want { "must" } else { "must not" };
    expect(
        judged_compatible(status, &answer) == Some(want),
        &format!(
            "{} {must} be {level}-compatible with the latest version of {subject}",
            evolution.name
        ),
        status,
        &answer,
    )
}

pub async fn run(args: Args) -> Result<()> {
    let plan = Plan::read(&args)?;
    let registry = Registry::new(&args.registry)?.waiting(Duration::from_secs(args.wait_secs));
    register(&registry, &plan, &mut |line| println!("{line}"))
        .await
        .context("schema registration failed")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn expect_quotes_the_answer_and_explains_403() {
        assert!(expect(true, "x", 500, &json!(null)).is_ok());
        let e = expect(
            false,
            "PUT /config/s BACKWARD",
            403,
            &json!("RBAC: access denied"),
        );
        let e = e.unwrap_err().to_string();
        assert!(
            e.starts_with("PUT /config/s BACKWARD: got 403 \"RBAC: access denied\""),
            "{e}"
        );
        assert!(
            e.contains("AuthorizationPolicy refused this identity"),
            "{e}"
        );
        let e = expect(false, "w", 422, &json!({"message": "no"}))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("AuthorizationPolicy"), "{e}");
    }

    #[test]
    fn reading_the_answers() {
        assert_eq!(
            config_level(&json!({"compatibilityLevel": "BACKWARD"})),
            Some("BACKWARD")
        );
        assert_eq!(
            config_level(&json!({"compatibility": "FULL"})),
            Some("FULL")
        );
        assert_eq!(config_level(&json!({"error_code": 40408})), None);
        assert_eq!(registered_id(200, &json!({"id": 7})), Some(7));
        assert_eq!(registered_id(409, &json!({"id": 7})), None);
        assert_eq!(registered_id(200, &json!({"id": "7"})), None);
        assert_eq!(
            judged_compatible(200, &json!({"is_compatible": false})),
            Some(false)
        );
        assert_eq!(
            judged_compatible(200, &json!({"is_compatible": "true"})),
            None
        );
        assert_eq!(
            judged_compatible(404, &json!({"is_compatible": true})),
            None
        );
        let text = "{\"type\": \"object\",\n \"required\": [\"id\"]}";
        let back = json!({ "schema": "{\"required\":[\"id\"],\"type\":\"object\"}" });
        assert!(
            hands_back(200, &back, text),
            "the same JSON, formatted otherwise"
        );
        assert!(!hands_back(
            200,
            &json!({ "schema": "{\"type\":\"object\"}" }),
            text
        ));
        assert!(!hands_back(404, &back, text));
    }

    /// A model of the registry's Confluent-compatible API: levels by subject, content ids,
    /// versions by subject; `judge` says whether a schema is compatible with the latest
    /// version (None: the registry enforces nothing), `deny` answers 403 to writes.
    #[derive(Default)]
    struct Model {
        judge: Option<fn(&str) -> bool>,
        deny: bool,
        state: RefCell<ModelState>,
    }

    #[derive(Default)]
    struct ModelState {
        calls: Vec<(Method, String)>,
        config: Option<String>,
        contents: Vec<String>,
        versions: Vec<u32>,
    }

    impl Model {
        fn judging(judge: fn(&str) -> bool) -> Model {
            Model {
                judge: Some(judge),
                ..Model::default()
            }
        }

        fn compatible(&self, schema: &str, versions: &[u32]) -> bool {
            versions.is_empty() || self.judge.is_none_or(|judge| judge(schema))
        }
    }

    impl Api for Model {
        async fn call(
            &self,
            method: Method,
            path: &str,
            body: Option<Value>,
        ) -> Result<(u16, Value)> {
            let mut s = self.state.borrow_mut();
            s.calls.push((method.clone(), path.to_string()));
            if self.deny && method != Method::GET {
                return Ok((403, json!("RBAC: access denied")));
            }
            let schema = body
                .as_ref()
                .and_then(|b| b["schema"].as_str())
                .map(str::to_string);
            Ok(match (method, path) {
                (Method::PUT, "/config/s") => {
                    let level = body.unwrap()["compatibility"].clone();
                    s.config = level.as_str().map(str::to_string);
                    (200, json!({ "compatibility": level }))
                }
                (Method::GET, "/config/s") => (200, json!({ "compatibilityLevel": s.config })),
                (Method::POST, "/subjects/s/versions") => {
                    let schema = schema.unwrap();
                    let known = s.contents.iter().position(|c| *c == schema);
                    let id = known.map(|i| i as u32 + 1);
                    if let Some(id) = id.filter(|id| s.versions.contains(id)) {
                        (200, json!({ "id": id }))
                    } else if !self.compatible(&schema, &s.versions) {
                        (
                            409,
                            json!({ "error_code": 409, "message": "Incompatible artifact" }),
                        )
                    } else {
                        let id = id.unwrap_or_else(|| {
                            s.contents.push(schema);
                            s.contents.len() as u32
                        });
                        s.versions.push(id);
                        (200, json!({ "id": id }))
                    }
                }
                (Method::GET, p) if p.starts_with("/schemas/ids/") => {
                    let id: usize = p["/schemas/ids/".len()..].parse().unwrap();
                    match s.contents.get(id - 1) {
                        Some(schema) => (200, json!({ "schema": schema })),
                        None => (404, json!({ "error_code": 40403 })),
                    }
                }
                (Method::POST, "/compatibility/subjects/s/versions/latest") => {
                    let ok = self.compatible(&schema.unwrap(), &s.versions);
                    (200, json!({ "is_compatible": ok }))
                }
                (m, p) => (404, json!({ "message": format!("no route {m} {p}") })),
            })
        }
    }

    fn plan() -> Plan {
        let schema = |name: &str, text: &str| Schema {
            name: name.into(),
            text: text.into(),
        };
        Plan {
            subject: "s".into(),
            level: "BACKWARD".into(),
            schema: schema("v1.json", r#"{"title": "v1"}"#),
            compatible: vec![schema("v2.json", r#"{"title": "v2"}"#)],
            refused: vec![schema("v3.json", r#"{"title": "v3"}"#)],
        }
    }

    /// Only v3 is incompatible.
    fn backward(schema: &str) -> bool {
        !schema.contains("v3")
    }

    fn run_against(model: &Model) -> (Result<u32>, Vec<String>) {
        let mut lines = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = runtime.block_on(register(model, &plan(), &mut |l| lines.push(l)));
        (result, lines)
    }

    #[test]
    fn registers_v1_alone_and_checks_the_evolutions() {
        let model = Model::judging(backward);
        let (result, lines) = run_against(&model);
        assert_eq!(result.unwrap(), 1);
        assert_eq!(
            lines,
            [
                "s: compatibility BACKWARD",
                "s: v1.json registered, id 1",
                "s: schema id 1 reads back as v1.json",
                "s: v2.json is compatible (BACKWARD), not registered",
                "s: v3.json refused (409): Incompatible artifact",
                "s: ready, schema id 1",
            ]
        );
        let s = model.state.borrow();
        assert_eq!(s.versions, [1], "v1 is the only version");
        assert_eq!(s.config.as_deref(), Some("BACKWARD"));
        let calls: Vec<String> = s.calls.iter().map(|(m, p)| format!("{m} {p}")).collect();
        assert_eq!(
            calls,
            [
                "PUT /config/s",
                "POST /subjects/s/versions",
                "GET /schemas/ids/1",
                "POST /compatibility/subjects/s/versions/latest",
                "POST /compatibility/subjects/s/versions/latest",
                "POST /subjects/s/versions",
                "GET /config/s",
            ]
        );
        drop(s);
        // A rerun (post-upgrade): the same id, nothing written.
        let (result, _) = run_against(&model);
        assert_eq!(result.unwrap(), 1);
        assert_eq!(model.state.borrow().versions, [1]);
    }

    #[test]
    fn fails_when_the_registry_enforces_nothing() {
        let model = Model::default();
        let e = format!("{:#}", run_against(&model).0.unwrap_err());
        assert!(e.contains("v3.json must not be BACKWARD-compatible"), "{e}");
        assert_eq!(model.state.borrow().versions, [1], "v3 not even tried");
    }

    #[test]
    fn fails_when_v2_is_judged_incompatible() {
        let model = Model::judging(|_| false);
        let e = format!("{:#}", run_against(&model).0.unwrap_err());
        assert!(e.contains("v2.json must be BACKWARD-compatible"), "{e}");
    }

    #[test]
    fn fails_when_the_registry_accepts_a_refused_schema_after_judging_it() {
        // The compatibility check says no, the registration says yes.
        struct Lying(Model);
        impl Api for Lying {
            async fn call(
                &self,
                method: Method,
                path: &str,
                body: Option<Value>,
            ) -> Result<(u16, Value)> {
                if path.starts_with("/compatibility/")
                    && body.as_ref().is_some_and(|b| b.to_string().contains("v3"))
                {
                    return Ok((200, json!({ "is_compatible": false })));
                }
                self.0.call(method, path, body).await
            }
        }
        let lying = Lying(Model::default());
        let mut lines = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = runtime
            .block_on(register(&lying, &plan(), &mut |l| lines.push(l)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("v3.json was registered under s"), "{e}");
        assert!(e.contains("does not enforce BACKWARD"), "{e}");
    }

    #[test]
    fn fails_with_a_hint_when_writes_are_refused() {
        let model = Model {
            deny: true,
            ..Model::judging(backward)
        };
        let e = format!("{:#}", run_against(&model).0.unwrap_err());
        assert!(e.contains("got 403"), "{e}");
        assert!(
            e.contains("AuthorizationPolicy refused this identity"),
            "{e}"
        );
    }

    #[test]
    fn the_command_line() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::try_parse_from([
            "x",
            "--registry",
            "http://r/apis/ccompat/v7",
            "--schema",
            "v1.json",
            "--compatible",
            "v2.json",
            "v2b.json",
            "--refused",
            "v3.json",
            "--refused",
            "v3b.json",
            "--wait-secs",
            "20",
        ])
        .unwrap();
        let args = cli.args;
        assert_eq!(args.subject, "events-value");
        assert_eq!(args.compatibility, "BACKWARD");
        assert_eq!(
            args.compatible,
            [PathBuf::from("v2.json"), PathBuf::from("v2b.json")]
        );
        assert_eq!(
            args.refused,
            [PathBuf::from("v3.json"), PathBuf::from("v3b.json")]
        );
        assert_eq!(args.wait_secs, 20);
    }
}
