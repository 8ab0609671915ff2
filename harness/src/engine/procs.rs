//! Finding and stopping the processes a lab started, so that none survives its step or its lab.
//!
//! Two handles reach them. Every lab's terminal runs in its own process group, which its
//! commands inherit. And every process a lab starts carries `LABBOOK_LAB=<token>` (and, for the
//! step that started it, `LABBOOK_STEP=<token>.<n>`) in its environment, which `/proc/<pid>/environ`
//! shows even after a daemon left the process group with `setsid`. Signalling by group catches
//! processes that cleared their environment; scanning environments catches those that left the
//! group. Only processes of the current user are visible, which is all a lab can start.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Whether a process exists and is not a zombie (a zombie has exited; only its parent's
/// bookkeeping is left).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pids whose environment holds exactly `entry` (`NAME=value`), except `except`.
pub fn with_env(entry: &str, except: &[i32]) -> Vec<i32> {
    let own = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = entry.as_bytes();
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != own && !except.contains(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle))
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Sends `signal` to each pid, ignoring those that are already gone.
pub fn signal_all(pids: &[i32], signal: Signal) {
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), signal);
    }
}

/// Sends `signal` to a process group; returns whether the group still had members.
pub fn signal_group(pgid: i32, signal: Signal) -> bool {
    !matches!(killpg(Pid::from_raw(pgid), signal), Err(Errno::ESRCH))
}

/// Whether any live process is left in the group.
fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')').is_some_and(|(_, rest)| {
                    let fields: Vec<&str> = rest.split_whitespace().collect();
                    // Fields after the name: state, ppid, pgrp, ...
                    fields.first().is_some_and(|s| *s != "Z" && *s != "X")
                        && fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
                })
            })
        })
}

/// Stops everything a lab started: SIGTERM to its process groups and to every process carrying
/// its environment marker, then SIGKILL to whatever is left after `grace`. Returns a description
/// of the processes that needed SIGKILL.
pub fn reap(pgids: &[i32], marker: &str, grace: Duration) -> Vec<String> {
    for pgid in pgids {
        signal_group(*pgid, Signal::SIGCONT);
        signal_group(*pgid, Signal::SIGTERM);
    }
    let marked = with_env(marker, &[]);
    signal_all(&marked, Signal::SIGCONT);
    signal_all(&marked, Signal::SIGTERM);

    let deadline = Instant::now() + grace;
    let survivors = |pgids: &[i32]| -> (Vec<i32>, Vec<i32>) {
        let groups = pgids.iter().copied().filter(|g| group_alive(*g)).collect();
        (groups, with_env(marker, &[]))
    };
    let (mut groups, mut procs) = survivors(pgids);
    while (!groups.is_empty() || !procs.is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        (groups, procs) = survivors(pgids);
    }
    let mut killed = Vec::new();
    for pgid in groups {
        signal_group(pgid, Signal::SIGKILL);
        killed.push(format!("process group {pgid}"));
    }
    for pid in procs {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        killed.push(format!("process {pid} ({name})"));
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_processes_are_found_and_reaped() {
        let marker = format!("LABBOOK_LAB=unit-test-{}", std::process::id());
        let (name, value) = marker.split_once('=').expect("marker");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(name, value)
            .spawn()
            .expect("sleep starts");
        let pid = child.id() as i32;
        // Right after exec the kernel may still show an empty environment for a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while with_env(&marker, &[]).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(with_env(&marker, &[]), vec![pid]);
        assert!(with_env(&marker, &[pid]).is_empty());
        assert!(alive(pid));
        let killed = reap(&[], &marker, Duration::from_secs(5));
        assert!(killed.is_empty(), "SIGTERM was enough: {killed:?}");
        let _ = child.wait();
        assert!(!alive(pid));
        assert!(!alive(-1));
    }
}
