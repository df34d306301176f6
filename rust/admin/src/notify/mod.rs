//! Notifications on execution phases, as flyteadmin sends them: a launch plan's
//! `entity_metadata.notifications`, or the execution spec's override (`notifications`, or
//! `disable_all`), each naming phases and an email, Slack or PagerDuty target.
//!
//! - When an execution event moves the execution to a phase a notification lists, the event's
//!   transaction also queues a row per notification in the outbox ([`due`], store
//!   `notifications.rs`); the row keeps the template variables of that moment.
//! - [`Notifier::run`] claims due rows, renders them ([`template`]) and sends them: email over
//!   SMTP ([`email`]); Slack to a webhook and PagerDuty to the Events API ([`webhook`]) when
//!   those are configured, else by email to the notification's addresses (Flyte delivers both
//!   by email to their integration addresses). A failed send is retried with exponential backoff
//!   (capped) up to `max_attempts`, then marked failed and logged. Nothing here can fail or
//!   delay an event RPC or an execution: deciding what to queue logs and gives up on any error,
//!   and sending runs on its own task.

mod email;
pub mod template;
mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::admin::{
    execution_spec, notification, ExecutionClosure, ExecutionSpec, LaunchPlanSpec, Notification,
};
use alula_idl::flyteidl::core::{workflow_execution, ExecutionError, ResourceType};
use prost::Message as _;
use serde::Deserialize;

pub use email::EmailSender;
pub use template::{Context, EntityRef};
pub use webhook::{pagerduty_body, slack_body};

use crate::store::{
    now_micros, Entity, EntityKey, ExecutionKey, NewNotification, NotificationRow,
    NotificationState, Store,
};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{what}: {reason}")]
    Config { what: String, reason: String },
}

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub permanent: bool,
}

impl Failure {
    pub fn permanent(message: String) -> Self {
        Self {
            message,
            permanent: true,
        }
    }

    pub fn transient(message: String) -> Self {
        Self {
            message,
            permanent: false,
        }
    }
}

/// The `[notifications]` settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    pub smtp: Option<SmtpConfig>,
    pub slack: Option<SlackConfig>,
    pub pagerduty: Option<PagerDutyConfig>,
    pub templates: Templates,
    /// Sends tried before a notification is marked failed.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each one...
    pub initial_backoff_ms: u64,
    /// ...up to this.
    pub max_backoff_seconds: u64,
    /// How often the outbox is read for due notifications.
    pub poll_interval_ms: u64,
    /// The longest one send may take (connection, SMTP dialogue or HTTP request).
    pub send_timeout_seconds: u64,
    /// How long sent and failed notifications stay in the outbox (for inspection).
    pub keep_days: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            smtp: None,
            slack: None,
            pagerduty: None,
            templates: Templates::default(),
            max_attempts: 8,
            initial_backoff_ms: 1000,
            max_backoff_seconds: 300,
            poll_interval_ms: 1000,
            send_timeout_seconds: 30,
            keep_days: 14,
        }
    }
}

impl NotificationsConfig {
    /// The wait before the next try after `failures` failed sends in a row (1 or more).
    pub fn backoff(&self, failures: u32) -> Duration {
        backoff(
            Duration::from_millis(self.initial_backoff_ms),
            Duration::from_secs(self.max_backoff_seconds),
            failures,
        )
    }
}

/// `initial`, doubled for each failure after the first, at most `max`.
pub fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    initial
        .checked_mul(1u32 << doublings)
        .unwrap_or(max)
        .min(max)
}

/// Flyte's `emailer.subject` and `emailer.body`, used for every channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Templates {
    pub subject: String,
    pub body: String,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            subject: template::DEFAULT_SUBJECT.into(),
            body: template::DEFAULT_BODY.into(),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS, required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// Plain text (port 25 by default): a relay on this machine or in the cluster only.
    None,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: Option<u16>,
    /// The sender, e.g. `Alula <alula@example.com>`.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub security: SmtpSecurity,
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("security", &self.security)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// An incoming-webhook URL; Slack notifications are posted there.
    pub webhook_url: String,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A webhook URL is a credential.
        f.debug_struct("SlackConfig")
            .field("webhook_url", &"***")
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    #[serde(default = "default_events_url")]
    pub events_url: String,
    pub routing_key: String,
    #[serde(default = "default_severity")]
    pub severity: String,
    #[serde(default = "default_source")]
    pub source: String,
}

/// PagerDuty's Events API v2 endpoint.
pub const DEFAULT_PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

fn default_events_url() -> String {
    DEFAULT_PAGERDUTY_EVENTS_URL.into()
}

fn default_severity() -> String {
    "error".into()
}

fn default_source() -> String {
    "alula".into()
}

impl std::fmt::Debug for PagerDutyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutyConfig")
            .field("events_url", &self.events_url)
            .field("routing_key", &"***")
            .field("severity", &self.severity)
            .field("source", &self.source)
            .finish()
    }
}

/// The notifications of an execution: the spec's override, or its launch plan's.
async fn notifications_of(
    store: &Store,
    spec: &ExecutionSpec,
) -> Result<Vec<Notification>, String> {
    match &spec.notification_overrides {
        Some(execution_spec::NotificationOverrides::DisableAll(true)) => return Ok(Vec::new()),
        Some(execution_spec::NotificationOverrides::Notifications(list))
            if !list.notifications.is_empty() =>
        {
            return Ok(list.notifications.clone())
        }
        _ => {}
    }
    let Some(lp) = &spec.launch_plan else {
        return Ok(Vec::new());
    };
    // A single task's execution has no launch plan.
    if lp.resource_type != ResourceType::LaunchPlan as i32 {
        return Ok(Vec::new());
    }
    let key = EntityKey {
        project: lp.project.clone(),
        domain: lp.domain.clone(),
        name: lp.name.clone(),
        version: lp.version.clone(),
    };
    let row = store
        .get_entity(Entity::LaunchPlan, &key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "its launch plan is not found".to_string())?;
    let spec = LaunchPlanSpec::decode(row.spec.as_slice()).map_err(|e| e.to_string())?;
    Ok(spec
        .entity_metadata
        .map(|m| m.notifications)
        .unwrap_or_default())
}

/// The outbox rows for `key` reaching `phase`. Errors are logged and give no rows: a
/// notification is never a reason to refuse an event.
pub async fn due(
    store: &Store,
    key: &ExecutionKey,
    phase: workflow_execution::Phase,
    error: Option<&ExecutionError>,
) -> Vec<NewNotification> {
    match try_due(store, key, phase, error).await {
        Ok(rows) => rows,
        Err(reason) => {
            tracing::warn!(
                execution = %format!("{}/{}/{}", key.project, key.domain, key.name),
                phase = phase.as_str_name(),
                %reason,
                "cannot decide the execution's notifications; none are sent"
            );
            Vec::new()
        }
    }
}

async fn try_due(
    store: &Store,
    key: &ExecutionKey,
    phase: workflow_execution::Phase,
    error: Option<&ExecutionError>,
) -> Result<Vec<NewNotification>, String> {
    let Some((spec, closure)) = store
        .execution_spec_and_closure(key)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(Vec::new());
    };
    let spec = ExecutionSpec::decode(spec.as_slice()).map_err(|e| e.to_string())?;
    let notifications = notifications_of(store, &spec).await?;
    if !notifications
        .iter()
        .any(|n| n.phases.contains(&(phase as i32)))
    {
        return Ok(Vec::new());
    }
    let closure = ExecutionClosure::decode(closure.as_slice()).map_err(|e| e.to_string())?;
    let entity = |id: Option<&alula_idl::flyteidl::core::Identifier>| {
        id.map(|id| EntityRef {
            project: id.project.clone(),
            domain: id.domain.clone(),
            name: id.name.clone(),
            version: id.version.clone(),
        })
        .unwrap_or_default()
    };
    let base = Context {
        project: key.project.clone(),
        domain: key.domain.clone(),
        name: key.name.clone(),
        phase: phase.as_str_name().to_ascii_lowercase(),
        error_message: error.map(|e| e.message.clone()).unwrap_or_default(),
        workflow: entity(closure.workflow_id.as_ref()),
        launch_plan: entity(spec.launch_plan.as_ref()),
        body_template: String::new(),
    };
    let mut rows = Vec::new();
    for (position, n) in notifications.iter().enumerate() {
        if !n.phases.contains(&(phase as i32)) {
            continue;
        }
        let (channel, recipients, body_template) = match &n.r#type {
            Some(notification::Type::Email(e)) => ("email", &e.recipients_email, &e.template),
            Some(notification::Type::Slack(s)) => ("slack", &s.recipients_email, &s.template),
            Some(notification::Type::PagerDuty(p)) => {
                ("pager_duty", &p.recipients_email, &p.template)
            }
            None => continue,
        };
        let ctx = Context {
            body_template: body_template.clone(),
            ..base.clone()
        };
        rows.push(NewNotification {
            position: position as i64,
            channel: channel.into(),
            recipients: serde_json::to_string(recipients).map_err(|e| e.to_string())?,
            context: serde_json::to_string(&ctx).map_err(|e| e.to_string())?,
        });
    }
    Ok(rows)
}

/// Sends what the outbox holds.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    config: Arc<NotificationsConfig>,
    public_http_url: String,
    email: Option<EmailSender>,
    http: reqwest::Client,
}

/// Rows sent concurrently per round.
const BATCH: i64 = 32;

impl Notifier {
    /// Checks the settings (addresses, TLS) before anything is sent.
    pub fn new(
        store: Store,
        config: NotificationsConfig,
        public_http_url: String,
    ) -> Result<Self, NotifyError> {
        let timeout = Duration::from_secs(config.send_timeout_seconds.max(1));
        let email = config
            .smtp
            .as_ref()
            .map(|smtp| EmailSender::new(smtp, timeout))
            .transpose()?;
        Ok(Self {
            store,
            http: webhook::http_client(timeout)?,
            config: Arc::new(config),
            public_http_url,
            email,
        })
    }

    /// Sends due notifications until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let interval = Duration::from_millis(self.config.poll_interval_ms.max(10));
        tokio::pin!(stop);
        let mut pruned = None::<std::time::Instant>;
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "reading the notifications outbox failed");
            }
            if pruned.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                pruned = Some(std::time::Instant::now());
                let keep = Duration::from_secs(self.config.keep_days.saturating_mul(86_400));
                if let Err(e) = self
                    .store
                    .prune_notifications(now_micros() - micros(keep))
                    .await
                {
                    tracing::warn!(error = %e, "pruning the notifications outbox failed");
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Claims and sends the rows due now; returns how many were tried.
    pub async fn round(&self) -> Result<usize, crate::store::StoreError> {
        let now = now_micros();
        let due = self.store.due_notifications(now, BATCH).await?;
        let tried = futures::future::join_all(due.into_iter().map(|row| self.deliver(row))).await;
        Ok(tried.into_iter().filter(|t| *t).count())
    }

    /// One claimed send and its outcome; false when another sender had the row.
    async fn deliver(&self, row: NotificationRow) -> bool {
        let now = now_micros();
        // The claim holds the row for longer than a send may take, so no other replica sends it
        // meanwhile; a sender that dies leaves it due again then.
        let lease = Duration::from_secs(self.config.send_timeout_seconds.max(1) * 2 + 5);
        let lease_until = now + micros(lease);
        match self.store.claim_notification(&row, lease_until, now).await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "claiming a notification failed");
                return false;
            }
        }
        let attempts = row.attempts + 1;
        let result = self.send(&row).await;
        let now = now_micros();
        let what = format!(
            "{}/{}/{}",
            row.execution.project, row.execution.domain, row.execution.name
        );
        let (state, next, error) = match &result {
            Ok(()) => {
                tracing::info!(execution = %what, phase = %row.phase, channel = %row.notification.channel, "notification sent");
                (NotificationState::Sent, now, String::new())
            }
            Err(f) if f.permanent || attempts >= i64::from(self.config.max_attempts) => {
                tracing::error!(
                    execution = %what,
                    phase = %row.phase,
                    channel = %row.notification.channel,
                    attempts,
                    error = %f.message,
                    "notification not sent; giving up"
                );
                (NotificationState::Failed, now, f.message.clone())
            }
            Err(f) => {
                let wait = self
                    .config
                    .backoff(u32::try_from(attempts).unwrap_or(u32::MAX));
                tracing::warn!(
                    execution = %what,
                    phase = %row.phase,
                    channel = %row.notification.channel,
                    attempts,
                    retry_in = ?wait,
                    error = %f.message,
                    "notification not sent; will retry"
                );
                (
                    NotificationState::Pending,
                    now + micros(wait),
                    f.message.clone(),
                )
            }
        };
        if let Err(e) = self
            .store
            .finish_notification(&row, attempts, state, next, &error, now)
            .await
        {
            // The lease runs out and the row is sent again: at least once, never lost.
            tracing::warn!(execution = %what, error = %e, "recording a notification's outcome failed");
        }
        true
    }

    async fn send(&self, row: &NotificationRow) -> Result<(), Failure> {
        let recipients: Vec<String> = serde_json::from_str(&row.notification.recipients)
            .map_err(|e| Failure::permanent(format!("stored recipients: {e}")))?;
        let ctx: Context = serde_json::from_str(&row.notification.context)
            .map_err(|e| Failure::permanent(format!("stored context: {e}")))?;
        let message = template::message(&self.config.templates, &ctx, &self.public_http_url);
        match (
            row.notification.channel.as_str(),
            &self.config.slack,
            &self.config.pagerduty,
        ) {
            ("slack", Some(slack), _) => {
                let body = slack_body(&message, &recipients);
                webhook::post(&self.http, &slack.webhook_url, &body).await
            }
            ("pager_duty", _, Some(pd)) => {
                let link = ctx.link(&self.public_http_url);
                let body = pagerduty_body(pd, &message, &ctx, &link, &recipients);
                webhook::post(&self.http, &pd.events_url, &body).await
            }
            // Email, and Slack or PagerDuty without their own settings: Flyte's way, email to
            // the integration addresses.
            (channel, _, _) => match &self.email {
                Some(email) => email.send(&recipients, &message).await,
                None => Err(Failure::permanent(format!(
                    "a {channel} notification needs [notifications.smtp]{}",
                    match channel {
                        "slack" => " or [notifications.slack]",
                        "pager_duty" => " or [notifications.pagerduty]",
                        _ => "",
                    }
                ))),
            },
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_failure_and_is_capped() {
        let ms = Duration::from_millis;
        let b = |n| backoff(ms(100), ms(1000), n);
        assert_eq!(
            [b(1), b(2), b(3), b(4), b(5), b(6)],
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        // Absurd counts neither overflow nor exceed the cap.
        assert_eq!(b(64), ms(1000));
        assert_eq!(b(u32::MAX), ms(1000));
        assert_eq!(backoff(Duration::MAX, ms(5), 3), ms(5));
    }

    #[test]
    fn default_backoff_is_one_second_to_five_minutes() {
        let c = NotificationsConfig::default();
        assert_eq!(c.backoff(1), Duration::from_secs(1));
        assert_eq!(c.backoff(2), Duration::from_secs(2));
        assert_eq!(c.backoff(20), Duration::from_secs(300));
        assert_eq!(c.max_attempts, 8);
    }

    #[test]
    fn settings_parse_and_secrets_stay_out_of_debug() {
        let c: NotificationsConfig = serde_json::from_value(serde_json::json!({
            "smtp": {"host": "mail", "from": "a@b.c", "username": "u", "password": "hunter2"},
            "pagerduty": {"routing_key": "rk-secret"},
            "slack": {"webhook_url": "https://hooks.example/T0/B0/xyz"},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let smtp = c.smtp.as_ref().map(SmtpConfig::port);
        assert_eq!(smtp, Some(587));
        let debug = format!("{c:?}");
        for secret in ["hunter2", "rk-secret", "xyz"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let pd = c.pagerduty.as_ref().map(|p| p.events_url.as_str());
        assert_eq!(pd, Some("https://events.pagerduty.com/v2/enqueue"));
    }
}
