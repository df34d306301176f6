//! A launch plan's `admin.Schedule` parsed: a cron expression as flyteadmin's `robfig/cron`
//! `ParseStandard` reads it (five fields, UTC, plus the `@hourly`-style descriptors) or a fixed
//! rate in minutes, hours or days. Registration validates with this, so a schedule that the
//! scheduler could not run is refused at CreateLaunchPlan, not discovered at its first tick.

use alula_idl::flyteidl::admin::{schedule::ScheduleExpression, FixedRateUnit, Schedule};
use chrono::Duration;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// Why a schedule cannot run; the message names the expression and the rule it breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("schedule has no expression: set cron_schedule.schedule or rate")]
    Missing,
    #[error(
        "cron expression {expr:?}: {problem}; use five fields (minute hour day-of-month month \
         day-of-week, UTC) or @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
    )]
    Cron { expr: String, problem: String },
    #[error("cron_schedule.offset {0:?} is not supported; leave it empty")]
    Offset(String),
    #[error("fixed rate value must be at least 1, got {0}")]
    ZeroRate(u32),
    #[error("fixed rate unit {0} is unknown; use MINUTE, HOUR or DAY")]
    RateUnit(i32),
}

/// When a schedule ticks.
#[derive(Clone, Debug)]
pub enum Cadence {
    /// Ticks where the (UTC) pattern matches, at whole minutes.
    Cron(Box<Cron>),
    /// Ticks every period, counted from the launch plan's activation.
    Rate(Duration),
}

/// A schedule ready to tick.
#[derive(Clone, Debug)]
pub struct ParsedSchedule {
    pub cadence: Cadence,
    /// The workflow input that receives the tick's time, if any.
    pub kickoff_time_input_arg: Option<String>,
}

/// robfig/cron's descriptors; croner knows all but `@midnight`.
const ALIASES: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Parses a cron expression as Flyte accepts it: five fields or a descriptor. Croner's
/// extensions that robfig/cron refuses (`L`, `W`, `#`, a seconds or a year field) are refused
/// too, so a schedule valid here is valid on Flyte.
pub fn parse_cron(expr: &str) -> Result<Cron, ScheduleError> {
    let fail = |problem: &str| ScheduleError::Cron {
        expr: expr.to_string(),
        problem: problem.to_string(),
    };
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        return Err(fail("it is empty"));
    }
    let pattern = if trimmed.starts_with('@') {
        ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(trimmed))
            .map(|(_, pattern)| *pattern)
            .ok_or_else(|| fail("unknown descriptor (@every is not supported: use a rate)"))?
    } else {
        let fields = trimmed.split_whitespace().count();
        if fields != 5 {
            return Err(fail(&format!("it has {fields} fields, not 5")));
        }
        if trimmed.contains('#') {
            return Err(fail("'#' is not supported"));
        }
        // Month and weekday names (JUL, MON) are fine; croner's L and W modifiers are not
        // robfig's.
        if let Some(word) = trimmed
            .split(|ch: char| !ch.is_ascii_alphabetic())
            .find(|w| !w.is_empty() && !is_name(w))
        {
            return Err(fail(&format!("'{word}' is not supported")));
        }
        trimmed
    };
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| fail(&e.to_string()))
}

/// A month or weekday name, as cron fields may use.
fn is_name(word: &str) -> bool {
    const NAMES: [&str; 19] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "SUN",
        "MON", "TUE", "WED", "THU", "FRI", "SAT",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(word))
}

/// A fixed rate's period. Flyte's minimum granularity is one minute, which MINUTE units give.
pub fn parse_rate(value: u32, unit: i32) -> Result<Duration, ScheduleError> {
    if value == 0 {
        return Err(ScheduleError::ZeroRate(value));
    }
    let minutes = match FixedRateUnit::try_from(unit) {
        Ok(FixedRateUnit::Minute) => 1,
        Ok(FixedRateUnit::Hour) => 60,
        Ok(FixedRateUnit::Day) => 24 * 60,
        Err(_) => return Err(ScheduleError::RateUnit(unit)),
    };
    Ok(Duration::minutes(i64::from(value) * minutes))
}

/// Parses a launch plan's schedule.
pub fn parse(schedule: &Schedule) -> Result<ParsedSchedule, ScheduleError> {
    #[allow(deprecated)] // older flytekits still send cron_expression
    let cadence = match &schedule.schedule_expression {
        None => return Err(ScheduleError::Missing),
        Some(ScheduleExpression::CronExpression(expr)) => {
            Cadence::Cron(Box::new(parse_cron(expr)?))
        }
        Some(ScheduleExpression::CronSchedule(cron)) => {
            if !cron.offset.trim().is_empty() {
                return Err(ScheduleError::Offset(cron.offset.clone()));
            }
            Cadence::Cron(Box::new(parse_cron(&cron.schedule)?))
        }
        Some(ScheduleExpression::Rate(rate)) => Cadence::Rate(parse_rate(rate.value, rate.unit)?),
    };
    let arg = schedule.kickoff_time_input_arg.trim();
    Ok(ParsedSchedule {
        cadence,
        kickoff_time_input_arg: (!arg.is_empty()).then(|| arg.to_string()),
    })
}
