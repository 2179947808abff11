//! Tenants and their settings (including the sender names they may use), as the operator
//! creates, reads and edits them; money has its own file (`balance.rs`).

use super::{json_object, optional_json, parse_phone, tenant_id, Admin, AdminError, AdminResult};
use crate::api::AppState;
use crate::domain::{Credits, SenderUsername, Tenant, TenantSettings};
use crate::service::{NewTenant, SettingsPatch};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// A tenant: a business that calls the Gateway API.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Tenant)]
pub(in crate::api) struct TenantView {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    balance: Credits,
    settings: TenantSettings,
    /// Unix seconds.
    created_at: i64,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            balance: t.balance,
            settings: t.settings,
            created_at: t.created_at.secs(),
        }
    }
}

/// A new tenant. Absent settings fall back to the server's configuration.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct CreateTenant {
    /// 1 to 128 bytes (surrounding spaces are trimmed).
    #[schema(min_length = 1, max_length = 128, example = "Acme")]
    name: String,
    /// The opening balance (not negative; default 0).
    #[serde(default)]
    balance: Option<Credits>,
    /// The tenant's own number (E.164): sends to it are free.
    #[serde(default)]
    #[schema(pattern = r"^(\+?[1-9][0-9]{7,14})?$")]
    phone_number: Option<String>,
    /// Price of one message (not negative), over the server's price table.
    #[serde(default)]
    price: Option<Credits>,
    /// Wrong codes allowed per request.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    max_attempts: Option<u8>,
    #[serde(default)]
    templates: BTreeMap<String, String>,
    #[serde(default)]
    limits: BTreeMap<crate::domain::LimitKind, crate::domain::Rate>,
    #[serde(default)]
    countries: Option<crate::domain::CountryRule>,
    #[serde(default)]
    daily_spend_cap: Option<Credits>,
    /// The tenant's share of the sender pool when tenants have messages waiting (default 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    delivery_weight: Option<u16>,
}

pub(super) async fn create_tenant(_: Admin, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
    let body: CreateTenant = json_object(&body)?;
    let settings = TenantSettings {
        price: body.price,
        max_attempts: body.max_attempts,
        phone_number: parse_phone(body.phone_number)?,
        senders: BTreeMap::new(),
        templates: body.templates,
        limits: body.limits,
        countries: body.countries,
        daily_spend_cap: body.daily_spend_cap,
        delivery_weight: body.delivery_weight,
    };
    let new = NewTenant { name: body.name, balance: body.balance.unwrap_or_default(), settings };
    let (tenant, token, record) = state.services.create_tenant(new).await?;
    Ok(HttpResponse::Created().json(Created {
        tenant: tenant.into(),
        token: token.expose().to_owned(),
        token_id: record.id,
    }))
}

/// A new tenant, with its first API token (shown once).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TenantCreated)]
pub(in crate::api) struct Created {
    #[serde(flatten)]
    tenant: TenantView,
    /// The API token: shown only here.
    token: String,
    token_id: String,
}

pub(super) async fn list_tenants(_: Admin, state: web::Data<AppState>) -> AdminResult {
    let tenants: Vec<TenantView> = state.services.tenants().await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(tenants))
}

pub(super) async fn get_tenant(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    let tenant = state.services.tenant(&tenant_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

/// Distinguishes a field that is absent (`None`) from one that is `null` (`Some(None)`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A partial update of a tenant's settings: an absent field is left alone, `null` clears it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct UpdateTenant {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Credits>)]
    price: Option<Option<Credits>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 10)]
    max_attempts: Option<Option<u8>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, pattern = r"^(\+?[1-9][0-9]{7,14})?$")]
    phone_number: Option<Option<String>>,
    /// Replaces the tenant's templates (`null` or `{}` removes them).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    templates: Option<Option<BTreeMap<String, String>>>,
    /// Replaces the tenant's own rate limits (`null` or `{}`: the server's apply).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BTreeMap<crate::domain::LimitKind, crate::domain::Rate>>)]
    limits: Option<Option<BTreeMap<crate::domain::LimitKind, crate::domain::Rate>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::domain::CountryRule>)]
    countries: Option<Option<crate::domain::CountryRule>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Credits>)]
    daily_spend_cap: Option<Option<Credits>>,
    /// The tenant's share of the sender pool (`null`: back to 1).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u16>, minimum = 1, maximum = 1000)]
    delivery_weight: Option<Option<u16>>,
}

pub(super) async fn update_tenant(
    _: Admin,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let body: UpdateTenant = json_object(&body)?;
    let patch = SettingsPatch {
        price: body.price,
        max_attempts: body.max_attempts,
        phone_number: body.phone_number.map(parse_phone).transpose()?,
        templates: body.templates.map(Option::unwrap_or_default),
        limits: body.limits.map(Option::unwrap_or_default),
        countries: body.countries,
        daily_spend_cap: body.daily_spend_cap,
        delivery_weight: body.delivery_weight,
    };
    let tenant = state.services.update_settings(&tenant_id(&id)?, patch).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct PutSender {
    /// Whether the channel is verified (default `false`).
    #[serde(default)]
    verified: bool,
}

fn username(raw: &str) -> Result<SenderUsername, AdminError> {
    SenderUsername::parse(raw).map_err(|_| AdminError::Invalid("not a Telegram username".into()))
}

pub(super) async fn put_sender(
    _: Admin,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, name) = path.into_inner();
    let verified = optional_json::<PutSender>(&body)?.verified;
    let tenant = state.services.put_sender(&tenant_id(&id)?, &username(&name)?, verified).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

pub(super) async fn remove_sender(
    _: Admin,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, name) = path.into_inner();
    let tenant = state.services.remove_sender(&tenant_id(&id)?, &username(&name)?).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}
