//! Slack-style webhooks (`POST {"text": ...}` to the configured URL) and PagerDuty-style events
//! (Events API v2: `POST {routing_key, event_action: "trigger", dedup_key, payload}`).

use std::time::Duration;

use serde_json::json;

use super::email::describe;
use super::template::{Context, Message};
use super::{Failure, NotifyError, PagerDutyConfig};

/// An HTTPS client with the web PKI roots (`alula_auth::oidc::https_client`).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    alula_auth::oidc::https_client(None, timeout).map_err(|e| NotifyError::Config {
        what: "the notifications' HTTP client".into(),
        reason: e.to_string(),
    })
}

/// The Slack message: subject, body, and who Flyte's notification named (Slack's notification
/// carries channel email addresses; a webhook posts to one channel, so they are listed).
pub fn slack_body(message: &Message, recipients: &[String]) -> serde_json::Value {
    let mut text = format!("{}\n{}", message.subject, message.body);
    if !recipients.is_empty() {
        text.push_str(&format!("\nRecipients: {}", recipients.join(", ")));
    }
    json!({ "text": text })
}

/// The PagerDuty Events API v2 trigger. The dedup key names the execution and phase, so a
/// retried delivery is one incident.
pub fn pagerduty_body(
    config: &PagerDutyConfig,
    message: &Message,
    ctx: &Context,
    link: &str,
    recipients: &[String],
) -> serde_json::Value {
    json!({
        "routing_key": config.routing_key,
        "event_action": "trigger",
        "dedup_key": format!("alula/{}/{}/{}/{}", ctx.project, ctx.domain, ctx.name, ctx.phase),
        "payload": {
            "summary": message.subject,
            "source": config.source,
            "severity": config.severity,
            "custom_details": {
                "body": message.body,
                "execution": link,
                "phase": ctx.phase,
                "recipients": recipients,
            },
        },
        "links": [{ "href": link, "text": "Execution in the Alula console" }],
    })
}

/// POSTs `body` as JSON. A 4xx answer (other than 408 and 429) fails for good; network errors,
/// 5xx, 408 and 429 may be retried.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), Failure> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| Failure::transient(describe(&e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let message = format!("HTTP {status}: {text}");
    let code = status.as_u16();
    if status.is_client_error() && code != 408 && code != 429 {
        Err(Failure::permanent(message))
    } else {
        Err(Failure::transient(message))
    }
}
