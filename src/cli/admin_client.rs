//! A small client of the admin API for the CLI: sends JSON, prints the JSON answer.

use super::ServerArgs;
use anyhow::{anyhow, bail, Context};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let token = args
            .admin_token
            .clone()
            .or_else(|| std::env::var("VERIGRAM__ADMIN__TOKEN").ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("no admin token: set VERIGRAM_ADMIN_TOKEN (or pass --admin-token)"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, base: format!("{}/admin/v1", args.server.trim_end_matches('/')), token })
    }

    pub async fn print_get(&self, path: &str) -> anyhow::Result<()> {
        print_json(&self.call(Method::GET, path, None).await?)
    }

    pub async fn print_post(&self, path: &str, body: Value) -> anyhow::Result<()> {
        print_json(&self.call(Method::POST, path, Some(without_nulls(body))).await?)
    }

    pub async fn print_delete(&self, path: &str) -> anyhow::Result<()> {
        print_json(&self.call(Method::DELETE, path, None).await?)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}/{}", self.base, path);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await?;
        if status == StatusCode::NO_CONTENT {
            return Ok(serde_json::json!({ "ok": true }));
        }
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        let message = value.get("message").and_then(Value::as_str).unwrap_or("");
        match status {
            StatusCode::NOT_FOUND if message.is_empty() => {
                bail!("{url}: not found (is the admin API on? set admin.token)")
            }
            _ => bail!("{status}: {message}"),
        }
    }
}

/// Leaves out fields the user did not give, so the server applies its defaults.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
