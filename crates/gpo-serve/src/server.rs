//! The HTTP side: routes, the bearer token, limits, and the hand-off to the engine thread.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Semaphore};

use crate::api::{chat_reply, ApiError, ChatRequest, Limits};
use crate::engine::{Engine, Job};
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
    jobs: mpsc::Sender<Job>,
    admitted: Semaphore,
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
        let jobs = crate::engine::spawn(engine).map_err(Error::Thread)?;
        let state = Arc::new(AppState {
            admitted: Semaphore::new(cfg.max_concurrent),
            next_id: AtomicU64::new(0),
            jobs,
            cfg: cfg.clone(),
        });
        let app = Router::new()
            .route("/health", get(health))
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
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
    json_response(
        200,
        &json!({"object": "list", "data": [{
            "id": state.cfg.model_name,
            "object": "model",
            "created": now(),
            "owned_by": "gpo",
        }]}),
    )
}

async fn chat(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match answer_chat(&state, &headers, &body).await {
        Ok(v) => json_response(200, &v),
        Err(e) => {
            tracing::debug!("chat completion refused: {} {}", e.status, e.message);
            error_response(&e)
        }
    }
}

async fn answer_chat(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    authorize(&state.cfg, headers)?;
    let request: ChatRequest = serde_json::from_slice(body).map_err(|e| ApiError {
        status: 400,
        message: format!("the body is not a chat-completions request: {e}"),
        param: None,
        code: "invalid_request_error",
    })?;
    let generation =
        request.generation(&state.cfg.model_name, &state.cfg.limits, rand::random())?;
    let _permit = state.admitted.try_acquire().map_err(|_| ApiError {
        status: 429,
        message: format!(
            "{} requests are already in progress (the server's --max-concurrent); retry later",
            state.cfg.max_concurrent
        ),
        param: None,
        code: "rate_limit_exceeded",
    })?;
    let (reply, answered) = oneshot::channel();
    let gone = || ApiError {
        status: 500,
        message: "the engine thread stopped".into(),
        param: None,
        code: "server_error",
    };
    state
        .jobs
        .send(Job { generation, reply })
        .map_err(|_| gone())?;
    let (prompt_tokens, choices) = answered.await.map_err(|_| gone())??;
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    Ok(chat_reply(
        id,
        now(),
        &state.cfg.model_name,
        prompt_tokens,
        &choices,
    ))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
