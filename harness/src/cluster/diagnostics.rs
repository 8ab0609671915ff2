//! Diagnostics after a failure: what a reader would look at next, collected with kube into files
//! that the failure summary names.
//!
//! - `events.txt`: the recent events of each namespace the lab works in, oldest first;
//! - `pods.txt`: every pod's phase and each container's state (waiting reasons, exit codes,
//!   restarts, readiness);
//! - `logs/<namespace>/<pod>_<container>.txt`: the last lines of the logs of failing containers
//!   (those that ran and are not ready; the previous run's logs after a crash).
//!
//! An API error never stops the collection: it is written where the missing data would be, so the
//! files still say what could not be seen.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

/// How many log lines are kept per container.
pub const LOG_TAIL_LINES: i64 = 50;

/// How many events are kept per namespace (the most recent).
pub const EVENTS_PER_NAMESPACE: usize = 50;

/// Why diagnostics could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DiagnosticsError {
    /// A diagnostics file could not be written.
    #[error("failed to write diagnostics file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Collects events, pod states and logs of failing containers in `namespaces` into `dir`, and
/// returns the files written.
pub async fn collect(
    client: &Client,
    namespaces: &[String],
    dir: &Path,
) -> Result<Vec<PathBuf>, DiagnosticsError> {
    let mut files = Vec::new();
    let mut events = String::new();
    let mut pods_text = String::new();
    let mut logs = Vec::new();
    for ns in namespaces {
        let _ = writeln!(events, "== namespace {ns}");
        match Api::<Event>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
        {
            Ok(list) => events.push_str(&render_events(list.items)),
            Err(e) => {
                let _ = writeln!(events, "failed to list events: {e}");
            }
        }

        let _ = writeln!(pods_text, "== namespace {ns}");
        let api = Api::<Pod>::namespaced(client.clone(), ns);
        let pods = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                let _ = writeln!(pods_text, "failed to list pods: {e}");
                continue;
            }
        };
        for pod in &pods {
            pods_text.push_str(&render_pod(pod));
            for (container, previous) in failing_containers(pod) {
                let params = LogParams {
                    container: Some(container.clone()),
                    tail_lines: Some(LOG_TAIL_LINES),
                    previous,
                    ..LogParams::default()
                };
                let text = match api.logs(&pod.name_any(), &params).await {
                    Ok(text) => text,
                    Err(e) => format!("failed to read the logs: {e}\n"),
                };
                let header = format!(
                    "# last {LOG_TAIL_LINES} lines of {ns}/{} container {container}{}\n",
                    pod.name_any(),
                    if previous { " (previous run)" } else { "" }
                );
                let path = dir.join("logs").join(file_safe(ns)).join(format!(
                    "{}_{}.txt",
                    file_safe(&pod.name_any()),
                    file_safe(&container)
                ));
                logs.push((path, header + &text));
            }
        }
    }
    write(&dir.join("events.txt"), &events, &mut files)?;
    write(&dir.join("pods.txt"), &pods_text, &mut files)?;
    for (path, text) in logs {
        write(&path, &text, &mut files)?;
    }
    Ok(files)
}

fn write(path: &Path, text: &str, files: &mut Vec<PathBuf>) -> Result<(), DiagnosticsError> {
    let fail = |source| DiagnosticsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)?;
    files.push(path.to_path_buf());
    Ok(())
}

/// A name usable as one path component.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.trim_matches('.') {
        "" => "_".to_string(),
        s => s.to_string(),
    }
}

fn event_time(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The most recent events, oldest first, one per line.
fn render_events(mut events: Vec<Event>) -> String {
    events.sort_by_key(event_time);
    let skip = events.len().saturating_sub(EVENTS_PER_NAMESPACE);
    let mut out = String::new();
    if events.is_empty() {
        out.push_str("no events\n");
    }
    for event in events.iter().skip(skip) {
        let when = event_time(event).map_or_else(|| "-".to_string(), |t| t.to_string());
        let object = &event.involved_object;
        let _ = write!(
            out,
            "{when} {} {} {}/{}: {}",
            event.type_.as_deref().unwrap_or("-"),
            event.reason.as_deref().unwrap_or("-"),
            object.kind.as_deref().unwrap_or("?").to_lowercase(),
            object.name.as_deref().unwrap_or("?"),
            event.message.as_deref().unwrap_or("").trim_end(),
        );
        match event.count {
            Some(count) if count > 1 => {
                let _ = writeln!(out, " (x{count})");
            }
            _ => out.push('\n'),
        }
    }
    out
}

/// A pod's phase and its containers' states.
fn render_pod(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let mut out = format!(
        "pod {} phase={}",
        pod.name_any(),
        status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown")
    );
    if pod.metadata.deletion_timestamp.is_some() {
        out.push_str(" Terminating");
    }
    if let Some(reason) = status.and_then(|s| s.reason.as_deref()) {
        let _ = write!(out, " reason={reason}");
    }
    out.push('\n');
    for condition in status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        if condition.status != "True" {
            let _ = writeln!(
                out,
                "  condition {}={} {} {}",
                condition.type_,
                condition.status,
                condition.reason.as_deref().unwrap_or(""),
                condition.message.as_deref().unwrap_or("")
            );
        }
    }
    let init = status.and_then(|s| s.init_container_statuses.as_ref());
    let main = status.and_then(|s| s.container_statuses.as_ref());
    for (label, container) in init
        .into_iter()
        .flatten()
        .map(|c| ("init container", c))
        .chain(main.into_iter().flatten().map(|c| ("container", c)))
    {
        let _ = writeln!(
            out,
            "  {label} {}: {}; ready={} restarts={}{}",
            container.name,
            describe_state(container.state.as_ref()),
            container.ready,
            container.restart_count,
            container
                .last_state
                .as_ref()
                .filter(|s| s.terminated.is_some())
                .map(|s| format!("; last {}", describe_state(Some(s))))
                .unwrap_or_default()
        );
    }
    out
}

fn describe_state(state: Option<&k8s_openapi::api::core::v1::ContainerState>) -> String {
    let Some(state) = state else {
        return "no state".into();
    };
    if let Some(waiting) = &state.waiting {
        return format!(
            "waiting {}{}",
            waiting.reason.as_deref().unwrap_or(""),
            waiting
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
    }
    if let Some(terminated) = &state.terminated {
        return format!(
            "terminated {} exit={}",
            terminated.reason.as_deref().unwrap_or(""),
            terminated.exit_code
        );
    }
    if state.running.is_some() {
        return "running".into();
    }
    "unknown".into()
}

/// The containers whose logs help: they ran, and are not fine. The `bool` asks for the previous
/// run's logs (a container waiting to restart after a crash has no current logs).
fn failing_containers(pod: &Pod) -> Vec<(String, bool)> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let succeeded = status.phase.as_deref() == Some("Succeeded");
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter_map(|c| {
            let previous = log_choice(c, succeeded)?;
            Some((c.name.clone(), previous))
        })
        .collect()
}

fn log_choice(container: &ContainerStatus, succeeded: bool) -> Option<bool> {
    let state = container.state.as_ref();
    let running = state.is_some_and(|s| s.running.is_some());
    let terminated = state.and_then(|s| s.terminated.as_ref());
    let crashed_before = container
        .last_state
        .as_ref()
        .is_some_and(|s| s.terminated.is_some());
    if let Some(terminated) = terminated {
        // A finished init container or job is fine; a non-zero exit is not.
        return (terminated.exit_code != 0 && !succeeded).then_some(false);
    }
    if running {
        return (!container.ready || container.restart_count > 0).then_some(false);
    }
    // Waiting: only a container that ran before has logs (not one whose image never pulled).
    crashed_before.then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mock::{FakeApi, Reply, list, pod};
    use serde_json::json;

    fn crash_looping() -> serde_json::Value {
        let mut p = pod(
            "api-1",
            "Running",
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}}),
        );
        p["status"]["containerStatuses"][0]["restartCount"] = json!(3);
        p["status"]["containerStatuses"][0]["lastState"] =
            json!({"terminated": {"reason": "Error", "exitCode": 1}});
        p
    }

    #[test]
    fn which_logs_are_worth_reading() {
        let cases = [
            (
                "healthy",
                pod("a", "Running", json!({"running": {}})),
                vec![],
            ),
            (
                "never started",
                pod(
                    "a",
                    "Pending",
                    json!({"waiting": {"reason": "ImagePullBackOff"}}),
                ),
                vec![],
            ),
            (
                "crash loop",
                crash_looping(),
                vec![("app".to_string(), true)],
            ),
            (
                "running, not ready",
                {
                    let mut p = pod("a", "Pending", json!({"running": {}}));
                    p["status"]["containerStatuses"][0]["ready"] = json!(false);
                    p
                },
                vec![("app".to_string(), false)],
            ),
            (
                "exited non-zero",
                pod("a", "Failed", json!({"terminated": {"exitCode": 2}})),
                vec![("app".to_string(), false)],
            ),
        ];
        for (name, value, want) in cases {
            let p: Pod = serde_json::from_value(value).expect("pod");
            assert_eq!(failing_containers(&p), want, "{name}");
        }
    }

    #[test]
    fn file_names_are_single_safe_components() {
        for (name, want) in [
            ("web-1", "web-1"),
            ("../x", "_x"),
            ("a/b", "a_b"),
            ("..", "_"),
        ] {
            assert_eq!(file_safe(name), want, "{name}");
        }
    }

    #[tokio::test]
    async fn collects_events_pod_states_and_logs_of_failing_containers() {
        let events = list(vec![
            json!({"metadata": {"name": "e2", "namespace": "default"},
                   "involvedObject": {"kind": "Pod", "name": "api-1"},
                   "type": "Warning", "reason": "BackOff", "count": 7,
                   "message": "Back-off restarting failed container app",
                   "lastTimestamp": "2025-01-01T00:02:00Z"}),
            json!({"metadata": {"name": "e1", "namespace": "default"},
                   "involvedObject": {"kind": "Pod", "name": "web-1"},
                   "type": "Warning", "reason": "Failed",
                   "message": "Failed to pull image \"nginx:nope\"",
                   "lastTimestamp": "2025-01-01T00:01:00Z"}),
        ]);
        let pulling = pod(
            "web-1",
            "Pending",
            json!({"waiting": {"reason": "ImagePullBackOff",
                               "message": "Back-off pulling image \"nginx:nope\""}}),
        );
        let (client, requests) = FakeApi::new()
            .get("/api/v1/namespaces/default/events", events)
            .get(
                "/api/v1/namespaces/default/pods",
                list(vec![pulling, crash_looping()]),
            )
            .get(
                "/api/v1/namespaces/default/pods/api-1/log",
                Reply::Text("starting\npanic: no config\n".into()),
            )
            .start();
        let dir = tempfile::tempdir().expect("tempdir");
        let files = collect(&client, &["default".to_string()], dir.path())
            .await
            .expect("written");
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                f.strip_prefix(dir.path())
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            ["events.txt", "pods.txt", "logs/default/api-1_app.txt"]
        );

        let events = std::fs::read_to_string(dir.path().join("events.txt")).expect("events");
        let first = events.find("pod/web-1").expect("pull failure listed");
        let second = events.find("pod/api-1").expect("back-off listed");
        assert!(first < second, "oldest first:\n{events}");
        assert!(
            events.contains(
                "Warning BackOff pod/api-1: Back-off restarting failed container app (x7)"
            ),
            "{events}"
        );

        let pods = std::fs::read_to_string(dir.path().join("pods.txt")).expect("pods");
        assert!(pods.contains("pod web-1 phase=Pending"), "{pods}");
        assert!(
            pods.contains(
                "container app: waiting ImagePullBackOff (Back-off pulling image \"nginx:nope\")"
            ),
            "{pods}"
        );
        assert!(
            pods.contains("restarts=3; last terminated Error exit=1"),
            "{pods}"
        );

        let log =
            std::fs::read_to_string(dir.path().join("logs/default/api-1_app.txt")).expect("log");
        assert!(log.contains("(previous run)"), "{log}");
        assert!(log.ends_with("panic: no config\n"), "{log}");

        let requests = requests.lock().expect("log").clone();
        let log_request = requests
            .iter()
            .find(|r| r.contains("/pods/api-1/log"))
            .expect("logs asked for");
        assert!(log_request.contains("container=app"), "{log_request}");
        assert!(log_request.contains("previous=true"), "{log_request}");
        assert!(log_request.contains("tailLines=50"), "{log_request}");
        assert!(
            !requests.iter().any(|r| r.contains("web-1/log")),
            "{requests:?}"
        );
        assert!(
            !requests.iter().any(|r| r.starts_with("UNEXPECTED")),
            "{requests:?}"
        );
    }

    #[tokio::test]
    async fn api_errors_are_written_not_raised() {
        let (client, _requests) = FakeApi::new()
            .get("/api/v1/namespaces/default/events", Reply::Status(500))
            .get("/api/v1/namespaces/default/pods", Reply::Status(403))
            .start();
        let dir = tempfile::tempdir().expect("tempdir");
        let files = collect(&client, &["default".to_string()], dir.path())
            .await
            .expect("written");
        assert_eq!(files.len(), 2);
        let events = std::fs::read_to_string(dir.path().join("events.txt")).expect("events");
        assert!(events.contains("failed to list events"), "{events}");
        let pods = std::fs::read_to_string(dir.path().join("pods.txt")).expect("pods");
        assert!(pods.contains("failed to list pods"), "{pods}");
    }
}
