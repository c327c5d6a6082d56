//! `docs/perturbations.md` carries a table rendered from the registry. This test renders it
//! again and fails when the doc has drifted; `UPDATE_DOCS=1 cargo test -p clarity-perturb`
//! rewrites the block between the markers instead.

use std::path::PathBuf;

use clarity_perturb::{DefaultValue, ParamKind, ParamValue, Perturbation, registry};

const BEGIN: &str = "<!-- BEGIN kernel table: generated from the registry by crates/clarity-perturb/tests/it/docs.rs; regenerate with `UPDATE_DOCS=1 cargo test -p clarity-perturb` -->";
const END: &str = "<!-- END kernel table -->";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/perturbations.md")
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn value(v: &ParamValue) -> String {
    match v {
        ParamValue::Num(x) => x.to_string(),
        ParamValue::Text(s) => s.clone(),
    }
}

fn default_value(v: DefaultValue) -> String {
    value(&v.to_value())
}

fn range(kind: ParamKind) -> String {
    match kind {
        ParamKind::Float { min, max } => format!("[{min}, {max}]"),
        ParamKind::Int { min, max } => format!("{min}..={max} (integer)"),
        ParamKind::Choice(names) => names.join(", "),
    }
}

/// The identity condition, worked out from `is_identity` itself: starting from the middle
/// preset, does setting one identity-valued parameter suffice ("or") or must all be set ("and")?
fn identity(k: &dyn Perturbation) -> String {
    let with_id: Vec<_> = k.params().iter().filter(|s| s.identity.is_some()).collect();
    let terms: Vec<String> = with_id
        .iter()
        .map(|s| format!("`{} = {}`", s.name, default_value(s.identity.unwrap())))
        .collect();
    let alone_suffices = |s: &&&clarity_perturb::ParamSpec| {
        let mut p = k.presets()[2].clone();
        p.insert(s.name.to_string(), s.identity.unwrap().to_value());
        k.is_identity(&k.resolve(&p).unwrap())
    };
    let joiner = if with_id.iter().all(|s| alone_suffices(&s)) {
        " or "
    } else {
        " and "
    };
    terms.join(joiner)
}

/// Presets as one line per parameter that varies across levels, then the constant ones.
fn presets(k: &dyn Perturbation) -> String {
    let ps = k.presets();
    let mut varying = Vec::new();
    let mut fixed = Vec::new();
    for s in k.params() {
        let vals: Vec<Option<&ParamValue>> = ps.iter().map(|p| p.get(s.name)).collect();
        if vals.iter().all(|v| v.is_none()) {
            continue;
        }
        let shown: Vec<String> = vals
            .iter()
            .map(|v| v.map_or_else(|| default_value(s.default), value))
            .collect();
        if shown.iter().all(|v| *v == shown[0]) {
            fixed.push(format!("{} = {}", s.name, shown[0]));
        } else {
            varying.push(format!("{}: {}", s.name, shown.join(" / ")));
        }
    }
    if !fixed.is_empty() {
        varying.push(format!("(all levels: {})", fixed.join(", ")));
    }
    varying.join("<br>")
}

/// `Family` in its snake_case (serialised) spelling.
fn family(k: &dyn Perturbation) -> String {
    use clarity_perturb::Family::*;
    match k.family() {
        Photometric => "photometric",
        Blur => "blur",
        Noise => "noise",
        Resolution => "resolution",
        Geometry => "geometry",
        Occlusion => "occlusion",
        RegionMask => "region_mask",
    }
    .to_string()
}

fn render() -> String {
    let mut out = String::new();
    out.push_str(
        "| kernel | v | family | random | parameters (unit) | identity | severity presets 1 → 5 | what it does | what it models clinically |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for k in registry().iter() {
        let params: Vec<String> = k
            .params()
            .iter()
            .map(|s| {
                let unit = if s.unit.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", s.unit)
                };
                format!("`{}`{unit} {}", s.name, range(s.kind))
            })
            .collect();
        let (does, models) = k
            .description()
            .split_once(": ")
            .unwrap_or((k.description(), ""));
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            k.name(),
            k.version(),
            family(k),
            if k.is_random() { "yes" } else { "no" },
            cell(&params.join("<br>")),
            cell(&identity(k)),
            cell(&presets(k)),
            cell(does),
            cell(models),
        ));
    }
    out.push_str("\nParameters in detail:\n\n");
    out.push_str("| kernel | parameter | unit | range | default | identity | meaning |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for k in registry().iter() {
        for s in k.params() {
            out.push_str(&format!(
                "| `{}` | `{}` | {} | {} | {} | {} | {} |\n",
                k.name(),
                s.name,
                cell(s.unit),
                cell(&range(s.kind)),
                cell(&default_value(s.default)),
                s.identity.map_or_else(|| "—".to_string(), default_value),
                cell(s.doc),
            ));
        }
    }
    out
}

#[test]
fn perturbations_doc_table_matches_the_registry() {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!(
            "{}: markers not found; the table sits between\n{BEGIN}\nand\n{END}",
            path.display()
        );
    };
    let start = b + BEGIN.len();
    let current = doc[start..e].trim_matches('\n');
    let fresh = render();
    let fresh = fresh.trim_matches('\n');
    if current == fresh {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}\n{fresh}\n{}", &doc[..start], &doc[e..]);
        std::fs::write(&path, updated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("updated {}", path.display());
        return;
    }
    let first_diff = current
        .lines()
        .zip(fresh.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(current.lines().count().min(fresh.lines().count()));
    panic!(
        "{} is out of date with the kernel registry (first difference at table line {}).\n\
         Regenerate it with: UPDATE_DOCS=1 cargo test -p clarity-perturb\n\
         expected: {:?}\n\
         found:    {:?}",
        path.display(),
        first_diff + 1,
        fresh.lines().nth(first_diff),
        current.lines().nth(first_diff),
    );
}
