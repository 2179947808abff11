//! Why a send would be let through or refused: the rate limits explained for one number,
//! address and token, so an operator can answer a tenant's "why was this blocked".

use super::{json_object, parse_phone, tenant_id, Admin, AdminError, AdminResult};
use crate::api::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// A send to explain: to which number, from which client address, with which token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct ExplainLimits {
    #[schema(pattern = r"^\+?[1-9][0-9]{7,14}$", example = "+15551234567")]
    phone_number: String,
    /// An IPv4 or IPv6 address.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "203.0.113.7")]
    ip: Option<std::net::IpAddr>,
    #[serde(default)]
    token_id: Option<String>,
}

pub(super) async fn explain_limits(
    _: Admin,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let body: ExplainLimits = json_object(&body)?;
    let phone =
        parse_phone(Some(body.phone_number))?.ok_or_else(|| AdminError::Invalid("phone_number is required".into()))?;
    let explained = state.services.explain_limits(&tenant_id(&id)?, &phone, body.ip, body.token_id).await?;
    Ok(HttpResponse::Ok().json(explained))
}
