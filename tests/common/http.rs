//! Just enough HTTP/1.1 for a callback endpoint in the binary's tests (`cli`, `roles`): read one
//! request's body, answer with a bare status line. Included with `#[path]`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

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
