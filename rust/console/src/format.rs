//! Small pieces every page shows the same way: phases, times, durations, identifiers.

use alula_idl::flyteidl::core::{node_execution, task_execution, workflow_execution};
use alula_idl::wkt::{Duration as ProtoDuration, Timestamp};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

/// A phase badge: `<span class="phase" data-phase="SUCCEEDED">` (the proto name), coloured by
/// the stylesheet per phase, with a readable label.
pub fn phase_badge(name: &str) -> Markup {
    html! {
        span.phase data-phase=(name) { (phase_label(name)) }
    }
}

/// `RUNNING` → `Running`, `TIMED_OUT` → `Timed out`.
pub fn phase_label(name: &str) -> String {
    let lower = name.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub fn workflow_phase(phase: i32) -> &'static str {
    workflow_execution::Phase::try_from(phase)
        .unwrap_or(workflow_execution::Phase::Undefined)
        .as_str_name()
}

pub fn node_phase(phase: i32) -> &'static str {
    node_execution::Phase::try_from(phase)
        .unwrap_or(node_execution::Phase::Undefined)
        .as_str_name()
}

pub fn task_phase(phase: i32) -> &'static str {
    task_execution::Phase::try_from(phase)
        .unwrap_or(task_execution::Phase::Undefined)
        .as_str_name()
}

/// True for the phases after which a node execution does not change.
pub fn node_phase_is_terminal(phase: i32) -> bool {
    use node_execution::Phase;
    matches!(
        Phase::try_from(phase),
        Ok(Phase::Succeeded
            | Phase::Failed
            | Phase::Aborted
            | Phase::Skipped
            | Phase::TimedOut
            | Phase::Recovered)
    )
}

/// True for the phases after which an execution does not change.
pub fn workflow_phase_is_terminal(phase: i32) -> bool {
    use workflow_execution::Phase;
    matches!(
        Phase::try_from(phase),
        Ok(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::TimedOut)
    )
}

pub fn datetime(ts: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0))
}

/// A moment as `<time datetime="...">2026-12-02 15:04:05 UTC</time>`; the page's script turns
/// it into the reader's local time and a relative form ("3 min ago").
pub fn time(ts: Option<&Timestamp>) -> Markup {
    match ts.and_then(datetime) {
        Some(at) if at.timestamp() > 0 => html! {
            time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) }
        },
        _ => html! { span.none { "—" } },
    }
}

/// `1h 02m`, `3m 04s`, `12.3s`, `850ms`.
pub fn duration_text(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if s >= 10 {
        format!("{s}s")
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

pub fn proto_duration(d: Option<&ProtoDuration>) -> Option<std::time::Duration> {
    let d = d?;
    let nanos = u32::try_from(d.nanos).ok()?;
    Some(std::time::Duration::new(
        u64::try_from(d.seconds).ok()?,
        nanos,
    ))
}

/// A proto duration as text, `—` when absent.
pub fn duration(d: Option<&ProtoDuration>) -> String {
    proto_duration(d).map_or_else(|| "—".to_string(), duration_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_read_as_words() {
        assert_eq!(phase_label("TIMED_OUT"), "Timed out");
        assert_eq!(phase_label("SUCCEEDED"), "Succeeded");
        assert_eq!(node_phase(3), "SUCCEEDED");
        assert_eq!(workflow_phase(4), "SUCCEEDED");
    }

    #[test]
    fn durations_are_short() {
        use std::time::Duration;
        assert_eq!(duration_text(Duration::from_millis(850)), "850ms");
        assert_eq!(duration_text(Duration::from_millis(1234)), "1.2s");
        assert_eq!(duration_text(Duration::from_secs(184)), "3m 04s");
        assert_eq!(duration_text(Duration::from_secs(3720)), "1h 02m");
    }
}
