//! A tenant's API tokens: listed, issued, rotated, revoked and bound to client addresses.
//! The token's text is shown once, at issue or rotation; every other answer is its record.

use super::{json_object, optional_json, tenant_id, Admin, AdminResult};
use crate::api::AppState;
use crate::domain::TokenRecord;
use crate::secrets::ApiToken;
use actix_web::{web, HttpResponse};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An API token's record (never the token itself).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Token)]
pub(in crate::api) struct TokenView {
    #[schema(example = "tok_0123456789abcdef")]
    id: String,
    /// Neither revoked nor past `expires_at`.
    active: bool,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds: when a rotated-away token stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    expires_at: Option<i64>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    revoked_at: Option<i64>,
    /// Client addresses (CIDR blocks) the token may be used from; empty: anywhere.
    #[schema(value_type = Vec<String>, example = json!(["203.0.113.0/24"]))]
    ip_allow: Vec<IpNet>,
}

fn token_view(t: &TokenRecord, state: &AppState) -> TokenView {
    TokenView {
        id: t.id.clone(),
        active: t.is_live(state.services.clock.now()),
        created_at: t.created_at.secs(),
        expires_at: t.expires_at.map(|at| at.secs()),
        revoked_at: t.revoked_at.map(|at| at.secs()),
        ip_allow: t.ip_allow.clone(),
    }
}

/// A token shown once: its text beside its record.
#[derive(Serialize, utoipa::ToSchema)]
pub(in crate::api) struct IssuedToken {
    /// The API token: shown only here.
    token: String,
    token_id: String,
    #[serde(flatten)]
    record: TokenView,
}

fn issued(token: &ApiToken, record: &TokenRecord, state: &AppState) -> IssuedToken {
    IssuedToken { token: token.expose().to_owned(), token_id: record.id.clone(), record: token_view(record, state) }
}

pub(super) async fn list_tokens(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    let tokens = state.services.tokens(&tenant_id(&id)?).await?;
    let views: Vec<TokenView> = tokens.iter().map(|t| token_view(t, &state)).collect();
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct IssueToken {
    /// Client addresses (CIDR blocks) the token may be used from; empty: anywhere.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["203.0.113.0/24"]))]
    ip_allow: Vec<IpNet>,
}

pub(super) async fn issue_token(
    _: Admin,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let body: IssueToken = optional_json(&body)?;
    let (token, record) = state.services.issue_token(&tenant_id(&id)?, body.ip_allow).await?;
    Ok(HttpResponse::Created().json(issued(&token, &record, &state)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct RotateToken {
    /// Seconds the old token keeps working (default `tokens.rotation_overlap`).
    #[serde(default)]
    overlap: Option<u64>,
}

pub(super) async fn rotate_token(
    _: Admin,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, token_id) = path.into_inner();
    let overlap = optional_json::<RotateToken>(&body)?.overlap.map(Duration::from_secs);
    let (token, record, old) = state.services.rotate_token(&tenant_id(&id)?, &token_id, overlap).await?;
    Ok(HttpResponse::Created()
        .json(Rotated { new: issued(&token, &record, &state), previous: token_view(&old, &state) }))
}

/// The successor token (shown once) and the old token's record.
#[derive(Serialize, utoipa::ToSchema)]
pub(in crate::api) struct Rotated {
    #[serde(flatten)]
    new: IssuedToken,
    previous: TokenView,
}

pub(super) async fn revoke_token(
    _: Admin,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, token_id) = path.into_inner();
    let token = state.services.revoke_token(&tenant_id(&id)?, &token_id).await?;
    Ok(HttpResponse::Ok().json(token_view(&token, &state)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct IpAllow {
    /// Client addresses (CIDR blocks) the token may be used from; empty: anywhere.
    #[schema(value_type = Vec<String>, example = json!(["203.0.113.0/24"]))]
    ip_allow: Vec<IpNet>,
}

pub(super) async fn set_ip_allow(
    _: Admin,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, token_id) = path.into_inner();
    let token =
        state.services.set_token_ip_allow(&tenant_id(&id)?, &token_id, json_object::<IpAllow>(&body)?.ip_allow).await?;
    Ok(HttpResponse::Ok().json(token_view(&token, &state)))
}
