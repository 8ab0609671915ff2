//! Settling before a verify: wait, with watches and never with sleeps, until the namespaces a lab
//! works in are quiet.
//!
//! Quiet means every Deployment has rolled out (its new generation observed, all replicas updated
//! and available, no old replicas left) and no pod is Pending, ContainerCreating or Terminating.
//! A definite failure (ImagePullBackOff, CrashLoopBackOff, ...) also counts as settled: waiting
//! longer would not change it, and the verify should show it to the reader as it is.
//!
//! The core is [`wait_quiet`], a function over a [`kube::Client`], so that it is tested against
//! a fake API server; [`assess_pod`] and [`assess_deployment`] are the pure rules behind it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};

/// How long a settle waits at most, unless told otherwise.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(120);

/// Container waiting reasons that will not go away by waiting.
const DEFINITE_FAILURES: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// How one object looks to the settle rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Nothing to wait for.
    Quiet,
    /// Still moving; the text says how (`Terminating`, `0/1 replicas updated`).
    Busy(String),
    /// Stuck for good; the text says why (`ImagePullBackOff`).
    Failing(String),
}

/// The result of a settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// How long the wait took.
    pub waited: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// How a settle ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every namespace is quiet.
    Quiet,
    /// Nothing is moving any more, but these objects failed for good (`pod default/web-1:
    /// ImagePullBackOff`); the verify will show them.
    Failing(Vec<String>),
    /// The time limit passed while these were still moving.
    CutShort(Vec<String>),
}

impl Settled {
    /// A one-line warning for the report when the wait was cut short.
    pub fn warning(&self) -> Option<String> {
        match &self.outcome {
            Outcome::CutShort(busy) => Some(format!(
                "the cluster was not quiet after {} s; still waiting for: {}",
                self.waited.as_secs(),
                busy.join("; ")
            )),
            Outcome::Quiet | Outcome::Failing(_) => None,
        }
    }
}

/// The settle rule for one pod.
pub fn assess_pod(pod: &Pod) -> State {
    if pod.metadata.deletion_timestamp.is_some() {
        return State::Busy("Terminating".into());
    }
    let Some(status) = &pod.status else {
        return State::Busy("Pending".into());
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if matches!(phase, "Succeeded" | "Failed") {
        return State::Quiet;
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    let mut waiting = None;
    for container in containers {
        let reason = container
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        if let Some(reason) = reason {
            if DEFINITE_FAILURES.contains(&reason) {
                return State::Failing(format!("{reason} (container {})", container.name));
            }
            waiting.get_or_insert(reason.to_string());
        }
    }
    let unschedulable = status.conditions.iter().flatten().any(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if unschedulable {
        return State::Failing("Unschedulable".into());
    }
    match (phase, waiting) {
        ("Pending", waiting) => State::Busy(waiting.unwrap_or_else(|| "Pending".into())),
        (_, Some(reason)) if matches!(reason.as_str(), "ContainerCreating" | "PodInitializing") => {
            State::Busy(reason)
        }
        _ => State::Quiet,
    }
}

/// The settle rule for one Deployment, as `kubectl rollout status` judges it.
pub fn assess_deployment(deployment: &Deployment) -> State {
    let spec = &deployment.spec;
    if spec.paused == Some(true) {
        return State::Quiet;
    }
    let desired = spec.replicas.unwrap_or(1);
    let Some(status) = &deployment.status else {
        return State::Busy("rollout not started".into());
    };
    let generation = deployment.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return State::Busy("rollout not yet observed".into());
    }
    let deadline_exceeded = status.conditions.iter().flatten().any(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline_exceeded {
        return State::Failing("ProgressDeadlineExceeded".into());
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let current = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        State::Busy(format!("{updated}/{desired} replicas updated"))
    } else if current > updated {
        State::Busy(format!("{} old replicas terminating", current - updated))
    } else if available < updated {
        State::Busy(format!("{available}/{desired} replicas available"))
    } else {
        State::Quiet
    }
}

/// Whether a Deployment selects a pod (by `matchLabels`; `matchExpressions` are not needed to
/// tie a stuck pod to its Deployment in a lab).
fn selects(deployment: &Deployment, pod: &Pod) -> bool {
    let Some(wanted) = deployment.spec.selector.match_labels.as_ref() else {
        return false;
    };
    let labels = pod.labels();
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// What is busy and what is failing among the objects of the watched namespaces. A Deployment
/// that waits on one of its own failing pods is failing too: it will not progress.
pub fn assess(pods: &[&Pod], deployments: &[&Deployment]) -> (Vec<String>, Vec<String>) {
    let mut busy = Vec::new();
    let mut failing = Vec::new();
    let id = |kind: &str, meta: &kube::api::ObjectMeta| {
        format!(
            "{kind} {}/{}",
            meta.namespace.as_deref().unwrap_or("?"),
            meta.name.as_deref().unwrap_or("?")
        )
    };
    for pod in pods {
        match assess_pod(pod) {
            State::Quiet => {}
            State::Busy(why) => busy.push(format!("{} {why}", id("pod", &pod.metadata))),
            State::Failing(why) => failing.push(format!("{}: {why}", id("pod", &pod.metadata))),
        }
    }
    for deployment in deployments {
        let name = id("deployment", &deployment.metadata);
        match assess_deployment(deployment) {
            State::Quiet => {}
            State::Failing(why) => failing.push(format!("{name}: {why}")),
            State::Busy(why) => {
                let stuck = pods
                    .iter()
                    .any(|p| selects(deployment, p) && matches!(assess_pod(p), State::Failing(_)));
                if stuck {
                    failing.push(format!("{name}: {why}, waiting on a failing pod"));
                } else {
                    busy.push(format!("{name} {why}"));
                }
            }
        }
    }
    (busy, failing)
}

/// One update from one of the watchers.
enum Update {
    Pod(String, Event<Pod>),
    Deployment(String, Event<Deployment>),
    Error(String, String),
}

/// The objects of one kind in one namespace, kept current from watch events.
struct Store<K> {
    objects: BTreeMap<String, K>,
    buffer: Option<BTreeMap<String, K>>,
    listed: bool,
}

impl<K: ResourceExt> Store<K> {
    fn new() -> Self {
        Store {
            objects: BTreeMap::new(),
            buffer: None,
            listed: false,
        }
    }

    fn apply(&mut self, event: Event<K>) {
        match event {
            Event::Init => self.buffer = Some(BTreeMap::new()),
            Event::InitApply(obj) => {
                self.buffer
                    .get_or_insert_with(BTreeMap::new)
                    .insert(obj.name_any(), obj);
            }
            Event::InitDone => {
                self.objects = self.buffer.take().unwrap_or_default();
                self.listed = true;
            }
            Event::Apply(obj) => {
                self.objects.insert(obj.name_any(), obj);
            }
            Event::Delete(obj) => {
                self.objects.remove(&obj.name_any());
            }
        }
    }
}

/// Waits until `namespaces` are quiet (or failing for good), at most `limit`.
///
/// Each namespace gets a watcher on Pods and one on Deployments; every event re-evaluates the
/// rules, so the wait ends as soon as the cluster is quiet. Watch errors (an API server that is
/// not up yet) are retried with backoff until the limit, and named in the outcome.
pub async fn wait_quiet(client: &Client, namespaces: &[String], limit: Duration) -> Settled {
    let started = tokio::time::Instant::now();
    let deadline = started + limit;
    // The server ends each watch call by itself; keep that within the limit.
    let watch_timeout = u32::try_from(limit.as_secs())
        .unwrap_or(u32::MAX)
        .clamp(1, 290);
    let config = watcher::Config::default().timeout(watch_timeout);

    let mut streams: SelectAll<BoxStream<'static, Update>> = SelectAll::new();
    let mut pods: HashMap<String, Store<Pod>> = HashMap::new();
    let mut deployments: HashMap<String, Store<Deployment>> = HashMap::new();
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    for ns in namespaces {
        pods.insert(ns.clone(), Store::new());
        deployments.insert(ns.clone(), Store::new());
        let (a, b) = (ns.clone(), ns.clone());
        streams.push(
            watcher::watcher(Api::<Pod>::namespaced(client.clone(), ns), config.clone())
                .default_backoff()
                .map(move |r| match r {
                    Ok(e) => Update::Pod(a.clone(), e),
                    Err(e) => Update::Error(format!("pods in {b}"), e.to_string()),
                })
                .boxed(),
        );
        let (a, b) = (ns.clone(), ns.clone());
        streams.push(
            watcher::watcher(
                Api::<Deployment>::namespaced(client.clone(), ns),
                config.clone(),
            )
            .default_backoff()
            .map(move |r| match r {
                Ok(e) => Update::Deployment(a.clone(), e),
                Err(e) => Update::Error(format!("deployments in {b}"), e.to_string()),
            })
            .boxed(),
        );
    }

    let finish = |outcome| Settled {
        waited: started.elapsed(),
        outcome,
    };
    loop {
        let listed = pods.values().all(|s| s.listed) && deployments.values().all(|s| s.listed);
        if listed {
            let all_pods: Vec<&Pod> = pods.values().flat_map(|s| s.objects.values()).collect();
            let all_deployments: Vec<&Deployment> = deployments
                .values()
                .flat_map(|s| s.objects.values())
                .collect();
            let (busy, failing) = assess(&all_pods, &all_deployments);
            if busy.is_empty() {
                return finish(if failing.is_empty() {
                    Outcome::Quiet
                } else {
                    Outcome::Failing(failing)
                });
            }
        }
        match tokio::time::timeout_at(deadline, streams.next()).await {
            Ok(Some(Update::Pod(ns, event))) => {
                if let Some(store) = pods.get_mut(&ns) {
                    store.apply(event);
                }
            }
            Ok(Some(Update::Deployment(ns, event))) => {
                if let Some(store) = deployments.get_mut(&ns) {
                    store.apply(event);
                }
            }
            Ok(Some(Update::Error(what, message))) => {
                errors.insert(what, message);
            }
            // Watchers never end by themselves; if they all did, nothing more can be learnt.
            Ok(None) | Err(_) => break,
        }
    }

    let mut waiting_for = Vec::new();
    for (ns, store) in &pods {
        if !store.listed {
            waiting_for.push(not_listed(&errors, "pods", ns));
        }
    }
    for (ns, store) in &deployments {
        if !store.listed {
            waiting_for.push(not_listed(&errors, "deployments", ns));
        }
    }
    let all_pods: Vec<&Pod> = pods.values().flat_map(|s| s.objects.values()).collect();
    let all_deployments: Vec<&Deployment> = deployments
        .values()
        .flat_map(|s| s.objects.values())
        .collect();
    let (busy, _) = assess(&all_pods, &all_deployments);
    waiting_for.extend(busy);
    waiting_for.sort();
    let waiting_for: Vec<String> = waiting_for
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    finish(Outcome::CutShort(waiting_for))
}

fn not_listed(errors: &BTreeMap<String, String>, kind: &str, ns: &str) -> String {
    match errors.get(&format!("{kind} in {ns}")) {
        Some(error) => format!("{kind} in {ns} could not be listed ({error})"),
        None => format!("{kind} in {ns} not listed yet"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mock::{FakeApi, Reply, deployment, event, list, pod};
    use serde_json::{Value, json};

    fn typed<K: serde::de::DeserializeOwned>(value: Value) -> K {
        serde_json::from_value(value).expect("valid object")
    }

    fn waiting(reason: &str) -> Value {
        json!({"waiting": {"reason": reason}})
    }

    fn running() -> Value {
        json!({"running": {"startedAt": "2025-01-01T00:00:00Z"}})
    }

    #[test]
    fn pod_rules() {
        let terminating = {
            let mut p = pod("a", "Running", running());
            p["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
            p
        };
        let unschedulable = {
            let mut p = pod("a", "Pending", Value::Null);
            p["status"]["containerStatuses"] = json!([]);
            p["status"]["conditions"] =
                json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]);
            p
        };
        let cases: Vec<(&str, Value, State)> = vec![
            ("running", pod("a", "Running", running()), State::Quiet),
            ("succeeded", pod("a", "Succeeded", json!({})), State::Quiet),
            (
                "creating",
                pod("a", "Pending", waiting("ContainerCreating")),
                State::Busy("ContainerCreating".into()),
            ),
            (
                "pending without status",
                json!({"metadata": {"name": "a"}}),
                State::Busy("Pending".into()),
            ),
            (
                "terminating",
                terminating,
                State::Busy("Terminating".into()),
            ),
            (
                "image pull back-off",
                pod("a", "Pending", waiting("ImagePullBackOff")),
                State::Failing("ImagePullBackOff (container app)".into()),
            ),
            (
                "err image pull",
                pod("a", "Pending", waiting("ErrImagePull")),
                State::Failing("ErrImagePull (container app)".into()),
            ),
            (
                "crash loop",
                pod("a", "Running", waiting("CrashLoopBackOff")),
                State::Failing("CrashLoopBackOff (container app)".into()),
            ),
            (
                "unschedulable",
                unschedulable,
                State::Failing("Unschedulable".into()),
            ),
        ];
        for (name, value, want) in cases {
            assert_eq!(assess_pod(&typed(value)), want, "{name}");
        }
    }

    #[test]
    fn deployment_rules() {
        let exceeded = {
            let mut d = deployment("web", 2, 2, 1, 0, 0);
            d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
                                                 "reason": "ProgressDeadlineExceeded"}]);
            d
        };
        let paused = {
            let mut d = deployment("web", 2, 1, 1, 0, 0);
            d["spec"]["paused"] = json!(true);
            d
        };
        let cases: Vec<(&str, Value, State)> = vec![
            ("rolled out", deployment("web", 2, 2, 1, 1, 1), State::Quiet),
            (
                "generation not observed",
                deployment("web", 3, 2, 1, 1, 1),
                State::Busy("rollout not yet observed".into()),
            ),
            (
                "not updated",
                deployment("web", 2, 2, 1, 0, 1),
                State::Busy("0/1 replicas updated".into()),
            ),
            (
                "old replica left",
                deployment("web", 2, 2, 2, 1, 1),
                State::Busy("1 old replicas terminating".into()),
            ),
            (
                "not available",
                deployment("web", 2, 2, 1, 1, 0),
                State::Busy("0/1 replicas available".into()),
            ),
            (
                "deadline exceeded",
                exceeded,
                State::Failing("ProgressDeadlineExceeded".into()),
            ),
            ("paused", paused, State::Quiet),
        ];
        for (name, value, want) in cases {
            assert_eq!(assess_deployment(&typed(value)), want, "{name}");
        }
    }

    #[test]
    fn a_deployment_stuck_on_its_failing_pod_is_failing() {
        let p: Pod = typed(pod("web-1", "Pending", waiting("ImagePullBackOff")));
        let d: Deployment = typed(deployment("web", 1, 1, 1, 1, 0));
        let (busy, failing) = assess(&[&p], &[&d]);
        assert!(busy.is_empty(), "{busy:?}");
        assert_eq!(
            failing,
            [
                "pod default/web-1: ImagePullBackOff (container app)",
                "deployment default/web: 0/1 replicas available, waiting on a failing pod"
            ]
        );
    }

    const PODS: &str = "/api/v1/namespaces/default/pods";
    const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

    fn only_expected(requests: &crate::cluster::mock::Requests) -> Vec<String> {
        let requests = requests.lock().expect("log").clone();
        for r in &requests {
            assert!(!r.starts_with("UNEXPECTED"), "{requests:#?}");
            assert!(r.starts_with("GET "), "{r}");
        }
        requests
    }

    #[tokio::test(start_paused = true)]
    async fn a_rollout_that_completes_settles_quiet() {
        let old = pod("web-old", "Running", running());
        let mut old_terminating = old.clone();
        old_terminating["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let (client, requests) = FakeApi::new()
            .get(
                PODS,
                list(vec![
                    old.clone(),
                    pod("web-new", "Pending", waiting("ContainerCreating")),
                ]),
            )
            .watch(
                PODS,
                vec![Reply::Events(vec![
                    event("MODIFIED", pod("web-new", "Running", running())),
                    event("MODIFIED", old_terminating.clone()),
                    event("DELETED", old_terminating),
                ])],
            )
            .get(DEPLOYMENTS, list(vec![deployment("web", 2, 1, 1, 0, 1)]))
            .watch(
                DEPLOYMENTS,
                vec![Reply::Events(vec![
                    event("MODIFIED", deployment("web", 2, 2, 2, 1, 1)),
                    event("MODIFIED", deployment("web", 2, 2, 1, 1, 1)),
                ])],
            )
            .start();
        let settled = wait_quiet(&client, &["default".to_string()], DEFAULT_LIMIT).await;
        assert_eq!(settled.outcome, Outcome::Quiet);
        assert_eq!(settled.warning(), None);
        let requests = only_expected(&requests);
        for (path, what) in [
            (PODS, "list"),
            (PODS, "watch"),
            (DEPLOYMENTS, "list"),
            (DEPLOYMENTS, "watch"),
        ] {
            let watch = what == "watch";
            assert!(
                requests
                    .iter()
                    .any(|r| r.contains(&format!("{path}?")) && r.contains("watch=true") == watch),
                "no {what} of {path} in {requests:#?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_image_pull_back_off_settles_as_a_failure() {
        let (client, requests) = FakeApi::new()
            .get(
                PODS,
                list(vec![pod("web-1", "Pending", waiting("ImagePullBackOff"))]),
            )
            .watch(PODS, vec![])
            .get(DEPLOYMENTS, list(vec![deployment("web", 1, 1, 1, 1, 0)]))
            .watch(DEPLOYMENTS, vec![])
            .start();
        let settled = wait_quiet(&client, &["default".to_string()], DEFAULT_LIMIT).await;
        let Outcome::Failing(failing) = &settled.outcome else {
            panic!("expected a failure, got {settled:?}");
        };
        assert!(
            failing[0].contains("web-1: ImagePullBackOff"),
            "{failing:?}"
        );
        assert_eq!(settled.warning(), None);
        // It did not wait for the limit: the answer was known from the first list.
        assert!(settled.waited < DEFAULT_LIMIT);
        only_expected(&requests);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_stuck_terminating_is_cut_short_with_a_warning() {
        let mut stuck = pod("web-1", "Running", running());
        stuck["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        stuck["metadata"]["finalizers"] = json!(["example.com/never"]);
        let (client, requests) = FakeApi::new()
            .get(PODS, list(vec![stuck]))
            .watch(PODS, vec![])
            .get(DEPLOYMENTS, list(vec![]))
            .watch(DEPLOYMENTS, vec![])
            .start();
        let limit = Duration::from_secs(30);
        let settled = wait_quiet(&client, &["default".to_string()], limit).await;
        assert_eq!(
            settled.outcome,
            Outcome::CutShort(vec!["pod default/web-1 Terminating".into()])
        );
        let warning = settled.warning().expect("a warning");
        assert!(warning.contains("not quiet after 30 s"), "{warning}");
        assert!(
            warning.contains("pod default/web-1 Terminating"),
            "{warning}"
        );
        only_expected(&requests);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_namespace_is_named_when_cut_short() {
        let (client, _requests) = FakeApi::new()
            .get(PODS, Reply::Status(403))
            .get(DEPLOYMENTS, list(vec![]))
            .watch(DEPLOYMENTS, vec![])
            .start();
        let settled = wait_quiet(&client, &["default".to_string()], Duration::from_secs(10)).await;
        let Outcome::CutShort(waiting) = &settled.outcome else {
            panic!("expected a cut-short wait, got {settled:?}");
        };
        assert_eq!(waiting.len(), 1, "{waiting:?}");
        assert!(
            waiting[0].starts_with("pods in default could not be listed ("),
            "{waiting:?}"
        );
    }
}
