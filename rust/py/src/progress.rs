//! A one-line progress display for local runs that take longer than a second: node counts by
//! phase (and array elements), redrawn at most five times a second on stderr.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use alula_engine::{Execution, KindState, NodePhase};

const QUIET_FOR: Duration = Duration::from_secs(1);
const REDRAW_EVERY: Duration = Duration::from_millis(200);

pub struct Progress {
    enabled: bool,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// On when stderr is a terminal; `ALULA_PROGRESS=1` forces it on, `=0` off.
    pub fn new() -> Self {
        let enabled = match std::env::var("ALULA_PROGRESS").as_deref() {
            Ok("1") => true,
            Ok("0") => false,
            _ => std::io::stderr().is_terminal(),
        };
        Progress {
            enabled,
            start: Instant::now(),
            last: None,
        }
    }

    pub fn tick(&mut self, exec: &Execution) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.start) < QUIET_FOR
            || self
                .last
                .is_some_and(|l| now.duration_since(l) < REDRAW_EVERY)
        {
            return;
        }
        self.last = Some(now);
        let _ = write!(
            std::io::stderr(),
            "\r{}",
            summary(exec, now.duration_since(self.start))
        );
    }

    /// Draws the final counts and ends the line, if anything was drawn.
    pub fn finish(&mut self, exec: &Execution) {
        if self.last.is_some() {
            let _ = writeln!(
                std::io::stderr(),
                "\r{}",
                summary(exec, self.start.elapsed())
            );
        }
    }
}

fn summary(exec: &Execution, elapsed: Duration) -> String {
    let (mut running, mut succeeded, mut failed, mut skipped, mut waiting) = (0, 0, 0, 0, 0);
    let (mut elements_done, mut elements) = (0u64, 0u64);
    for node in &exec.state().nodes {
        match node.phase {
            NodePhase::Running | NodePhase::DynamicRunning => running += 1,
            NodePhase::Succeeded => succeeded += 1,
            NodePhase::Failed | NodePhase::TimedOut | NodePhase::Aborted => failed += 1,
            NodePhase::Skipped => skipped += 1,
            NodePhase::NotYetStarted => waiting += 1,
        }
        if let KindState::Array(arr) = &node.kind {
            elements += arr.elements.len() as u64;
            elements_done += u64::from(arr.succeeded + arr.failed);
        }
    }
    let mut line = format!(
        "[alula {:>5.1}s] nodes: {running} running, {succeeded} succeeded, {failed} failed, {skipped} skipped, {waiting} waiting",
        elapsed.as_secs_f64()
    );
    if elements > 0 {
        line.push_str(&format!("; map elements: {elements_done}/{elements}"));
    }
    line
}
