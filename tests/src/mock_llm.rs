//! A scriptable mock of the OpenAI-compatible Chat Completions API, served over
//! real HTTP on 127.0.0.1 so tests exercise the real client stack (TCP, HTTP,
//! SSE parsing, retries, timeouts) without a real LLM.
//!
//! Each test starts its own [`MockLlm`], queues [`Reply`]s (or installs a
//! responder), points the code under test at [`MockLlm::base_url`] and then
//! inspects what was sent with [`MockLlm::requests`].
//!
//! Routes: `POST /v1/chat/completions` (scripted), `POST /v1/embeddings`
//! (deterministic bag-of-words vectors), `GET /v1/models`. Chat and embeddings
//! requests are recorded; everything else answers 404 with an OpenAI error.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::{IncomingStream, Listener};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The dimension of the vectors served by `POST /v1/embeddings`.
pub const EMBEDDING_DIM: usize = 384;

/// Model name echoed when a chat request names none.
const DEFAULT_MODEL: &str = "mock-model";
/// Model name echoed when an embeddings request names none.
const DEFAULT_EMBEDDING_MODEL: &str = "mock-embedding";
/// The text whose stream [`Reply::CutStream`] cuts; long enough (one chunk per
/// word) that any realistic `chunks` count is cut before the finish chunk.
const CUT_TEXT: &str = "mock LLM: this streamed reply is cut off before it reaches its \
                        end, so a client must notice that no finish chunk or DONE ever came";

/// One scripted answer to a chat completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An assistant message with this content; `finish_reason` is `"stop"`.
    Text(String),
    /// An assistant message with these tool calls and `content: null`;
    /// `finish_reason` is `"tool_calls"`.
    ToolCalls(Vec<ToolCall>),
    /// An HTTP error with this status and verbatim JSON body, plus a
    /// `Retry-After` header when given. See [`Reply::error`].
    Error {
        /// HTTP status code, e.g. 429 or 500.
        status: u16,
        /// Response body, sent verbatim as `application/json`.
        body: String,
        /// Value of the `Retry-After` header, if any (e.g. `"1"`).
        retry_after: Option<String>,
    },
    /// Accept the request and never answer; the connection stays open until
    /// the client gives up (or the mock is dropped).
    Hang,
    /// Status 200 with `content-type: application/json` and this (invalid
    /// JSON) body; for `stream: true` an SSE stream `data: <this>` followed by
    /// `data: [DONE]`, so the garbage is the only fault.
    Garbage(String),
    /// For `stream: true`, the first `chunks` SSE chunks of a text reply, then
    /// the connection is dropped mid-body (no finish chunk, no `[DONE]`); for
    /// `stream: false`, the connection is closed without any response.
    CutStream {
        /// How many SSE events (the role chunk counts as the first) to send.
        chunks: usize,
    },
    /// Any response, verbatim, whatever the request asked for.
    Raw {
        /// HTTP status code.
        status: u16,
        /// Value of the `content-type` header.
        content_type: String,
        /// Response body.
        body: String,
    },
    /// Wait this long, then answer with the inner reply.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    /// A text reply.
    pub fn text(s: impl Into<String>) -> Self {
        Self::Text(s.into())
    }

    /// A reply with a single tool call to `name` with `args` (serialised).
    pub fn tool(name: &str, args: Value) -> Self {
        Self::ToolCalls(vec![ToolCall::new(name, args)])
    }

    /// An error with an OpenAI-style body:
    /// `{"error":{"message":..,"type":..,"param":null,"code":null}}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::Error {
            status,
            body: error_body(status, message),
            retry_after: None,
        }
    }

    /// Sets the `Retry-After` header of an [`Reply::Error`] (other replies are
    /// returned unchanged), e.g. `Reply::error(429, "slow down").with_retry_after("1")`.
    pub fn with_retry_after(self, value: impl Into<String>) -> Self {
        match self {
            Self::Error { status, body, .. } => Self::Error {
                status,
                body,
                retry_after: Some(value.into()),
            },
            other => other,
        }
    }

    /// This reply, sent after waiting `delay`.
    pub fn delayed_by(self, delay: Duration) -> Self {
        Self::Delayed(delay, Box::new(self))
    }
}

/// One tool call in a [`Reply::ToolCalls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The call id, e.g. `call_mock_7`.
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments, sent verbatim (may be invalid JSON on purpose).
    pub arguments: String,
}

impl ToolCall {
    /// A call to `name` with `arguments` serialised as JSON and a fresh id.
    pub fn new(name: &str, arguments: Value) -> Self {
        Self::raw(name, &arguments.to_string())
    }

    /// A call to `name` whose arguments string is sent exactly as given.
    pub fn raw(name: &str, arguments: &str) -> Self {
        // Process-wide, so ids stay unique across tests sharing a binary.
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Self {
            id: format!("call_mock_{n}"),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        }
    }
}

/// A request the mock received (chat completions or embeddings).
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The JSON body; a body that is not JSON is kept as a JSON string.
    pub body: Value,
    /// All headers, names lowercase, values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The request path, e.g. `/v1/chat/completions` or `/v1/embeddings`.
    pub path: String,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `messages` array of a chat request (empty if absent).
    pub fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }

    /// Whether this is a chat completions request.
    pub fn is_chat(&self) -> bool {
        self.path.ends_with("/chat/completions")
    }
}

/// Computes a reply from a request body when the queue is empty.
type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

/// What the handlers share with the [`MockLlm`] handles.
struct Shared {
    script: Mutex<Script>,
    /// Read without the lock: it decides whether to build a [`Recorded`] at all.
    recording: AtomicBool,
    /// Changes (to "closed") when the last [`MockLlm`] handle is dropped, which
    /// releases hanging requests.
    shutdown: watch::Receiver<()>,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    responder: Option<Responder>,
    requests: Vec<Recorded>,
    /// Chat and embeddings requests seen, recorded or not.
    total: usize,
    /// Chat requests seen: the N in `chatcmpl-mock-N` and in error messages.
    chats: usize,
}

impl Shared {
    fn script(&self) -> MutexGuard<'_, Script> {
        // A panicking test thread must not turn every later request into a panic.
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Stops the server when the last [`MockLlm`] clone is dropped.
struct Guard {
    task: tokio::task::JoinHandle<()>,
    _shutdown: watch::Sender<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Handle to a running mock server; clones share the same server and script.
#[derive(Clone)]
pub struct MockLlm {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for MockLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockLlm")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockLlm {
    /// Starts a server on `127.0.0.1:0` on the current tokio runtime. It runs
    /// until the last clone of the handle is dropped.
    pub async fn start() -> MockLlm {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("mock LLM: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("mock LLM: local address");
        let (shutdown_tx, shutdown_rx) = watch::channel(());
        let shared = Arc::new(Shared {
            script: Mutex::new(Script::default()),
            recording: AtomicBool::new(true),
            shutdown: shutdown_rx,
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/models", get(models))
            .fallback(not_found)
            // Long agent transcripts may exceed axum's 2 MB default.
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone())
            .into_make_service_with_connect_info::<Conn>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(MockListener(listener), app).await;
        });
        MockLlm {
            shared,
            addr,
            _guard: Arc::new(Guard {
                task,
                _shutdown: shutdown_tx,
            }),
        }
    }

    /// `http://127.0.0.1:PORT/v1`, the OpenAI-style base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply; each chat request takes the oldest one.
    pub fn push(&self, reply: Reply) {
        self.shared.script().queue.push_back(reply);
    }

    /// Queues several replies in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script().queue.extend(replies);
    }

    /// Computes replies from the request body once the queue is empty
    /// (replacing any previous responder).
    pub fn respond_with(&self, f: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        self.shared.script().responder = Some(Arc::new(f));
    }

    /// How many queued replies have not been taken yet.
    pub fn pending_replies(&self) -> usize {
        self.shared.script().queue.len()
    }

    /// Every recorded chat and embeddings request, in the order received.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.script().requests.clone()
    }

    /// The recorded chat completions requests only.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        let script = self.shared.script();
        script
            .requests
            .iter()
            .filter(|r| r.is_chat())
            .cloned()
            .collect()
    }

    /// The most recent recorded request.
    pub fn last_request(&self) -> Option<Recorded> {
        self.shared.script().requests.last().cloned()
    }

    /// How many chat and embeddings requests arrived (counted even while
    /// recording is off).
    pub fn request_count(&self) -> usize {
        self.shared.script().total
    }

    /// Turns recording of request bodies and headers on or off (on by default);
    /// benchmarks turn it off so memory stays flat over many requests.
    pub fn set_recording(&self, on: bool) {
        self.shared.recording.store(on, Ordering::Relaxed);
    }

    /// Forgets the recorded requests (the counters keep counting).
    pub fn clear_requests(&self) {
        self.shared.script().requests.clear();
    }
}

/// What answers a chat request, picked under the same lock that numbers and
/// records it, so request N always gets the Nth queued reply even when
/// requests run concurrently.
enum Next {
    Reply(Reply),
    Respond(Responder),
    Nothing,
}

type AppState = State<Arc<Shared>>;

async fn chat(
    State(shared): AppState,
    ConnectInfo(conn): ConnectInfo<Conn>,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let (mut body, parse_error) = parse_body(&raw);
    // Read what the answer needs now: the body may move into the record.
    let stream = body["stream"].as_bool() == Some(true);
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let model = body["model"].as_str().unwrap_or(DEFAULT_MODEL).to_owned();
    let record = shared.recording.load(Ordering::Relaxed);
    // Header strings are built outside the lock to keep it short.
    let recorded_headers = if record {
        header_pairs(&headers)
    } else {
        Vec::new()
    };
    let (n, next) = {
        let mut script = shared.script();
        script.total += 1;
        script.chats += 1;
        let n = script.chats;
        let next = if parse_error.is_some() {
            Next::Nothing
        } else if let Some(reply) = script.queue.pop_front() {
            Next::Reply(reply)
        } else if let Some(f) = &script.responder {
            Next::Respond(f.clone())
        } else {
            Next::Nothing
        };
        if record {
            // The responder still needs the body after it is recorded.
            let kept = match next {
                Next::Respond(_) => body.clone(),
                _ => std::mem::take(&mut body),
            };
            script.requests.push(Recorded {
                body: kept,
                headers: recorded_headers,
                path: uri.path().to_owned(),
            });
        }
        (n, next)
    };
    if let Some(e) = parse_error {
        return error_response(400, &format!("mock LLM: request body is not JSON: {e}"));
    }
    let mut reply = match next {
        Next::Reply(reply) => reply,
        // Called outside the lock: a responder may be slow or inspect the mock.
        Next::Respond(f) => f(&body),
        Next::Nothing => {
            return error_response(
                500,
                &format!("mock LLM: no scripted reply left for request {n}"),
            );
        }
    };
    let ctx = Ctx {
        model,
        created: unix_now(),
        prompt_tokens: estimate_tokens(raw.len()),
        include_usage,
        n,
    };
    while let Reply::Delayed(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    match reply {
        Reply::Delayed(..) => unreachable!("unwrapped above"),
        Reply::Text(text) if stream => sse(text_events(&ctx, &text, None), false),
        Reply::Text(text) => json_response(&completion(&ctx, Message::Text(&text))),
        Reply::ToolCalls(calls) if stream => sse(tool_events(&ctx, &calls), false),
        Reply::ToolCalls(calls) => json_response(&completion(&ctx, Message::Tools(&calls))),
        Reply::Error {
            status,
            body,
            retry_after,
        } => {
            let mut response = raw_response(status, "application/json", body);
            if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Reply::Hang => {
            // Never answers: hyper drops this future when the client
            // disconnects; dropping the mock closes the connection instead.
            let mut shutdown = shared.shutdown.clone();
            let _ = shutdown.changed().await;
            conn.kill();
            raw_response(500, "text/plain", String::new())
        }
        Reply::Garbage(garbage) if stream => sse(
            vec![sse_data(&garbage), Bytes::from_static(b"data: [DONE]\n\n")],
            false,
        ),
        Reply::Garbage(garbage) => raw_response(200, "application/json", garbage),
        Reply::CutStream { chunks } if stream => {
            sse(text_events(&ctx, CUT_TEXT, Some(chunks)), true)
        }
        Reply::CutStream { .. } => {
            // The response below is never written: the killed connection
            // fails the write and hyper closes it.
            conn.kill();
            raw_response(200, "application/json", String::new())
        }
        Reply::Raw {
            status,
            content_type,
            body,
        } => raw_response(status, &content_type, body),
    }
}

async fn embeddings(State(shared): AppState, uri: Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let (body, parse_error) = parse_body(&raw);
    // The answer is computed first (it borrows the body) but only sent after
    // the body has been moved into the record.
    let response = match parse_error {
        Some(e) => error_response(400, &format!("mock LLM: request body is not JSON: {e}")),
        None => embeddings_response(&body),
    };
    let recorded = shared.recording.load(Ordering::Relaxed).then(|| Recorded {
        body,
        headers: header_pairs(&headers),
        path: uri.path().to_owned(),
    });
    let mut script = shared.script();
    script.total += 1;
    script.requests.extend(recorded);
    drop(script);
    response
}

fn embeddings_response(body: &Value) -> Response {
    let inputs: Option<Vec<&str>> = match &body["input"] {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    };
    let Some(inputs) = inputs else {
        return error_response(
            400,
            "mock LLM: embeddings input must be a string or an array of strings",
        );
    };
    let tokens: usize = inputs.iter().map(|t| estimate_tokens(t.len())).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": embed(text)}))
        .collect();
    json_response(&json!({
        "object": "list",
        "data": data,
        "model": body["model"].as_str().unwrap_or(DEFAULT_EMBEDDING_MODEL),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

async fn models() -> Response {
    json_response(&json!({
        "object": "list",
        "data": [{"id": DEFAULT_MODEL, "object": "model", "owned_by": "mock"}],
    }))
}

async fn not_found(method: Method, uri: Uri) -> Response {
    error_response(
        404,
        &format!("mock LLM: no route for {method} {}", uri.path()),
    )
}

/// The deterministic embedding of `text`: signed feature hashing of its
/// lowercase alphanumeric words into [`EMBEDDING_DIM`] buckets, L2-normalised,
/// so texts sharing words have a clearly positive cosine similarity and
/// unrelated texts one near zero. A text without words maps to the first unit
/// vector (a zero vector would make cosine similarity NaN).
pub fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; EMBEDDING_DIM];
    let mut add = |hash: u64| {
        let h = mix(hash);
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % EMBEDDING_DIM as u64) as usize] += sign;
    };
    // FNV-1a over each word's lowercase UTF-8, without allocating the words.
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            in_word = true;
            for lower in c.to_lowercase() {
                let mut buf = [0u8; 4];
                for &b in lower.encode_utf8(&mut buf).as_bytes() {
                    hash = (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
                }
            }
        } else if in_word {
            add(hash);
            hash = FNV_OFFSET;
            in_word = false;
        }
    }
    if in_word {
        add(hash);
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v[0] = 1.0;
    }
    v
}

/// splitmix64's finaliser: FNV's high bits are weak, and we use the top bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What every completion or chunk of one request shares.
struct Ctx {
    model: String,
    created: u64,
    prompt_tokens: usize,
    include_usage: bool,
    n: usize,
}

impl Ctx {
    fn id(&self) -> String {
        format!("chatcmpl-mock-{}", self.n)
    }

    fn usage(&self, completion_tokens: usize) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        })
    }
}

enum Message<'a> {
    Text(&'a str),
    Tools(&'a [ToolCall]),
}

fn completion(ctx: &Ctx, message: Message<'_>) -> Value {
    let (message, finish, completion_tokens) = match message {
        Message::Text(text) => (
            json!({"role": "assistant", "content": text}),
            "stop",
            estimate_tokens(text.len()),
        ),
        Message::Tools(calls) => (
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": calls.iter().map(|c| json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })).collect::<Vec<_>>(),
            }),
            "tool_calls",
            tool_tokens(calls),
        ),
    };
    json!({
        "id": ctx.id(),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": ctx.usage(completion_tokens),
    })
}

/// One `chat.completion.chunk` event with this delta.
fn chunk(ctx: &Ctx, id: &str, delta: Value, finish: Option<&str>) -> Bytes {
    let mut chunk = json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    if ctx.include_usage {
        // As OpenAI does: every chunk but the last carries `usage: null`.
        chunk["usage"] = Value::Null;
    }
    sse_data(&chunk.to_string())
}

/// The events of a streamed text reply; with `cut`, only the first `cut`
/// events, and never the finish, usage or `[DONE]` events.
fn text_events(ctx: &Ctx, text: &str, cut: Option<usize>) -> Vec<Bytes> {
    let id = ctx.id();
    let pieces = text_pieces(text);
    let mut events = Vec::with_capacity(pieces.len() + 4);
    events.push(chunk(ctx, &id, json!({"role": "assistant"}), None));
    for piece in pieces {
        events.push(chunk(ctx, &id, json!({"content": piece}), None));
    }
    if let Some(cut) = cut {
        events.truncate(cut);
        return events;
    }
    events.push(chunk(ctx, &id, json!({}), Some("stop")));
    finish_events(ctx, &id, estimate_tokens(text.len()), &mut events);
    events
}

/// The events of streamed tool calls: each call's header delta (index, id,
/// type, name, empty arguments), then its arguments in fragments, with the
/// calls interleaved round-robin so clients must join fragments by `index`.
fn tool_events(ctx: &Ctx, calls: &[ToolCall]) -> Vec<Bytes> {
    let id = ctx.id();
    let fragments: Vec<Vec<&str>> = calls.iter().map(|c| fragments(&c.arguments)).collect();
    let rounds = fragments.iter().map(Vec::len).max().unwrap_or(0) + 1;
    let mut events = vec![chunk(ctx, &id, json!({"role": "assistant"}), None)];
    for round in 0..rounds {
        for (index, call) in calls.iter().enumerate() {
            let delta = if round == 0 {
                json!({"tool_calls": [{
                    "index": index,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }]})
            } else if let Some(fragment) = fragments[index].get(round - 1) {
                json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            } else {
                continue;
            };
            events.push(chunk(ctx, &id, delta, None));
        }
    }
    events.push(chunk(ctx, &id, json!({}), Some("tool_calls")));
    finish_events(ctx, &id, tool_tokens(calls), &mut events);
    events
}

/// The optional usage chunk, then `[DONE]`.
fn finish_events(ctx: &Ctx, id: &str, completion_tokens: usize, events: &mut Vec<Bytes>) {
    if ctx.include_usage {
        let usage = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [],
            "usage": ctx.usage(completion_tokens),
        });
        events.push(sse_data(&usage.to_string()));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
}

/// Splits text into word-sized deltas (each keeps its trailing whitespace, so
/// they concatenate back exactly), then halves the longest piece until there
/// are at least three, so even short replies arrive in several deltas and
/// some split mid-word, as real tokenisers do.
fn text_pieces(text: &str) -> Vec<&str> {
    let mut pieces: Vec<&str> = text.split_inclusive(char::is_whitespace).collect();
    while pieces.len() < 3 {
        let Some((i, longest)) = pieces
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, p)| p.chars().nth(1).is_some())
            .max_by_key(|(_, p)| p.len())
        else {
            break;
        };
        let half = longest.chars().count() / 2;
        let mid = longest
            .char_indices()
            .nth(half)
            .map_or(longest.len(), |(b, _)| b);
        let (a, b) = longest.split_at(mid);
        pieces.splice(i..=i, [a, b]);
    }
    pieces
}

/// Splits an arguments string into at least three fragments (when it has
/// three characters) of at most 24 characters, on char boundaries.
fn fragments(s: &str) -> Vec<&str> {
    let total = s.chars().count();
    if total == 0 {
        return Vec::new();
    }
    let per = total.div_ceil(3).min(24);
    let mut out = Vec::with_capacity(total.div_ceil(per));
    let mut start = 0;
    for (count, (i, _)) in s.char_indices().enumerate() {
        if count > 0 && count % per == 0 {
            out.push(&s[start..i]);
            start = i;
        }
    }
    out.push(&s[start..]);
    out
}

fn sse_data(payload: &str) -> Bytes {
    let mut event = String::with_capacity(payload.len() + 8);
    event.push_str("data: ");
    event.push_str(payload);
    event.push_str("\n\n");
    Bytes::from(event)
}

/// A `text/event-stream` response sending each event as its own body frame;
/// with `cut`, the body then fails, which makes hyper drop the connection
/// without the chunked-encoding terminator (an abrupt upstream disconnect).
fn sse(events: Vec<Bytes>, cut: bool) -> Response {
    use futures::StreamExt;
    let events = futures::stream::iter(events.into_iter().map(Ok::<_, io::Error>));
    let body = if cut {
        let abort = futures::stream::once(async {
            // hyper drops buffered bytes when a body fails; yielding first
            // lets it flush the events already sent.
            tokio::task::yield_now().await;
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "mock LLM: stream cut",
            ))
        });
        Body::from_stream(events.chain(abort))
    } else {
        Body::from_stream(events)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn json_response(value: &Value) -> Response {
    raw_response(200, "application/json", value.to_string())
}

fn error_response(status: u16, message: &str) -> Response {
    raw_response(status, "application/json", error_body(status, message))
}

fn raw_response(status: u16, content_type: &str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// An OpenAI-style error body, with the `type` OpenAI uses for the status.
fn error_body(status: u16, message: &str) -> String {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}}).to_string()
}

/// The JSON body, or a JSON string of the raw text and the parse error.
fn parse_body(raw: &[u8]) -> (Value, Option<serde_json::Error>) {
    match serde_json::from_slice(raw) {
        Ok(v) => (v, None),
        Err(e) => (
            Value::String(String::from_utf8_lossy(raw).into_owned()),
            Some(e),
        ),
    }
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A deterministic token estimate: about four bytes per token, at least one.
fn estimate_tokens(bytes: usize) -> usize {
    bytes.div_ceil(4).max(1)
}

fn tool_tokens(calls: &[ToolCall]) -> usize {
    estimate_tokens(calls.iter().map(|c| c.name.len() + c.arguments.len()).sum())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Accepts TCP connections wrapped in [`ConnIo`], so a handler can close its
/// own connection without answering (axum has no other way to do that).
struct MockListener(TcpListener);

impl Listener for MockListener {
    type Io = ConnIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((tcp, addr)) => {
                    // SSE events are small writes; don't let Nagle delay them.
                    let _ = tcp.set_nodelay(true);
                    let killed = Arc::new(AtomicBool::new(false));
                    return (ConnIo { tcp, killed }, addr);
                }
                // Per-connection failures (reset before accept): just go on.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionRefused
                    ) => {}
                // Resource exhaustion (EMFILE and the like): back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that a handler can kill: afterwards reads see EOF and writes
/// fail, so hyper closes it without sending the pending response.
struct ConnIo {
    tcp: TcpStream,
    killed: Arc<AtomicBool>,
}

impl ConnIo {
    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

fn killed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "mock LLM: connection closed on purpose",
    )
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_killed() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // hyper writes headers and body in one syscall when this is true.
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The handler's grip on its own connection, via `ConnectInfo`.
#[derive(Clone)]
struct Conn(Arc<AtomicBool>);

impl Conn {
    fn kill(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, MockListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, MockListener>) -> Self {
        Conn(stream.io().killed.clone())
    }
}

/// A provider configuration pointing at `mock`: key `test-key`, model
/// `mock-model`, 5 s request timeout, 2 retries with short backoff. Tests and
/// benchmarks adjust the fields they care about.
pub fn provider_config(mock: &MockLlm) -> launch::llm::ProviderConfig {
    launch::llm::ProviderConfig {
        name: "mock".into(),
        base_url: mock.base_url(),
        api_key: Some("test-key".into()),
        api_key_hint: "set LAUNCH_LLM_API_KEY".into(),
        model: "mock-model".into(),
        embedding_model: None,
        temperature: None,
        max_tokens: None,
        request_timeout: Duration::from_secs(5),
        stream_idle_timeout: Duration::from_secs(2),
        max_retries: 2,
        retry_base: Duration::from_millis(10),
        retry_max: Duration::from_millis(200),
    }
}
