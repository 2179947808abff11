//! Just enough HTTP/1.1 for a callback endpoint in the tests that run the binary: read one
//! request's body, answer with a bare status line; a receiver of delivery reports built on them.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads one request from `stream`: its body (by `Content-Length`).
pub fn read_body(stream: TcpStream) -> (Vec<u8>, TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    (body, reader.into_inner())
}

/// Answers with `status` and no body, and closes.
pub fn answer(mut stream: TcpStream, status: u16) {
    let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes());
}

/// A receiver of delivery reports on loopback: records each body, answers `status` after
/// `delay`.
pub fn receiver(status: u16, delay: Duration) -> (String, Arc<Mutex<Vec<Value>>>) {
    receiver_pausing(status, move |_| delay)
}

/// A receiver that answers the `n`th report (counting from 1) after `pause(n)`.
pub fn receiver_pausing(
    status: u16,
    pause: impl Fn(usize) -> Duration + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let bodies = Arc::clone(&got);
    let pause = Arc::new(pause);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let (bodies, pause) = (Arc::clone(&bodies), Arc::clone(&pause));
            std::thread::spawn(move || {
                let (body, stream) = read_body(stream);
                let n = {
                    let mut bodies = bodies.lock().unwrap();
                    bodies.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    bodies.len()
                };
                std::thread::sleep(pause(n));
                answer(stream, status);
            });
        }
    });
    (url, got)
}
