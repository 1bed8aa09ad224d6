//! A stand-in for the SMS provider, which cannot run here, speaking the shape of Twilio's
//! Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json` with HTTP Basic auth and a form,
//! 201 with the message's `sid`, Twilio's error bodies (20003 unauthenticated, 21211 invalid
//! `To`), and status callbacks to the message's `StatusCallback` signed with
//! `X-Twilio-Signature` as Twilio signs them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::json;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The test account.
pub const ACCOUNT_SID: &str = "ACtest0000000000000000000000000000";
/// Numbers the provider calls invalid (Twilio's magic test number).
pub const INVALID_NUMBER: &str = "+15005550001";

/// Where the stand-in listens and its token, for a deployment's configuration.
#[derive(Debug, Clone)]
pub struct Section {
    addr: SocketAddr,
    token: String,
}

impl Section {
    /// The `[notifications.sms]` section, the token written to `dir`; callbacks go to
    /// `gateway` (`http://127.0.0.1:<port>`).
    pub fn config(&self, dir: &Path, gateway: &str) -> anyhow::Result<String> {
        let token = dir.join("sms-token");
        std::fs::write(&token, &self.token)?;
        Ok(format!(
            "[notifications.sms]\nbase_url = \"http://{}\"\naccount_sid = \"{ACCOUNT_SID}\"\n\
             auth_token_file = {token:?}\nfrom = \"+3197010000000\"\n\
             status_callback = \"{gateway}/v1/callbacks/sms\"\n",
            self.addr
        ))
    }
}

/// One message the provider took.
#[derive(Debug, Clone)]
pub struct Text {
    /// Its sid.
    pub sid: String,
    /// `To`.
    pub to: String,
    /// `Body`.
    pub body: String,
    /// `StatusCallback`.
    pub callback: Option<String>,
}

#[derive(Default)]
struct Book {
    texts: Vec<Text>,
    attempts: usize,
    script: VecDeque<u16>,
    outcome: Option<&'static str>,
    callbacks_refused: usize,
}

#[derive(Clone)]
struct Provider {
    token: String,
    book: Arc<Mutex<Book>>,
    http: reqwest::Client,
}

/// The running stand-in.
pub struct SmsProvider {
    addr: SocketAddr,
    provider: Provider,
    stop: CancellationToken,
}

impl SmsProvider {
    /// Starts it with a fresh auth token.
    pub async fn start() -> anyhow::Result<SmsProvider> {
        let token = lockergrid_protocol::to_hex(&rand::random::<[u8; 16]>());
        let provider = Provider {
            token,
            book: Arc::default(),
            http: reqwest::Client::new(),
        };
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                axum::routing::post(create),
            )
            .with_state(provider.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        Ok(SmsProvider {
            addr,
            provider,
            stop,
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        lock(&self.provider.book)
    }

    /// What a deployment needs to send through it.
    pub fn section(&self) -> Section {
        Section {
            addr: self.addr,
            token: self.provider.token.clone(),
        }
    }

    /// The next requests are answered with `statuses` (e.g. 503), one each.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.book().script.extend(statuses);
    }

    /// The status the next messages' callbacks end with (`delivered` unless set).
    pub fn end_with(&self, status: &'static str) {
        self.book().outcome = Some(status);
    }

    /// Every message taken so far.
    pub fn texts(&self) -> Vec<Text> {
        self.book().texts.clone()
    }

    /// Every request, taken or refused.
    pub fn attempts(&self) -> usize {
        self.book().attempts
    }

    /// Callbacks the gateway refused.
    pub fn callbacks_refused(&self) -> usize {
        self.book().callbacks_refused
    }

    /// Waits until `done` holds for the messages taken so far.
    pub async fn until(&self, done: impl Fn(&[Text]) -> bool) -> anyhow::Result<Vec<Text>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let texts = self.texts();
            if done(&texts) {
                return Ok(texts);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the texts never got there: {texts:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Posts a status callback for `sid` as the provider would, signed with `token` (the real
    /// one unless a test forges it); the gateway's answer.
    pub async fn callback(&self, text: &Text, status: &str, token: &str) -> anyhow::Result<u16> {
        let url = text.callback.clone().unwrap_or_default();
        Ok(post_callback(&self.provider.http, &url, &text.sid, status, token).await?)
    }

    /// The real auth token.
    pub fn token(&self) -> &str {
        &self.provider.token
    }
}

impl Drop for SmsProvider {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({ "code": code, "message": message, "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

/// Twilio's signature: HMAC-SHA1 of the URL followed by each field's name and value, sorted.
pub fn signature(token: &str, url: &str, fields: &[(&str, &str)]) -> String {
    let mut sorted = fields.to_vec();
    sorted.sort();
    let mut mac =
        <Hmac<sha1::Sha1> as Mac>::new_from_slice(token.as_bytes()).expect("HMAC accepts any key");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

async fn post_callback(
    http: &reqwest::Client,
    url: &str,
    sid: &str,
    status: &str,
    token: &str,
) -> reqwest::Result<u16> {
    let fields = [
        ("AccountSid", ACCOUNT_SID),
        ("MessageSid", sid),
        ("MessageStatus", status),
    ];
    let response = http
        .post(url)
        .header("x-twilio-signature", signature(token, url, &fields))
        .form(&fields)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

async fn create(
    State(provider): State<Provider>,
    UrlPath(sid): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{ACCOUNT_SID}:{}", provider.token))
    );
    let authorized = sid == ACCOUNT_SID
        && headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    let scripted = {
        let mut book = lock(&provider.book);
        book.attempts += 1;
        book.script.pop_front()
    };
    if !authorized {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if let Some(status) = scripted {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return twilio_error(status, 20500, "Internal Server Error");
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (Some(to), Some(text)) = (field("To"), field("Body")) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    if to == INVALID_NUMBER {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            "The 'To' number is not a valid phone number.",
        );
    }
    let message = Text {
        sid: format!(
            "SM{}",
            lockergrid_protocol::to_hex(&rand::random::<[u8; 16]>())
        ),
        to,
        body: text,
        callback: field("StatusCallback"),
    };
    let outcome = {
        let mut book = lock(&provider.book);
        book.texts.push(message.clone());
        book.outcome.unwrap_or("delivered")
    };
    if let Some(url) = message.callback.clone() {
        let (http, token, sid, book) = (
            provider.http.clone(),
            provider.token.clone(),
            message.sid.clone(),
            provider.book.clone(),
        );
        tokio::spawn(async move {
            for status in ["sent", outcome] {
                match post_callback(&http, &url, &sid, status, &token).await {
                    Ok(204) => {}
                    _ => lock(&book).callbacks_refused += 1,
                }
            }
        });
    }
    let body = json!({ "sid": message.sid, "status": "queued", "account_sid": ACCOUNT_SID });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}
