//! The history of a run and its check: every read against the invalidations that completed
//! before it began, and against the oldest value its function may serve.

use std::fmt::Write as _;

use crate::model::{FUNCTIONS, ROWS};

/// Headroom for the age of a served value beyond `ttl` + grace: the entry's times are whole
/// milliseconds of the wall clock, events nanoseconds of the monotonic one.
const AGE_SLACK_NS: u64 = 50_000_000;

/// One event of a history, stamped on the clock every process shares.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Read {
        process: u32,
        function: usize,
        row: u64,
        start: u64,
        end: u64,
        version: u64,
        loaded: u64,
    },
    /// An invalidation of every function's key of `rows`, begun after the rows reached
    /// `versions`; complete for every process when `everywhere` (it returned `Ok`), for its
    /// own process only otherwise (it failed and waits in that process's backlog).
    Invalidated {
        process: u32,
        everywhere: bool,
        rows: Vec<u64>,
        versions: Vec<u64>,
        start: u64,
        end: u64,
        how: String,
    },
}

impl Event {
    fn start(&self) -> u64 {
        match self {
            Event::Read { start, .. } | Event::Invalidated { start, .. } => *start,
        }
    }

    fn end(&self) -> u64 {
        match self {
            Event::Read { end, .. } | Event::Invalidated { end, .. } => *end,
        }
    }

    fn touches(&self, of: u64) -> bool {
        match self {
            Event::Read { row, .. } => *row == of,
            Event::Invalidated { rows, .. } => rows.contains(&of),
        }
    }

    /// One line, for a worker process to hand its history over.
    pub fn to_line(&self) -> String {
        match self {
            Event::Read {
                process,
                function,
                row,
                start,
                end,
                version,
                loaded,
            } => format!("R {process} {function} {row} {start} {end} {version} {loaded}"),
            Event::Invalidated {
                process,
                everywhere,
                rows,
                versions,
                start,
                end,
                how,
            } => {
                let mut line = format!("I {process} {} {start} {end} {how}", u8::from(*everywhere));
                for (r, v) in rows.iter().zip(versions) {
                    let _ = write!(line, " {r}:{v}");
                }
                line
            }
        }
    }

    /// Parses [`to_line`](Self::to_line).
    pub fn from_line(line: &str) -> Option<Event> {
        let mut parts = line.split(' ');
        let kind = parts.next()?;
        let mut num = || -> Option<u64> { parts.next()?.parse().ok() };
        match kind {
            "R" => Some(Event::Read {
                process: num()? as u32,
                function: num()? as usize,
                row: num()?,
                start: num()?,
                end: num()?,
                version: num()?,
                loaded: num()?,
            }),
            "I" => {
                let process = num()? as u32;
                let everywhere = num()? == 1;
                let (start, end) = (num()?, num()?);
                let how = parts.next()?.to_owned();
                let (mut rows, mut versions) = (Vec::new(), Vec::new());
                for pair in parts {
                    let (r, v) = pair.split_once(':')?;
                    rows.push(r.parse().ok()?);
                    versions.push(v.parse().ok()?);
                }
                Some(Event::Invalidated {
                    process,
                    everywhere,
                    rows,
                    versions,
                    start,
                    end,
                    how,
                })
            }
            _ => None,
        }
    }
}

/// Checks `events`; returns the first violation, described with the seed that replays it and
/// the smallest excerpt of history that shows it. An invalidation binds its own process from
/// its end, and the others `bound_ns` later (the L1 propagation bound; 0 without L1).
pub fn check(events: &[Event], store: &str, seed: u64, bound_ns: u64) -> Result<(), String> {
    let processes = events
        .iter()
        .map(|e| match e {
            Event::Read { process, .. } | Event::Invalidated { process, .. } => *process + 1,
        })
        .max()
        .unwrap_or(0) as usize;
    // Per process and row: (end of an invalidation complete for that process, the newest
    // version it covers so far), by end.
    let mut owed_by_row: Vec<Vec<(u64, u64)>> = vec![Vec::new(); ROWS as usize * processes];
    for event in events {
        if let Event::Invalidated {
            process,
            everywhere,
            rows,
            versions,
            end,
            ..
        } = event
        {
            for p in 0..processes {
                if !everywhere && p != *process as usize {
                    continue;
                }
                let from = if p == *process as usize {
                    *end
                } else {
                    end + bound_ns
                };
                for (row, version) in rows.iter().zip(versions) {
                    owed_by_row[p * ROWS as usize + *row as usize].push((from, *version));
                }
            }
        }
    }
    for owed in &mut owed_by_row {
        owed.sort_unstable();
        let mut newest = 0;
        for (_, version) in owed.iter_mut() {
            newest = newest.max(*version);
            *version = newest;
        }
    }
    let rerun = format!("{store}, seed {seed} (rerun with CACHETTE_HISTORY_SEED={seed})");
    for read in events {
        let Event::Read {
            process,
            function,
            row,
            start,
            version,
            loaded,
            ..
        } = read
        else {
            continue;
        };
        // The newest version whose invalidation completed before this read began.
        let owed = &owed_by_row[*process as usize * ROWS as usize + *row as usize];
        let before = owed.partition_point(|(end, _)| end < start);
        let owed = if before == 0 { 0 } else { owed[before - 1].1 };
        if *version < owed {
            return Err(format!(
                "{rerun}: a read of {} row {row} returned version {version}, older than \
                 version {owed} whose invalidation had completed before the read began\n{}",
                FUNCTIONS[*function].name,
                excerpt(events, read, *row)
            ));
        }
        let f = &FUNCTIONS[*function];
        let limit = (f.ttl_ms + f.grace_ms) * 1_000_000 + AGE_SLACK_NS;
        if start.saturating_sub(*loaded) > limit {
            return Err(format!(
                "{rerun}: a read of {} row {row} returned a value loaded {} ms before the read \
                 began, where ttl + fail-safe allow {} ms\n{}",
                f.name,
                start.saturating_sub(*loaded) / 1_000_000,
                f.ttl_ms + f.grace_ms,
                excerpt(events, read, *row)
            ));
        }
    }
    Ok(())
}

/// The events of `row` around `read`, oldest first, with times relative to the read's start.
fn excerpt(events: &[Event], read: &Event, row: u64) -> String {
    const BEFORE_NS: u64 = 50_000_000;
    let from = read.start().saturating_sub(BEFORE_NS);
    let mut near: Vec<&Event> = events
        .iter()
        .filter(|e| e.touches(row) && e.end() >= from && e.start() <= read.end())
        .collect();
    near.sort_by_key(|e| e.start());
    let base = read.start() as i128;
    let mut text = String::from("the row's events around it (µs from the read's start):\n");
    for e in near {
        let at = |t: u64| (t as i128 - base) / 1000;
        let mark = if e == read { "=> " } else { "   " };
        let _ = match e {
            Event::Read {
                process,
                function,
                start,
                end,
                version,
                loaded,
                ..
            } => writeln!(
                text,
                "{mark}[{}..{}] process {process} read {} -> version {version} (loaded at {})",
                at(*start),
                at(*end),
                FUNCTIONS[*function].name,
                at(*loaded)
            ),
            Event::Invalidated {
                process,
                everywhere,
                rows,
                versions,
                start,
                end,
                how,
            } => {
                let failed = if *everywhere { "" } else { " (failed: queued)" };
                let v = rows
                    .iter()
                    .zip(versions)
                    .find(|(r, _)| **r == row)
                    .map_or(0, |(_, v)| *v);
                writeln!(
                    text,
                    "{mark}[{}..{}] process {process} invalidated by {how} at version {v}{failed}",
                    at(*start),
                    at(*end)
                )
            }
        };
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(start: u64, version: u64) -> Event {
        Event::Read {
            process: 0,
            function: 0,
            row: 1,
            start,
            end: start + 10,
            version,
            loaded: start,
        }
    }

    fn invalidated(start: u64, end: u64, version: u64) -> Event {
        Event::Invalidated {
            process: 0,
            everywhere: true,
            rows: vec![1],
            versions: vec![version],
            start,
            end,
            how: "key".into(),
        }
    }

    #[test]
    fn events_survive_their_lines() {
        for e in [read(5, 7), invalidated(1, 2, 3)] {
            assert_eq!(Event::from_line(&e.to_line()), Some(e));
        }
    }

    #[test]
    fn a_read_older_than_a_completed_invalidation_is_caught() {
        let history = [invalidated(100, 200, 2), read(300, 1)];
        let err = check(&history, "test", 7, 0).unwrap_err();
        assert!(
            err.contains("returned version 1, older than version 2"),
            "{err}"
        );
        assert!(err.contains("CACHETTE_HISTORY_SEED=7"), "{err}");
    }

    #[test]
    fn a_read_that_overlaps_the_invalidation_may_be_older() {
        let history = [invalidated(100, 200, 2), read(150, 1)];
        assert_eq!(check(&history, "test", 7, 0), Ok(()));
    }

    #[test]
    fn a_failed_invalidation_binds_its_own_process_only() {
        let failed = |process| {
            let mut inv = invalidated(100, 200, 2);
            if let Event::Invalidated {
                process: p,
                everywhere,
                ..
            } = &mut inv
            {
                (*p, *everywhere) = (process, false);
            }
            inv
        };
        assert_eq!(check(&[failed(1), read(300, 1)], "test", 7, 0), Ok(()));
        assert!(check(&[failed(0), read(300, 1)], "test", 7, 0).is_err());
    }

    #[test]
    fn other_processes_are_bound_after_the_propagation_bound() {
        let other = |start| {
            let mut r = read(start, 1);
            if let Event::Read { process, .. } = &mut r {
                *process = 1;
            }
            r
        };
        let inv = invalidated(100, 200, 2);
        assert_eq!(check(&[inv.clone(), other(250)], "test", 7, 100), Ok(()));
        assert!(check(&[inv.clone(), other(301)], "test", 7, 100).is_err());
        assert!(
            check(&[inv, read(250, 1)], "test", 7, 100).is_err(),
            "its own process at once"
        );
    }

    #[test]
    fn a_value_past_its_ttl_is_caught() {
        let mut old = read(2_000_000_000, 1);
        if let Event::Read { loaded, .. } = &mut old {
            *loaded = 1_000_000_000;
        }
        let err = check(&[old], "test", 7, 0).unwrap_err();
        assert!(err.contains("loaded 1000 ms before"), "{err}");
    }
}
