//! A DNS server on a loopback UDP port, for tests of what verigram does with what DNS answers:
//! each name gets an address, "not found" at once, or no answer at all (a server that never
//! answers, the worst a tenant's callback host can do to a send).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

/// How the server answers a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An A record with this address (AAAA questions get an empty answer).
    Address(Ipv4Addr),
    /// NXDOMAIN, at once.
    NotFound,
    /// Nothing: the question is read and dropped.
    Silent,
}

/// The server; it stops with the process (its thread only ever blocks on its socket).
pub struct DnsServer {
    pub addr: SocketAddr,
    queries: Arc<std::sync::atomic::AtomicUsize>,
}

impl DnsServer {
    /// Starts a server that answers each name (lowercase, without the final dot) with
    /// `answer(name)`.
    pub fn start(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let addr = socket.local_addr()?;
        let answer = Arc::new(answer);
        let queries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&queries);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while let Ok((len, from)) = socket.recv_from(&mut buffer) {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if let Some(reply) = reply(&buffer[..len], answer.as_ref()) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        Ok(Self { addr, queries })
    }

    /// The questions received so far (answered or not).
    pub fn queries(&self) -> usize {
        self.queries.load(std::sync::atomic::Ordering::SeqCst)
    }
}

const TYPE_A: u16 = 1;

/// The reply to one query (`None`: stay silent, or not a query this server reads).
fn reply(query: &[u8], answer: &dyn Fn(&str) -> Answer) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let name = labels.join(".");
    let (rcode, record) = match answer(&name) {
        Answer::Silent => return None,
        Answer::NotFound => (3u8, None),
        Answer::Address(ip) => (0, (qtype == TYPE_A).then_some(ip)),
    };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&header[..2]); // the query's id
    out.push(0x84 | (header[2] & 0x01)); // a response, authoritative, the query's RD
    out.push(0x80 | rcode); // recursion available, the answer's code
    out.extend_from_slice(&[0, 1, 0, u8::from(record.is_some()), 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if let Some(ip) = record {
        out.extend_from_slice(&[0xC0, 0x0C]); // the name: a pointer to the question's
        out.extend_from_slice(&[0, 1, 0, 1]); // A, IN
        out.extend_from_slice(&60u32.to_be_bytes()); // TTL
        out.extend_from_slice(&[0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}
