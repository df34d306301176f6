//! When a schedule ticks: the first tick after an activation, the tick after a tick, and the
//! latest tick that is due (the catch-up rule: of the ticks missed while no scheduler ran, only
//! the latest is launched).

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::spec::Cadence;

/// The first tick strictly after `activated`. A rate counts from the activation (to the whole
/// second, so tick times stay readable), as Flyte's `@every`; a cron pattern ticks where it
/// matches.
pub fn first_tick(cadence: &Cadence, activated: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match cadence {
        Cadence::Rate(period) => {
            let start = activated
                .duration_trunc(TimeDelta::seconds(1))
                .unwrap_or(activated);
            start.checked_add_signed(*period)
        }
        Cadence::Cron(cron) => cron.find_next_occurrence(&activated, false).ok(),
    }
}

/// The tick following `tick`.
pub fn next_tick(cadence: &Cadence, tick: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match cadence {
        Cadence::Rate(period) => tick.checked_add_signed(*period),
        Cadence::Cron(cron) => cron.find_next_occurrence(&tick, false).ok(),
    }
}

/// The latest tick in `[pending, now]`, where `pending` is the earliest tick not launched yet;
/// `None` while `pending` is in the future.
pub fn latest_due(
    cadence: &Cadence,
    pending: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if pending > now {
        return None;
    }
    match cadence {
        Cadence::Rate(period) => {
            let step = period.num_microseconds().filter(|s| *s > 0)?;
            let behind = (now - pending).num_microseconds()?;
            pending.checked_add_signed(TimeDelta::microseconds(behind / step * step))
        }
        // `pending` is itself a tick, so the previous match of `now` is never before it.
        Cadence::Cron(cron) => Some(
            cron.find_previous_occurrence(&now, true)
                .ok()
                .filter(|t| *t >= pending)
                .unwrap_or(pending),
        ),
    }
}

/// How many ticks in `[from, to)`: the ones the catch-up rule skips (for the log), capped so a
/// long downtime of a minutely schedule costs little to count.
pub fn ticks_between(cadence: &Cadence, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
    const CAP: usize = 10_000;
    let mut n = 0;
    let mut t = from;
    while t < to && n < CAP {
        n += 1;
        match next_tick(cadence, t) {
            Some(next) => t = next,
            None => break,
        }
    }
    n
}
