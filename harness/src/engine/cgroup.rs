//! A cgroup per lab, where the machine lets labbook make one.
//!
//! A process cannot leave its cgroup by itself: `setsid`, a new process group, an empty
//! environment or a double fork leave it where it was. So where labbook can create cgroups, each
//! lab's shell is moved into a cgroup of its own before it runs a block, and the end of the lab
//! finds every process the lab left in it, even the `env -i setsid sh -c 'sleep 1000 &'` daemon
//! that the other handles (process group, environment marker) miss and the process tree finds only
//! at the end of the run.
//!
//! It needs cgroup v2 and the right to create a cgroup below labbook's own (root, or a cgroup
//! delegated to the user). Where either is missing nothing changes: the session, marker and
//! process-tree reaping of [`super::procs`] runs in any case, and is what finds the processes.
//!
//! The run's cgroups live in `<labbook's cgroup>/labbook-<pid>/lab-<n>`. A labbook killed with
//! SIGKILL leaves them behind; the next run kills what is in them and removes them
//! ([`reap_stale`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The prefix of a run's cgroup name; the rest is the pid of the labbook that made it.
const PREFIX: &str = "labbook-";

/// Set (to anything) to make labbook run without cgroups, as where it cannot make them: how the
/// tests check that way of starting and reaping on a machine that has them.
pub const PRETEND_MISSING: &str = "LABBOOK_PRETEND_NO_CGROUPS";

/// The cgroup v2 folder labbook itself is in: the `cgroup2` mount joined with the `0::` line of
/// `/proc/self/cgroup`.
fn own_cgroup() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    // mount ID, parent ID, major:minor, root, mount point, options, optional fields, "-", type.
    let mount = mounts.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        after
            .split_whitespace()
            .next()
            .filter(|fstype| *fstype == "cgroup2")?;
        before.split_whitespace().nth(4).map(PathBuf::from)
    })?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let path = mount.join(relative.trim_start_matches('/'));
    path.join("cgroup.procs").is_file().then_some(path)
}

/// The cgroups of one run: a folder below labbook's own cgroup, with one cgroup per lab.
#[derive(Debug)]
pub struct RunCgroups {
    path: PathBuf,
}

impl RunCgroups {
    /// The run's cgroup folder, or `None` where this machine does not let labbook make one.
    pub fn create() -> Option<RunCgroups> {
        if std::env::var_os(PRETEND_MISSING).is_some() {
            return None;
        }
        let path = own_cgroup()?.join(format!("{PREFIX}{}", std::process::id()));
        fs::create_dir(&path).ok()?;
        Some(RunCgroups { path })
    }

    /// A new cgroup for lab `index`, or `None` when it cannot be made.
    pub fn lab(&self, index: usize) -> Option<LabCgroup> {
        let path = self.path.join(format!("lab-{}", index + 1));
        fs::create_dir(&path).ok()?;
        Some(LabCgroup { path })
    }
}

impl Drop for RunCgroups {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

/// One lab's cgroup.
#[derive(Debug)]
pub struct LabCgroup {
    path: PathBuf,
}

impl LabCgroup {
    /// The folder (handed to the terminal, which moves each shell it starts into it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The live processes in the cgroup.
    pub fn members(&self) -> Vec<i32> {
        members(&self.path)
    }

    /// Kills what is left in the cgroup and removes it; returns whether it is gone.
    pub fn remove(self) -> bool {
        remove(&self.path)
    }
}

/// Moves process `pid` into the cgroup at `path`; returns whether it moved.
pub fn adopt(path: &Path, pid: i32) -> bool {
    fs::write(path.join("cgroup.procs"), pid.to_string()).is_ok()
}

fn members(path: &Path) -> Vec<i32> {
    fs::read_to_string(path.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills every process in the cgroup (`cgroup.kill` where the kernel has it, else SIGKILL to
/// each member until none is left) and removes it; returns whether it is gone.
fn remove(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = members(path);
        if left.is_empty() {
            if fs::remove_dir(path).is_ok() || !path.exists() {
                return true;
            }
        } else if fs::write(path.join("cgroup.kill"), "1").is_err() {
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        // Killed processes leave their cgroup when they have exited, a moment later.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills what runs killed with SIGKILL left in their cgroups, removes those cgroups, and
/// describes what it did.
pub fn reap_stale() -> Vec<String> {
    let Some(own) = own_cgroup() else {
        return Vec::new();
    };
    let mut done = Vec::new();
    for entry in fs::read_dir(&own).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 || super::procs::live_labbook(pid) {
            continue;
        }
        let run = entry.path();
        let mut stopped = 0;
        for lab in fs::read_dir(&run).into_iter().flatten().flatten() {
            if lab.path().is_dir() {
                stopped += members(&lab.path()).len();
                remove(&lab.path());
            }
        }
        let _ = fs::remove_dir(&run);
        if stopped > 0 {
            done.push(format!(
                "stopped {stopped} process(es) left in the cgroup {} by an earlier labbook run \
                 that was killed",
                run.display()
            ));
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_cgroup_holds_a_daemon_that_left_its_session() {
        let Some(run) = RunCgroups::create() else {
            eprintln!("skipped: this machine does not let labbook create a cgroup");
            return;
        };
        let lab = run.lab(0).expect("a lab cgroup");
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "read _; env -i setsid sh -c 'sleep 1000 &'"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh starts");
        assert!(adopt(lab.path(), shell.id() as i32), "the shell moves in");
        drop(shell.stdin.take());
        shell.wait().expect("the shell ends");
        let deadline = Instant::now() + Duration::from_secs(5);
        let daemon = loop {
            let members = lab.members();
            if let [daemon] = members[..] {
                break daemon;
            }
            assert!(Instant::now() < deadline, "no daemon in {members:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(lab.remove(), "the cgroup is removed");
        assert!(!super::super::procs::alive(daemon), "the daemon was killed");
    }
}
