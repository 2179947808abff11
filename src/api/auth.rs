//! What every authenticated surface shares: who the client is (its address, through trusted
//! proxies), the bearer token it presents, comparing that token with a secret in constant time,
//! and the throttle on failed attempts.

use super::AppState;
use crate::domain::{LimitKind, Refusal};
use crate::service::throttle::Surface;
use actix_web::http::header;
use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// The client's address: the connection's, or, when that is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not one (read from the right: the left part is the
/// client's own claim and could be anything). A hop that cannot be read ends the walk at the
/// last address that could: the proxy that passed the unreadable hop on answers for it (its
/// own per-address budget pays), so garbage in the header never escapes the limits.
pub fn client_address(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    client(req, trusted).map(|c| c.address)
}

/// The client's address, and whether it is the client's own (read through every proxy) or
/// only the proxy that passed an unreadable hop on: good enough to count against, never to
/// grant anything by (a token's `ip_allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub address: IpAddr,
    pub vouched: bool,
}

pub fn client(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<Client> {
    let peer = req.peer_addr()?.ip().to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let unvouched = |address| Some(Client { address, vouched: false });
    if !is_trusted(&peer) {
        return Some(Client { address: peer, vouched: true });
    }
    let lines: Vec<_> = req.headers().get_all("x-forwarded-for").collect();
    let mut nearest = peer;
    for value in lines.into_iter().rev() {
        let Ok(value) = value.to_str() else { return unvouched(nearest) };
        for hop in value.rsplit(',').map(str::trim) {
            let parsed = hop.parse::<IpAddr>().or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()));
            let Ok(ip) = parsed else { return unvouched(nearest) };
            let ip = ip.to_canonical();
            nearest = ip;
            if !is_trusted(&ip) {
                return Some(Client { address: ip, vouched: true });
            }
        }
    }
    // Every hop is a trusted proxy: the client is the farthest one.
    Some(Client { address: nearest, vouched: true })
}

/// The token of an `Authorization: Bearer <token>` header: `None` without one, `Some(None)`
/// for a header that is not a bearer token.
pub fn bearer(req: &HttpRequest) -> Option<Option<&str>> {
    req.headers().get(header::AUTHORIZATION).map(|value| {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
    })
}

/// The password of an `Authorization: Basic` header (what a browser sends after asking).
pub fn basic_password(req: &HttpRequest) -> Option<String> {
    use base64::Engine;
    let text = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (_, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(password.to_owned())
}

/// Whether a state-changing request was sent by a page of another site (a forged request):
/// the browser says so in `Sec-Fetch-Site`, or, without it, in an `Origin` that is not this
/// host. Clients that are not browsers send neither and pass.
pub fn cross_site(req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, rest)| rest) != Some(host),
        (Some(_), None) => true,
        _ => false,
    }
}

/// Whether the request names this host by a loopback name (`localhost`, `127.x.y.z`, `[::1]`),
/// or names none.
pub fn loopback_host(req: &HttpRequest) -> bool {
    let Some(host) = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()) else { return true };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `presented` is the secret: compared in constant time, over hashes so that the
/// length does not leak either.
pub fn is_secret(expected: &SecretString, presented: &str) -> bool {
    bool::from(Sha256::digest(expected.expose_secret().as_bytes()).ct_eq(&Sha256::digest(presented.as_bytes())))
}

/// The refusal for an address whose failed attempts used up its budget, if it did.
pub fn throttled(state: &AppState, surface: Surface, client: Option<IpAddr>) -> Option<Refusal> {
    let wait = state.services.auth_throttle.refused(surface, client?)?;
    let metrics = &state.services.metrics;
    metrics.auth_failures.with_label_values(&[surface_label(surface)]).inc();
    metrics.limit_refusals.with_label_values(&[LimitKind::AuthFailures.as_str()]).inc();
    let rate = state.services.settings.limits.auth_failures;
    Some(Refusal { kind: LimitKind::AuthFailures, rate, retry_after: wait })
}

/// Counts a failed attempt against the client's address (and in the metrics).
pub fn failed(state: &AppState, surface: Surface, client: Option<IpAddr>) {
    state.services.metrics.auth_failures.with_label_values(&[surface_label(surface)]).inc();
    if let Some(ip) = client {
        state.services.auth_throttle.failed(surface, ip);
    }
}

/// Checks a request's bearer token against `expected` (`None`: nothing is accepted). Refused:
/// `Some` when the address is throttled, `None` when the token is missing or wrong.
pub fn admit(
    req: &HttpRequest,
    state: &AppState,
    expected: &Option<SecretString>,
    surface: Surface,
) -> Result<(), Option<Refusal>> {
    admit_presented(req, state, expected, surface, bearer(req).flatten())
}

/// As `admit`, with the token already taken from the request (`presented`).
pub fn admit_presented(
    req: &HttpRequest,
    state: &AppState,
    expected: &Option<SecretString>,
    surface: Surface,
    presented: Option<&str>,
) -> Result<(), Option<Refusal>> {
    let client = client_address(req, &state.services.settings.limits.trusted_proxies);
    if let Some(refusal) = throttled(state, surface, client) {
        return Err(Some(refusal));
    }
    let ok = match (expected, presented) {
        (Some(expected), Some(presented)) => is_secret(expected, presented),
        _ => false,
    };
    if !ok {
        failed(state, surface, client);
        tracing::warn!(
            client = client.map(|ip| ip.to_string()).unwrap_or_default(),
            path = req.path(),
            surface = ?surface,
            "authentication failed: missing or wrong token"
        );
        return Err(None);
    }
    Ok(())
}

fn surface_label(surface: Surface) -> &'static str {
    match surface {
        Surface::Gateway => "gateway",
        Surface::Admin => "admin",
        Surface::Metrics => "metrics",
        Surface::Sandbox => "sandbox",
    }
}
