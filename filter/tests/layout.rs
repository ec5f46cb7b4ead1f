//! The core's layout is a one-way path: every module's `crate::`, `super::` and child
//! paths are read from the sources, and the module graph must have no cycle, with each
//! top-level module importing only those below it in [`LAYERS`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules, lowest first: a module may import its own layer and those before.
const LAYERS: &[&[&str]] = &[
    &["heap", "labels"],
    &["config", "wire"],
    &["decode"],
    &["act"],
    &["exchange"],
    &["metrics"],
    &["contract", "vm"],
    &["glue"],
];

/// Module path (`decode::kafka::walker`) -> source, without its unit tests and comments.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let Some(rel) = rel.strip_suffix(".rs") else {
                continue;
            };
            let name = rel.trim_end_matches("/mod").replace('/', "::");
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            // `mod child;` declares a module, it does not import one.
            let code: Vec<&str> = text
                .lines()
                .filter(|l| {
                    !l.trim_start()
                        .trim_start_matches("pub ")
                        .starts_with("mod ")
                })
                .map(|l| l.split("//").next().unwrap())
                .collect();
            out.insert(name, code.join("\n"));
        }
    }
    out
}

/// The modules `name` refers to: the longest module prefix of each path it names.
fn imports(name: &str, code: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let parent: Vec<&str> = name
        .rsplit_once("::")
        .map_or(vec![], |(p, _)| p.split("::").collect());
    let own: Vec<&str> = if name == "lib" {
        vec![]
    } else {
        name.split("::").collect()
    };
    let mut found = BTreeSet::new();
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| !w.is_empty())
        .collect();
    for word in words {
        let mut parts: Vec<&str> = word.split("::").filter(|p| !p.is_empty()).collect();
        let mut base = match parts.first() {
            Some(&"crate") => vec![],
            Some(&"super") => parent.clone(),
            // A child named in its parent (`pub use child::Thing`).
            Some(first) if all.contains_key(&[&own[..], &[*first]].concat().join("::")) => {
                own.clone()
            }
            _ => continue,
        };
        if matches!(parts.first(), Some(&"crate" | &"super")) {
            parts.remove(0);
        }
        base.extend(parts);
        for end in (1..=base.len()).rev() {
            let target = base[..end].join("::");
            if all.contains_key(&target) && target != name {
                found.insert(target);
                break;
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let all = modules();
    all.iter()
        .filter(|(name, _)| name.as_str() != "lib")
        .map(|(name, code)| (name.clone(), imports(name, code, &all)))
        .collect()
}

fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap();
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("module `{top}` is in no layer of tests/layout.rs"))
}

#[test]
fn modules_form_no_cycle() {
    let graph = graph();
    // Depth-first search, colouring modules in progress.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(i) = path.iter().position(|p| *p == m) {
            panic!("import cycle: {} -> {m}", path[i..].join(" -> "));
        }
        path.push(m);
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(m);
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
    assert!(graph.len() > 20, "read {} modules", graph.len());
}

#[test]
fn data_flows_one_way() {
    for (module, imports) in graph() {
        for import in imports {
            assert!(
                layer(&import) <= layer(&module),
                "`{module}` imports `{import}`, a later layer (tests/layout.rs LAYERS)"
            );
        }
    }
}

#[test]
fn only_the_glue_touches_the_host() {
    for (module, code) in modules() {
        let hostful = code.contains("proxy_wasm") || code.contains("extern \"C\"");
        assert!(
            !hostful || module == "lib" || module.starts_with("glue"),
            "`{module}` calls the host: only glue/ may"
        );
    }
}
