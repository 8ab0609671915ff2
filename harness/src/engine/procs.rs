//! Finding and stopping the processes a lab started, so that none survives its step or its lab.
//!
//! Two handles reach them. Every lab's terminal runs in its own process group, which its
//! commands inherit. And every process a lab starts carries `LABBOOK_LAB=<token>` (and, for the
//! step that started it, `LABBOOK_STEP=<token>.<n>`) in its environment, which `/proc/<pid>/environ`
//! shows even after a daemon left the process group with `setsid`. Signalling by group catches
//! processes that cleared their environment; scanning environments catches those that left the
//! group. Only processes of the current user are visible, which is all a lab can start.
//!
//! A process that does both (`env -i setsid sh -c 'sleep 1000 &'`) is found by the process tree:
//! labbook is the "child subreaper" of everything it starts, so such an orphan becomes labbook's
//! child instead of init's, and is reaped at the end of its lab (when its process group is the
//! lab's) or of the run. Where labbook can create cgroups, each lab's cgroup holds them too, and
//! they are reaped at the end of their lab (see [`super::cgroup`]).
//!
//! A labbook killed with SIGKILL cleans nothing; the next run finds what it left: processes by
//! their marker (whose token names the dead labbook's pid) and the temporary run folder by the
//! `owner` record written into it, and reaps both ([`reap_stale`]).

use std::time::{Duration, Instant};

use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// The file of a run folder naming the labbook process that owns it.
pub const OWNER: &str = "labbook-owner";

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, session.
fn stat(pid: i32) -> Option<(String, i32, i32, i32)> {
    let stat = String::from_utf8(read_proc(&format!("/proc/{pid}/stat"))?).ok()?;
    // The state follows the command name, which is in parentheses and may contain spaces.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_string();
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp, session))
}

/// A file of `/proc`, read at once: its size is unknown (0), so a plain read starts with small
/// reads, and scanning every process of the machine pays for each.
fn read_proc(path: &str) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .ok()?;
    Some(bytes)
}

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Makes labbook the reaper of the orphans its labs leave (`setsid` daemons whose parent
/// exited), so that they stay in its process tree and can be found.
pub fn adopt_orphans() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Every live descendant of `roots` (not the roots themselves).
pub fn descendants(roots: &[i32]) -> Vec<i32> {
    let table: Vec<(i32, i32)> = pids()
        .into_iter()
        .filter_map(|pid| {
            let (state, ppid, ..) = stat(pid)?;
            (state != "Z" && state != "X").then_some((pid, ppid))
        })
        .collect();
    let mut found: Vec<i32> = Vec::new();
    let mut frontier: Vec<i32> = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for (pid, ppid) in &table {
            if *ppid == parent && !found.contains(pid) && !roots.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// The orphans labbook adopted (see [`adopt_orphans`]) whose process group is one of `groups`,
/// or all of them for `None`, with their descendants. labbook's own children (cluster tools,
/// the labs' shells) share its process group or lead their own, which is in `shells`.
pub fn adopted(groups: Option<&[i32]>, shells: &[i32]) -> Vec<i32> {
    let own = std::process::id() as i32;
    let own_group = nix::unistd::getpgrp().as_raw();
    let orphans: Vec<i32> = pids()
        .into_iter()
        .filter(|pid| !shells.contains(pid))
        .filter(|pid| {
            stat(*pid).is_some_and(|(state, ppid, pgrp, _)| {
                ppid == own
                    && state != "Z"
                    && pgrp != own_group
                    && groups.is_none_or(|g| g.contains(&pgrp))
            })
        })
        .collect();
    let mut all = descendants(&orphans);
    all.extend(orphans);
    all
}

/// Collects the exit status of adopted orphans that ended, so that they do not stay zombies.
fn bury(pids: &[i32]) {
    let own = std::process::id() as i32;
    for pid in pids {
        if stat(*pid).is_some_and(|(_, ppid, ..)| ppid == own) {
            let _ = waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Records a lab shell's pid in its control folder, for the next run to find if this one is
/// killed (see [`reap_stale`]).
pub fn record_shell(control: &Path, pid: i32) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(control.join("shells"))
    {
        let _ = writeln!(file, "{pid}");
    }
}

/// Writes the owner record of a run folder.
pub fn record_owner(run_root: &Path) -> std::io::Result<()> {
    std::fs::write(run_root.join(OWNER), format!("{}\n", std::process::id()))
}

/// Whether `pid` is a running labbook (not this one).
pub fn live_labbook(pid: i32) -> bool {
    pid != std::process::id() as i32
        && alive(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim().starts_with("labbook"))
}

/// The labbook pid in a lab token (`lb<pid>x<n>`).
fn token_owner(token: &str) -> Option<i32> {
    token.strip_prefix("lb")?.split_once('x')?.0.parse().ok()
}

/// Finds what runs killed with SIGKILL left behind: processes carrying a marker of a labbook
/// that no longer runs (and the process groups and sessions of their recorded shells), and
/// temporary run folders (`labbook-run-*` under `tmp`) whose owner no longer runs. Stops the
/// processes, removes the folders, and describes what it did.
pub fn reap_stale(tmp: &Path) -> Vec<String> {
    let mut done = Vec::new();
    let mut groups: Vec<i32> = Vec::new();
    let mut folders = Vec::new();
    if let Ok(dir) = std::fs::read_dir(tmp) {
        for entry in dir.filter_map(|e| e.ok()) {
            let path = entry.path();
            let named = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("labbook-run-"));
            let owner = std::fs::read_to_string(path.join(OWNER))
                .ok()
                .and_then(|o| o.trim().parse::<i32>().ok());
            let Some(owner) = owner.filter(|o| named && !live_labbook(*o)) else {
                continue;
            };
            if owner == std::process::id() as i32 {
                continue;
            }
            for lab in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                let shells =
                    std::fs::read_to_string(lab.path().join("control/shells")).unwrap_or_default();
                groups.extend(shells.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            folders.push(path);
        }
    }
    let own = std::process::id() as i32;
    let mut stale: Vec<i32> = pids()
        .into_iter()
        .filter(|pid| *pid != own)
        .filter(|pid| {
            let marked = read_proc(&format!("/proc/{pid}/environ")).is_some_and(|env| {
                env.split(|b| *b == 0).any(|var| {
                    std::str::from_utf8(var)
                        .ok()
                        .and_then(|v| v.strip_prefix("LABBOOK_LAB="))
                        .and_then(token_owner)
                        .is_some_and(|o| o != own && !live_labbook(o))
                })
            });
            marked
                || !groups.is_empty()
                    && stat(*pid).is_some_and(|(state, _, pgrp, session)| {
                        state != "Z" && (groups.contains(&pgrp) || groups.contains(&session))
                    })
        })
        .filter(|pid| alive(*pid))
        .collect();
    stale.sort_unstable();
    if !stale.is_empty() {
        signal_all(&stale, Signal::SIGKILL);
        done.push(format!(
            "stopped {} process(es) left by an earlier labbook run that was killed: {}",
            stale.len(),
            stale
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for folder in folders {
        if std::fs::remove_dir_all(&folder).is_ok() {
            done.push(format!(
                "removed {}, left by an earlier labbook run that was killed",
                folder.display()
            ));
        }
    }
    done
}

/// Whether a process exists and is not a zombie (a zombie has exited; only its parent's
/// bookkeeping is left).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, ..)| state != "Z" && state != "X")
}

/// The pids whose environment holds exactly `entry` (`NAME=value`), except `except`.
pub fn with_env(entry: &str, except: &[i32]) -> Vec<i32> {
    let own = std::process::id() as i32;
    let needle = entry.as_bytes();
    // No marker (a lab held by its cgroup): no need to list every process of the machine.
    if needle.is_empty() {
        return Vec::new();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != own && !except.contains(pid))
        .filter(|pid| {
            read_proc(&format!("/proc/{pid}/environ"))
                .is_some_and(|env| env.split(|b| *b == 0).any(|var| var == needle))
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
    pids().into_iter().any(|pid| {
        stat(pid).is_some_and(|(state, _, pgrp, _)| state != "Z" && state != "X" && pgrp == pgid)
    })
}

/// Stops everything a lab started: SIGTERM to its process groups, to every process carrying its
/// environment marker and to `tree` (the processes found by the process tree), then SIGKILL to
/// whatever is left after `grace`. Returns a description of the processes that needed SIGKILL.
pub fn reap(pgids: &[i32], marker: &str, tree: &[i32], grace: Duration) -> Vec<String> {
    for pgid in pgids {
        signal_group(*pgid, Signal::SIGCONT);
        signal_group(*pgid, Signal::SIGTERM);
    }
    let marked = with_env(marker, &[]);
    signal_all(&marked, Signal::SIGCONT);
    signal_all(&marked, Signal::SIGTERM);
    signal_all(tree, Signal::SIGCONT);
    signal_all(tree, Signal::SIGTERM);

    let deadline = Instant::now() + grace;
    let survivors = |pgids: &[i32]| -> (Vec<i32>, Vec<i32>) {
        bury(tree);
        let groups = pgids.iter().copied().filter(|g| group_alive(*g)).collect();
        let mut procs = with_env(marker, &[]);
        let left: Vec<i32> = tree
            .iter()
            .copied()
            .filter(|p| alive(*p) && !procs.contains(p))
            .collect();
        procs.extend(left);
        (groups, procs)
    };
    let (mut groups, mut procs) = survivors(pgids);
    while (!groups.is_empty() || !procs.is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        (groups, procs) = survivors(pgids);
    }
    let mut killed = Vec::new();
    if groups.is_empty() && procs.is_empty() {
        bury(tree);
        return killed;
    }
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
    std::thread::sleep(Duration::from_millis(20));
    bury(tree);
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
        let killed = reap(&[], &marker, &[], Duration::from_secs(5));
        assert!(killed.is_empty(), "SIGTERM was enough: {killed:?}");
        let _ = child.wait();
        assert!(!alive(pid));
        assert!(!alive(-1));
    }
}
