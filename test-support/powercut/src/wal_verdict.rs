//! What a WAL must show after a power cut, judged from the guest's lines
//! (formats in [`crate::workload`]).
//!
//! - The log opens with the default recovery mode and every record reads back
//!   as one a writer made.
//! - Nothing acknowledged is lost: every `ACK <lsn> <w> <s>` at or past the
//!   highest LSN a truncation was asked for is read back at that LSN as (w, s).
//! - Nothing is invented or doubled: LSNs are dense; each writer's records, in
//!   LSN order, carry consecutive sequence numbers (a writer appends its next
//!   record only after the last one was durable), each once.

use std::collections::HashMap;

/// What the writer boot printed before the power went.
#[derive(Debug, Default)]
pub struct WriterLog {
    /// LSN -> (writer, seq), for each append that returned.
    pub acked: HashMap<u64, (u64, u64)>,
    /// The highest LSN passed to `truncate_before` (records below it may be gone).
    pub truncated_below: u64,
}

impl WriterLog {
    /// Takes one console line of the writer; an error for a line saying the writer stopped.
    pub fn take(&mut self, line: &str) -> Result<(), String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[..] {
            ["ACK", lsn, writer, seq] => {
                let parsed = (lsn.parse(), writer.parse(), seq.parse());
                let (Ok(lsn), Ok(writer), Ok(seq)) = parsed else {
                    return Err(format!("unreadable ack line {line:?}"));
                };
                self.acked.insert(lsn, (writer, seq));
            }
            ["TRUNCATING", lsn] => {
                let lsn: u64 = lsn
                    .parse()
                    .map_err(|_| format!("unreadable line {line:?}"))?;
                self.truncated_below = self.truncated_below.max(lsn);
            }
            ["GUESTFAIL", ..] | ["GUESTEXIT", ..] | ["MOUNTFAIL"] | ["INSMODFAIL", ..] => {
                return Err(format!("writer stopped: {line}"));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The checker boot's findings, and whether they keep the promise.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Records read back.
    pub records: u64,
    /// First and last LSN read back.
    pub lsns: Option<(u64, u64)>,
    /// Everything that breaks the promise; empty when it holds.
    pub violations: Vec<String>,
}

/// Judges the checker's `lines` against what the writer acknowledged.
pub fn judge(writer: &WriterLog, lines: &[String]) -> Verdict {
    let mut v = Verdict::default();
    let mut found: Vec<(u64, u64, u64)> = Vec::new();
    let mut checked = false;
    for line in lines {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[..] {
            ["R", lsn, writer, seq] => match (lsn.parse(), writer.parse(), seq.parse()) {
                (Ok(l), Ok(w), Ok(s)) => found.push((l, w, s)),
                _ => v.violations.push(format!("unreadable line {line:?}")),
            },
            ["CHECK", ..] => checked = true,
            ["OPENFAIL", ..]
            | ["READERR", ..]
            | ["BAD", ..]
            | ["GUESTFAIL", ..]
            | ["MOUNTFAIL"] => v.violations.push(line.clone()),
            _ => {}
        }
    }
    if !checked {
        let tail = &lines[lines.len().saturating_sub(4)..];
        v.violations.push(format!(
            "the checker printed no CHECK line; its last lines: {tail:?}"
        ));
    }
    v.records = found.len() as u64;
    v.lsns = found.first().zip(found.last()).map(|(a, b)| (a.0, b.0));
    dense(&found, &mut v.violations);
    per_writer(&found, &mut v.violations);
    nothing_acked_lost(writer, &found, &mut v.violations);
    v
}

fn dense(found: &[(u64, u64, u64)], out: &mut Vec<String>) {
    for pair in found.windows(2) {
        if pair[1].0 != pair[0].0 + 1 {
            out.push(format!("LSN {} follows LSN {}", pair[1].0, pair[0].0));
        }
    }
}

fn per_writer(found: &[(u64, u64, u64)], out: &mut Vec<String>) {
    let mut last: HashMap<u64, (u64, u64)> = HashMap::new();
    for &(lsn, w, s) in found {
        if let Some(&(prev_lsn, prev_seq)) = last.get(&w)
            && s != prev_seq + 1
        {
            out.push(format!(
                "writer {w}: seq {s} at LSN {lsn} after seq {prev_seq} at LSN {prev_lsn}"
            ));
        }
        last.insert(w, (lsn, s));
    }
}

fn nothing_acked_lost(writer: &WriterLog, found: &[(u64, u64, u64)], out: &mut Vec<String>) {
    let by_lsn: HashMap<u64, (u64, u64)> = found.iter().map(|&(l, w, s)| (l, (w, s))).collect();
    let mut lost: Vec<u64> = Vec::new();
    for (&lsn, &ws) in &writer.acked {
        if lsn < writer.truncated_below {
            continue;
        }
        match by_lsn.get(&lsn) {
            Some(&got) if got == ws => {}
            Some(&got) => out.push(format!(
                "LSN {lsn} was acknowledged as {ws:?}, reads back as {got:?}"
            )),
            None => lost.push(lsn),
        }
    }
    lost.sort_unstable();
    if let (Some(first), Some(last)) = (lost.first(), lost.last()) {
        out.push(format!(
            "{} acknowledged records lost (LSN {first}..={last})",
            lost.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(lines: &[&str]) -> WriterLog {
        let mut w = WriterLog::default();
        for l in lines {
            w.take(l).expect("a writer line");
        }
        w
    }

    fn lines(ls: &[&str]) -> Vec<String> {
        ls.iter().map(|s| s.to_string()).collect()
    }

    const ACKS: [&str; 4] = ["ACK 1 0 1", "ACK 2 1 1", "ACK 3 0 2", "TRUNCATING 2"];

    #[test]
    fn a_log_holding_every_ack_and_more_passes() {
        let w = writer(&ACKS);
        let ok = lines(&[
            "R 1 0 1",
            "R 2 1 1",
            "R 3 0 2",
            "R 4 1 2",
            "CHECK records=4 bad=0",
        ]);
        let v = judge(&w, &ok);
        assert_eq!(v.violations, Vec::<String>::new());
        assert_eq!((v.records, v.lsns), (4, Some((1, 4))));
        // Records below the truncation point may be gone.
        let truncated = lines(&["R 2 1 1", "R 3 0 2", "CHECK records=2 bad=0"]);
        assert!(judge(&w, &truncated).violations.is_empty());
    }

    #[test]
    fn every_broken_promise_is_named() {
        let w = writer(&ACKS);
        let cases: [(&[&str], &str); 6] = [
            (
                &["R 1 0 1", "R 2 1 1", "CHECK records=2 bad=0"],
                "acknowledged records lost",
            ),
            (&["R 1 0 1", "R 2 1 1", "R 3 1 2", "CHECK"], "reads back as"),
            (&["R 1 0 1", "R 2 1 1", "R 4 0 2", "CHECK"], "follows LSN"),
            (
                &["R 1 0 1", "R 2 1 1", "R 3 0 2", "R 4 0 2", "CHECK"],
                "writer 0",
            ),
            (&["OPENFAIL corruption in seg-1"], "OPENFAIL"),
            (&["R 1 0 1", "R 2 1 1", "R 3 0 2"], "no CHECK line"),
        ];
        for (checker, expect) in cases {
            let v = judge(&w, &lines(checker));
            assert!(
                v.violations.iter().any(|m| m.contains(expect)),
                "{checker:?}: wanted {expect:?}, got {:?}",
                v.violations
            );
        }
    }

    #[test]
    fn a_writer_that_stopped_is_an_error() {
        let mut w = WriterLog::default();
        assert!(w.take("GUESTFAIL append: disk full").is_err());
        assert!(w.take("MOUNTFAIL").is_err());
        assert!(w.take("ACK x 0 1").is_err());
    }
}
