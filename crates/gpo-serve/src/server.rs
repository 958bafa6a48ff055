//! The HTTP side: routes, the bearer token, limits, and the hand-off to the engine thread.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Semaphore};

use crate::api::{chat_chunk, chat_reply, ApiError, ChatRequest, ChunkDelta, Generation, Limits};
use crate::completions::{completion_chunk, completion_reply, CompletionRequest};
use crate::engine::{Answer, Engine, Job, Names};
use crate::stream::StreamEvent;
use crate::Error;

/// How the server listens and what it accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// The address to bind: loopback unless told otherwise.
    pub host: IpAddr,
    /// The port (0: any free one).
    pub port: u16,
    /// The name clients ask for in `model`, listed by `GET /v1/models`.
    pub model_name: String,
    /// When set, every `/v1` request needs `Authorization: Bearer <this>` (401 otherwise).
    pub api_key: Option<String>,
    /// Per-request limits.
    pub limits: Limits,
    /// Requests admitted at once (queued for the engine or generating); more get 429.
    pub max_concurrent: usize,
    /// Largest request body in bytes (413 above it).
    pub max_body_bytes: usize,
}

impl ServeConfig {
    /// Loopback on port 8000, no token, `model_name` served, 4096 tokens per choice at most
    /// (256 when a request does not say), 16 choices, 64 requests at once, 1 MiB bodies.
    pub fn new(model_name: &str) -> Self {
        ServeConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8000,
            model_name: model_name.to_string(),
            api_key: None,
            limits: Limits {
                max_tokens: 4096,
                default_max_tokens: 256,
                max_n: 16,
            },
            max_concurrent: 64,
            max_body_bytes: 1 << 20,
        }
    }
}

struct AppState {
    cfg: ServeConfig,
    names: Names,
    jobs: mpsc::Sender<Job>,
    admitted: Arc<Semaphore>,
    next_id: AtomicU64,
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    app: Router,
}

impl Server {
    /// Binds `cfg`'s address and starts `engine`'s thread; nothing is answered until
    /// [`Server::run`].
    pub fn bind(cfg: ServeConfig, engine: Engine) -> Result<Server, Error> {
        if cfg.max_concurrent == 0 {
            return Err(Error::Config("--max-concurrent must be at least 1".into()));
        }
        let addr = SocketAddr::new(cfg.host, cfg.port);
        let listener = TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| Error::Bind { addr, source })?;
        let names = engine.names();
        let jobs = crate::engine::spawn(engine).map_err(Error::Thread)?;
        let state = Arc::new(AppState {
            names,
            admitted: Arc::new(Semaphore::new(cfg.max_concurrent)),
            next_id: AtomicU64::new(0),
            jobs,
            cfg: cfg.clone(),
        });
        let app = Router::new()
            .route("/health", get(health))
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .route("/v1/load_lora_adapter", post(load_adapter))
            .route("/v1/unload_lora_adapter", post(unload_adapter))
            .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
            .with_state(state);
        Ok(Server { listener, app })
    }

    /// The address it listens on (with the port chosen when the config said 0).
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener.local_addr().map_err(Error::Thread)
    }

    /// Answers requests until the process ends.
    pub fn run(self) -> Result<(), Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(Error::Thread)?;
        runtime.block_on(async move {
            let listener =
                tokio::net::TcpListener::from_std(self.listener).map_err(Error::Thread)?;
            axum::serve(listener, self.app).await.map_err(Error::Thread)
        })
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.status, &e.body())
}

/// The bearer token matches (compared without an early exit), or no token is configured.
fn authorize(cfg: &ServeConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &cfg.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same = given.len() == key.len()
        && given
            .bytes()
            .zip(key.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    match same {
        true => Ok(()),
        false => Err(ApiError {
            status: 401,
            message: "missing or wrong API key: send `Authorization: Bearer <key>`".into(),
            param: None,
            code: "invalid_api_key",
        }),
    }
}

async fn health() -> Response {
    json_response(200, &json!({"status": "ok"}))
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&state.cfg, &headers) {
        return error_response(&e);
    }
    let created = now();
    let data: Vec<Value> = state
        .known()
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": "gpo"}))
        .collect();
    json_response(200, &json!({"object": "list", "data": data}))
}

fn reply(result: Result<Value, ApiError>, what: &str) -> Response {
    match result {
        Ok(v) => json_response(200, &v),
        Err(e) => {
            tracing::debug!("{what} refused: {} {}", e.status, e.message);
            error_response(&e)
        }
    }
}

async fn chat(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let (generation, name) = match chat_generation(&state, &headers, &body) {
        Ok(checked) => checked,
        Err(e) => return reply(Err(e), "chat completion"),
    };
    if generation.stream {
        return stream_reply(&state, generation, name, Endpoint::Chat).await;
    }
    reply(
        answer_chat(&state, generation, name).await,
        "chat completion",
    )
}

async fn completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (generation, name, token_ids) = match completion_generation(&state, &headers, &body) {
        Ok(checked) => checked,
        Err(e) => return reply(Err(e), "completion"),
    };
    if generation.stream {
        return stream_reply(&state, generation, name, Endpoint::Completions).await;
    }
    reply(
        answer_completion(&state, generation, name, token_ids).await,
        "completion",
    )
}

/// Which API a streamed reply speaks.
#[derive(Clone, Copy)]
enum Endpoint {
    Chat,
    Completions,
}

fn too_busy(cfg: &ServeConfig) -> ApiError {
    ApiError {
        status: 429,
        message: format!(
            "{} requests are already in progress (the server's --max-concurrent); retry later",
            cfg.max_concurrent
        ),
        param: None,
        code: "rate_limit_exceeded",
    }
}

/// Server-sent events of `generation`: a chunk per piece of text and per finish, then
/// `data: [DONE]`. A request the engine refuses before any text gets its JSON error instead.
async fn stream_reply(
    state: &AppState,
    generation: Generation,
    name: String,
    endpoint: Endpoint,
) -> Response {
    let Ok(permit) = state.admitted.clone().try_acquire_owned() else {
        return error_response(&too_busy(&state.cfg));
    };
    let with_logprobs = generation.logprobs;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    if state.jobs.send(Job::Stream(generation, tx)).is_err() {
        return error_response(&engine_gone());
    }
    let first = match events.recv().await {
        None => return error_response(&engine_gone()),
        Some(StreamEvent::Error(e)) => return error_response(&e),
        Some(event) => event,
    };
    let (id, created) = (state.next_id.fetch_add(1, Ordering::Relaxed), now());
    let mut opened = std::collections::HashSet::new();
    let chunks = move |event: StreamEvent| -> Vec<Value> {
        let (index, delta) = match &event {
            StreamEvent::Error(e) => return vec![e.body()],
            StreamEvent::Text {
                index,
                text,
                logprobs,
            } => (
                *index,
                ChunkDelta::Text(text, with_logprobs.then_some(logprobs.as_slice())),
            ),
            StreamEvent::Finish { index, reason } => (*index, ChunkDelta::Finish(reason)),
        };
        let chunk = |delta| match endpoint {
            Endpoint::Chat => chat_chunk(id, created, &name, index, delta),
            Endpoint::Completions => completion_chunk(id, created, &name, index, delta),
        };
        let mut out = Vec::new();
        if matches!(endpoint, Endpoint::Chat) && opened.insert(index) {
            out.push(chunk(ChunkDelta::Role));
        }
        out.push(chunk(delta));
        out
    };
    let rest = futures_util::stream::unfold(events, |mut events| async move {
        events.recv().await.map(|e| (e, events))
    });
    let body = futures_util::stream::once(async move { first })
        .chain(rest)
        .map(chunks)
        .flat_map(|values| {
            futures_util::stream::iter(
                values
                    .into_iter()
                    .map(|v| Event::default().data(v.to_string())),
            )
        })
        .chain(futures_util::stream::once(async move {
            // The request counts against --max-concurrent until its last event.
            drop(permit);
            Event::default().data("[DONE]")
        }))
        .map(Ok::<Event, std::convert::Infallible>);
    Sse::new(body).into_response()
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError {
        status: 400,
        message: format!("the body is not a {what} request: {e}"),
        param: None,
        code: "invalid_request_error",
    })
}

fn engine_gone() -> ApiError {
    ApiError {
        status: 500,
        message: "the engine thread stopped".into(),
        param: None,
        code: "server_error",
    }
}

impl AppState {
    fn known(&self) -> Vec<String> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Admits `generation` (429 past `--max-concurrent`) and waits for the engine's answer.
    async fn generate(&self, generation: Generation) -> Answer {
        let _permit = self
            .admitted
            .try_acquire()
            .map_err(|_| too_busy(&self.cfg))?;
        let (tx, answered) = oneshot::channel();
        self.jobs
            .send(Job::Generate(generation, tx))
            .map_err(|_| engine_gone())?;
        answered.await.map_err(|_| engine_gone())?
    }

    /// The name a reply reports: the model asked for, or the served one.
    fn reply_name(&self, asked: Option<&String>) -> String {
        asked
            .cloned()
            .unwrap_or_else(|| self.cfg.model_name.clone())
    }
}

/// A chat request checked, and the model name its reply reports.
fn chat_generation(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Generation, String), ApiError> {
    authorize(&state.cfg, headers)?;
    let request: ChatRequest = parse(body, "chat-completions")?;
    let generation = request.generation(&state.known(), &state.cfg.limits, rand::random())?;
    let name = state.reply_name(generation.model.as_ref());
    Ok((generation, name))
}

/// A completions request checked, the model name its reply reports, and whether it asks
/// for token ids.
fn completion_generation(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Generation, String, bool), ApiError> {
    authorize(&state.cfg, headers)?;
    let request: CompletionRequest = parse(body, "completions")?;
    let generation = request.generation(&state.known(), &state.cfg.limits, rand::random())?;
    let name = state.reply_name(generation.model.as_ref());
    Ok((generation, name, request.return_token_ids))
}

async fn answer_chat(
    state: &AppState,
    generation: Generation,
    name: String,
) -> Result<Value, ApiError> {
    let (prompt_tokens, choices) = state.generate(generation).await?;
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    Ok(chat_reply(id, now(), &name, prompt_tokens, &choices))
}

async fn answer_completion(
    state: &AppState,
    generation: Generation,
    name: String,
    token_ids: bool,
) -> Result<Value, ApiError> {
    let (prompt_tokens, choices) = state.generate(generation).await?;
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    Ok(completion_reply(
        id,
        now(),
        &name,
        prompt_tokens,
        &choices,
        token_ids,
    ))
}

/// `POST /v1/load_lora_adapter` and `/v1/unload_lora_adapter` bodies (vLLM's).
#[derive(serde::Deserialize)]
struct AdapterRequest {
    lora_name: String,
    #[serde(default)]
    lora_path: Option<String>,
    #[serde(default)]
    load_inplace: bool,
}

async fn load_adapter(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    adapter_reply(change_adapter(&state, &headers, &body, true).await)
}

async fn unload_adapter(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    adapter_reply(change_adapter(&state, &headers, &body, false).await)
}

/// Like vLLM, a plain-text line on success.
fn adapter_reply(result: Result<String, ApiError>) -> Response {
    match result {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn change_adapter(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    load: bool,
) -> Result<String, ApiError> {
    authorize(&state.cfg, headers)?;
    let r: AdapterRequest = parse(body, "LoRA adapter")?;
    let (reply, answered) = oneshot::channel();
    let name = r.lora_name.clone();
    let job = match (load, r.lora_path) {
        (true, Some(path)) => Job::Load {
            name: r.lora_name,
            path,
            inplace: r.load_inplace,
            reply,
        },
        (true, None) => {
            return Err(ApiError::invalid(
                "lora_path",
                "give the adapter's directory as lora_path",
            ))
        }
        (false, _) => Job::Unload {
            name: r.lora_name,
            reply,
        },
    };
    state.jobs.send(job).map_err(|_| engine_gone())?;
    answered.await.map_err(|_| engine_gone())??;
    Ok(match load {
        true => format!("Success: LoRA adapter '{name}' added successfully."),
        false => format!("Success: LoRA adapter '{name}' removed successfully."),
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
