//! A tenant's callback endpoint: a real HTTP server on a free port that records every delivery
//! report it is sent and answers as the test scripts it (a status, a redirect, or holding the
//! connection until the test lets go).

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use parking_lot::Mutex;
use std::collections::VecDeque;
use tokio::sync::Semaphore;

/// One report as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON report")
    }
}

#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// 302 to this path of the receiver.
    Redirect(String),
    /// Answer 200 only once the test calls `release`.
    Hold,
}

struct State {
    got: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    held: Semaphore,
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>/cb`
    pub url: String,
    state: web::Data<State>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// On a given port of 127.0.0.1 (0: a free one).
    pub async fn start_on(port: u16) -> Self {
        let state = web::Data::new(State { got: Mutex::default(), script: Mutex::default(), held: Semaphore::new(0) });
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port");
        let port = listener.local_addr().expect("an address").port();
        let app_state = state.clone();
        let server = HttpServer::new(move || App::new().app_data(app_state.clone()).default_service(web::to(receive)))
            .workers(2)
            .disable_signals()
            .listen(listener)
            .expect("the receiver listens")
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url: format!("http://127.0.0.1:{port}/cb"), state, server: handle }
    }

    /// The next answers, in order (then 200).
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.script.lock().extend(answers);
    }

    /// Lets held requests answer.
    pub fn release(&self) {
        self.state.held.add_permits(1_000);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().clone()
    }

    /// Waits until `n` reports arrived (at most 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        super::wait_for(&format!("{n} report(s) at {}", self.url), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.release();
        drop(self.server.stop(false));
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    state.got.lock().push(Received {
        path: req.path().to_owned(),
        content_type: header("content-type"),
        timestamp: header("x-request-timestamp"),
        signature: header("x-request-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let answer = state.script.lock().pop_front().unwrap_or(Answer::Status(200));
    match answer {
        Answer::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("a status")).body("answer")
        }
        Answer::Redirect(path) => HttpResponse::Found().insert_header(("location", path)).finish(),
        Answer::Hold => {
            let _ = state.held.acquire().await;
            HttpResponse::Ok().finish()
        }
    }
}
