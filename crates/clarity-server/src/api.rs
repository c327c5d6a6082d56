//! The JSON API under `/api/v1` (documented in docs/api.md and `openapi.json`).

use std::convert::Infallible;
use std::path::PathBuf;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::rejection;
use crate::jobs::JobKind;
use crate::paths::{discover_configs, discover_sweeps, resolve_under};
use crate::sweeps::{RunFilter, Which};
use crate::{ApiError, AppState};

/// Runs blocking work (file reads, loading sweeps, regenerating images) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

/// Resolves a sweep id to its directory (under the root, a sweep directory).
pub fn sweep_dir(state: &AppState, id: &str) -> Result<PathBuf, ApiError> {
    let dir = resolve_under(state.root(), id)?;
    if !dir.is_dir() || clarity_analysis::io::detect(&dir).is_err() {
        return Err(ApiError::not_found(format!(
            "`{id}`: not a sweep directory (no plan.json and no sweep_manifest.json)"
        )));
    }
    Ok(dir)
}

fn path_param<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(rejection)
}

pub async fn list_sweeps(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = state.clone();
    let list = blocking(move || {
        Ok(discover_sweeps(s.root())
            .iter()
            .map(|d| crate::sweeps::summary(&s.0.sweeps, s.root(), d, s.0.jobs.running_in(d)))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(
        json!({ "root": state.root().display().to_string(), "sweeps": list }),
    ))
}

fn read_opt(dir: &std::path::Path, name: &str) -> Result<Value, ApiError> {
    let p = dir.join(name);
    match std::fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| ApiError::internal(format!("{name}: invalid JSON: {e}"))),
        Err(_) => Ok(Value::Null),
    }
}

/// Plain files directly in `dir` (artifacts), sorted.
pub fn files_of(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

pub async fn open_sweep(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = path_param(id)?;
    let dir = sweep_dir(&state, &id)?;
    let s = state.clone();
    blocking(move || {
        let running = s.0.jobs.running_in(&dir);
        let mut v = crate::sweeps::summary(&s.0.sweeps, s.root(), &dir, running);
        for (key, file) in [
            ("plan", "plan.json"),
            ("metrics", "metrics.json"),
            ("surface", "surface.json"),
            ("gradients", "gradients.json"),
            ("cliffs", "cliffs.json"),
            ("montecarlo", "montecarlo.json"),
            ("refine", "refine.json"),
            ("probe", "probe.json"),
        ] {
            v[key] = read_opt(&dir, file)?;
        }
        v["files"] = json!(files_of(&dir));
        Ok(Json(v))
    })
    .await
}

pub async fn runs(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<RunFilter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = path_param(id)?;
    let Query(filter) = q.map_err(rejection)?;
    let dir = sweep_dir(&state, &id)?;
    let s = state.clone();
    blocking(move || {
        let table = s.0.sweeps.runs(&dir)?;
        let page = filter.apply(&table)?;
        Ok(Json(
            serde_json::to_value(&page).map_err(|e| ApiError::internal(e.to_string()))?,
        ))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ImageQuery {
    pub case: String,
    pub cell: usize,
    pub seed: u64,
    /// `baseline` or `perturbed` (default).
    #[serde(default)]
    pub which: Option<String>,
    /// `saliency`: the image with the run's saliency map blended in.
    #[serde(default)]
    pub overlay: Option<String>,
    /// `LO,HI`: display window over sample values (an 8-bit PNG; for 16-bit sources).
    #[serde(default)]
    pub window: Option<String>,
}

pub async fn image(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ImageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = path_param(id)?;
    let Query(q) = q.map_err(rejection)?;
    let which = match q.which.as_deref() {
        None | Some("perturbed") => Which::Perturbed,
        Some("baseline") => Which::Baseline,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "`which`: expected baseline or perturbed, got `{o}`"
            )));
        }
    };
    let overlay = match q.overlay.as_deref() {
        None | Some("") | Some("none") => false,
        Some("saliency") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "`overlay`: expected saliency or none, got `{o}`"
            )));
        }
    };
    let window = q
        .window
        .as_deref()
        .filter(|w| !w.is_empty())
        .map(crate::sweeps::Window::parse)
        .transpose()?;
    let dir = sweep_dir(&state, &id)?;
    let s = state.clone();
    let (mime, bytes) = blocking(move || {
        crate::sweeps::run_image(
            &s.0.sweeps,
            s.root(),
            &dir,
            &q.case,
            q.cell,
            q.seed,
            which,
            overlay,
            window,
        )
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}

fn mime_of(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        Some("csv") => "text/csv; charset=utf-8",
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("txt") | Some("md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Subdirectories of a sweep whose files are served too (the probe's overlay PNGs).
const SERVED_SUBDIRS: &[&str] = &[clarity_probe::OVERLAY_DIR];

/// Is `name` a plain file name (not empty, not hidden, no separator)?
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.contains('\\') && !name.starts_with('.')
}

/// An artifact of the sweep (a plain file directly in its directory, e.g. `report.html`, or in
/// one of [`SERVED_SUBDIRS`], e.g. `overlays/case-0001.png`).
pub async fn file(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (id, name) = path_param(p)?;
    let dir = sweep_dir(&state, &id)?;
    let ok = match name.split_once('/') {
        Some((sub, file)) => SERVED_SUBDIRS.contains(&sub) && plain_name(file),
        None => plain_name(&name),
    };
    if !ok {
        return Err(ApiError::forbidden(format!(
            "`{name}`: expected the name of a file in the sweep directory or in its {}/",
            SERVED_SUBDIRS.join("/, ")
        )));
    }
    let real = std::fs::canonicalize(dir.join(&name))
        .map_err(|_| ApiError::not_found(format!("`{name}`: no such file in the sweep")))?;
    if !real.starts_with(state.root()) || !real.starts_with(&dir) {
        return Err(ApiError::forbidden(format!(
            "`{name}`: resolves outside the sweep directory"
        )));
    }
    if !real.is_file() {
        return Err(ApiError::not_found(format!("`{name}`: not a file")));
    }
    let bytes = tokio::fs::read(&real)
        .await
        .map_err(|e| ApiError::internal(format!("`{name}`: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, mime_of(&name)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Artifacts are shown as documents of their own: no scripts, nothing remote.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox",
            ),
        ],
        bytes,
    )
        .into_response())
}

pub async fn configs(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = state.clone();
    let list = blocking(move || Ok(discover_configs(s.root()))).await?;
    Ok(Json(json!({ "configs": list })))
}

pub async fn list_jobs(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "jobs": state.0.jobs.all() }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartJob {
    /// `run` (default), `probe`, `resume` or `report`.
    #[serde(default)]
    pub kind: Option<String>,
    /// A sweep config under the root (relative path)…
    #[serde(default)]
    pub config: Option<String>,
    /// …or the text of a config (TOML), saved under the root at `save_as` and run from there.
    #[serde(default)]
    pub toml: Option<String>,
    #[serde(default)]
    pub save_as: Option<String>,
    /// `resume`, `probe` and `report`: a sweep directory's id; its config is the one under
    /// the root that plans it (as for its images).
    #[serde(default)]
    pub sweep: Option<String>,
    /// A scoped probe (`probe` with `sweep`): the case…
    #[serde(default)]
    pub case: Option<String>,
    /// …the cell whose image of the case is probed…
    #[serde(default)]
    pub cell: Option<usize>,
    /// …`saliency` (components) or `grid` regions (default: the config's)…
    #[serde(default)]
    pub regions: Option<String>,
    /// …tiles per side in grid mode, 1..=16 (default: the config's)…
    #[serde(default)]
    pub grid: Option<u32>,
    /// …and evidence regions kept, 1..=16 (default: the config's).
    #[serde(default)]
    pub top_k: Option<usize>,
}

/// A scoped probe's choices as posted (checked against the sweep once its config is found).
struct ScopeReq {
    case: String,
    cell: usize,
    regions: Option<clarity_probe::ScopeRegions>,
    grid: Option<u32>,
    top_k: Option<usize>,
}

impl ScopeReq {
    /// The scope (defaults from the config's `[probe]` table), validated against the
    /// prepared sweep, as `clarity probe` arguments.
    fn args(&self, prepared: &clarity_engine::Prepared) -> Result<Vec<String>, ApiError> {
        let settings = prepared.config.probe.clone().unwrap_or_default();
        let scope = clarity_probe::ProbeScope {
            case: self.case.clone(),
            cell: self.cell,
            regions: self.regions.unwrap_or(match settings.regions {
                clarity_engine::RegionMode::Grid => clarity_probe::ScopeRegions::Grid,
                _ => clarity_probe::ScopeRegions::Saliency,
            }),
            grid: self.grid.unwrap_or(settings.grid),
            top_k: self.top_k.unwrap_or(settings.top_k),
        };
        scope
            .validate(prepared)
            .map_err(|(k, m)| ApiError::bad_request(format!("`{k}`: {m}")))?;
        Ok(vec![
            format!("--case={}", scope.case),
            format!("--cell={}", scope.cell),
            format!("--regions={}", scope.regions.as_str()),
            format!("--grid={}", scope.grid),
            format!("--top-k={}", scope.top_k),
        ])
    }
}

/// What `POST /api/v1/jobs` was asked to start, before any file is touched.
enum Start {
    Config(String, JobKind),
    Posted { text: String, save_as: String },
    Sweep(String, JobKind, Option<ScopeReq>),
}

const START_SHAPES: &str = "expected {\"config\": PATH}, {\"toml\": TEXT, \"save_as\": PATH}, \
     {\"kind\": \"probe\", \"config\": PATH}, {\"kind\": \"probe\"|\"resume\"|\"report\", \"sweep\": ID} \
     or {\"kind\": \"probe\", \"sweep\": ID, \"case\": ID, \"cell\": N, \"regions\", \"grid\", \"top_k\"}";

impl StartJob {
    fn parse(self) -> Result<Start, ApiError> {
        let kind = match self.kind.as_deref() {
            None | Some("run") => JobKind::Run,
            Some("probe") => JobKind::Probe,
            Some("resume") => JobKind::Resume,
            Some("report") => JobKind::Report,
            Some(k) => {
                return Err(ApiError::bad_request(format!(
                    "`kind`: expected run, probe, resume or report, got `{k}`"
                )));
            }
        };
        let scope = self.scope()?;
        if scope.is_some() && (kind != JobKind::Probe || self.sweep.is_none()) {
            return Err(ApiError::bad_request(
                "`case`/`cell`: a scoped probe is {\"kind\": \"probe\", \"sweep\": ID, \"case\": ID, \"cell\": N}",
            ));
        }
        match (kind, self.config, self.toml, self.save_as, self.sweep) {
            (JobKind::Run | JobKind::Probe, Some(c), None, None, None) => {
                Ok(Start::Config(c, kind))
            }
            (JobKind::Run, None, Some(text), Some(save_as), None) => {
                Ok(Start::Posted { text, save_as })
            }
            (JobKind::Probe | JobKind::Resume | JobKind::Report, None, None, None, Some(id)) => {
                Ok(Start::Sweep(id, kind, scope))
            }
            _ => Err(ApiError::bad_request(START_SHAPES)),
        }
    }

    /// The scoped-probe fields: none, or `case` and `cell` (with optional regions, grid and
    /// top-k, checked for shape here and against the sweep later).
    fn scope(&self) -> Result<Option<ScopeReq>, ApiError> {
        let extra = self.regions.is_some() || self.grid.is_some() || self.top_k.is_some();
        match (&self.case, self.cell) {
            (None, None) if !extra => Ok(None),
            (Some(case), Some(cell)) => Ok(Some(ScopeReq {
                case: case.clone(),
                cell,
                regions: self
                    .regions
                    .as_deref()
                    .map(clarity_probe::ScopeRegions::parse)
                    .transpose()
                    .map_err(|m| ApiError::bad_request(format!("`regions`: {m}")))?,
                grid: self.grid,
                top_k: self.top_k,
            })),
            (None, _) => Err(ApiError::bad_request(
                "`case`: a scoped probe names the case (and the cell)",
            )),
            (Some(_), None) => Err(ApiError::bad_request(
                "`cell`: a scoped probe names the cell (and the case)",
            )),
        }
    }
}

pub async fn start_job(
    State(state): State<AppState>,
    body: Result<Json<StartJob>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(req) = body.map_err(rejection)?;
    let start = req.parse()?;
    let Some(launcher) = state.0.launcher.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this server cannot start sweeps (no launcher)",
        ));
    };
    // A sweep id is checked like every other (under the root, a sweep directory).
    let sweep = match &start {
        Start::Sweep(id, _, _) => Some(sweep_dir(&state, id)?),
        _ => None,
    };
    let s = state.clone();
    let p = blocking(move || {
        let (rel, kind, args) = match start {
            Start::Config(rel, kind) => (rel, kind, Vec::new()),
            Start::Posted { text, save_as } => {
                crate::posted::save(s.root(), &save_as, &text)?;
                (save_as, JobKind::Run, Vec::new())
            }
            Start::Sweep(_, JobKind::Report, _) => {
                // The config only adds thumbnails: a sweep without one is reported too.
                let dir = sweep.expect("resolved above");
                let config = crate::sweeps::find_config(s.root(), &dir)
                    .ok()
                    .map(|(rel, _)| (rel.clone(), s.root().join(rel)));
                return crate::jobs::start_report(&s.0.jobs, s.root(), &launcher, dir, config);
            }
            Start::Sweep(id, kind, scope) => {
                let dir = sweep.expect("resolved above");
                let (rel, prepared) = crate::sweeps::find_config(s.root(), &dir).map_err(|e| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        format!("`{id}`: {e} to {} it", kind.verb()),
                    )
                })?;
                let args = match scope {
                    Some(sc) => sc.args(&prepared)?,
                    None => Vec::new(),
                };
                (rel, kind, args)
            }
        };
        crate::jobs::start(&s.0.jobs, s.root(), &launcher, &rel, kind, args)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!(p))))
}

fn job_id(p: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let s = path_param(p)?;
    s.parse()
        .map_err(|_| ApiError::not_found(format!("no job `{s}`")))
}

pub async fn job(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(p)?;
    let job = state
        .0
        .jobs
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    Ok(Json(json!(job.progress())))
}

/// `progress` events until the job ends (the last event has a final `status`).
pub async fn job_events(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = job_id(p)?;
    let job = state
        .0
        .jobs
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let rx = job.subscribe();
    let stream =
        futures_util::stream::unfold((rx, true, false), |(mut rx, first, ended)| async move {
            if ended {
                return None;
            }
            if !first && rx.changed().await.is_err() {
                return None;
            }
            let p = rx.borrow_and_update().clone();
            let terminal = p.status != "running";
            let event = Event::default()
                .event("progress")
                .json_data(&p)
                .unwrap_or_else(|_| Event::default().event("progress"));
            Some((Ok(event), (rx, false, terminal)))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

pub async fn cancel_job(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(p)?;
    Ok(Json(json!(state.0.jobs.cancel(id)?)))
}

#[derive(Debug, Deserialize)]
pub struct CompareQuery {
    pub a: String,
    pub b: String,
}

pub async fn compare(
    State(state): State<AppState>,
    q: Result<Query<CompareQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(rejection)?;
    let (a, b) = (sweep_dir(&state, &q.a)?, sweep_dir(&state, &q.b)?);
    let c = blocking(move || crate::compare::compare(&a, &b, (&q.a, &q.b))).await?;
    Ok(Json(json!(c)))
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI).into_response()
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}
