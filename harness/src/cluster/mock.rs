//! A fake Kubernetes API server for unit tests, on kube's `tower-test` mock pattern: a
//! [`kube::Client`] whose requests arrive at a task that checks each method and path and
//! answers canned JSON.
//!
//! Requests are matched by method and path, not by order, because watchers on several
//! namespaces and kinds run concurrently. Every request is recorded, so a test can assert exactly
//! what was asked; one that matches no route is answered 404 and recorded as `UNEXPECTED …`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// What a route answers.
pub(crate) enum Reply {
    /// A JSON body with status 200.
    Json(Value),
    /// An error status with a Kubernetes `Status` body.
    Status(u16),
    /// Plain text with status 200 (pod logs).
    Text(String),
    /// A watch stream: these events, one JSON object per line, then the end of the body.
    Events(Vec<Value>),
    /// Never answers, like a watch on a cluster where nothing happens.
    Hang,
}

struct Route {
    method: &'static str,
    path: String,
    watch: bool,
    /// Answered in order; the last one repeats (a `Hang` for watches that ran out).
    replies: VecDeque<Reply>,
}

/// The requests the fake server saw, as `METHOD path?query`.
pub(crate) type Requests = Arc<Mutex<Vec<String>>>;

/// A fake API server under construction.
pub(crate) struct FakeApi {
    routes: Vec<Route>,
}

impl FakeApi {
    pub(crate) fn new() -> Self {
        FakeApi { routes: Vec::new() }
    }

    /// Answers GET (list or read) requests on `path`.
    pub(crate) fn get(mut self, path: &str, reply: Reply) -> Self {
        self.routes.push(Route {
            method: "GET",
            path: path.to_string(),
            watch: false,
            replies: VecDeque::from([reply]),
        });
        self
    }

    /// Answers successive watch requests on `path` with `replies`, then hangs.
    pub(crate) fn watch(mut self, path: &str, replies: Vec<Reply>) -> Self {
        let mut replies = VecDeque::from(replies);
        replies.push_back(Reply::Hang);
        self.routes.push(Route {
            method: "GET",
            path: path.to_string(),
            watch: true,
            replies,
        });
        self
    }

    /// Starts the server task on the current runtime and returns a client talking to it.
    pub(crate) fn start(mut self) -> (Client, Requests) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let requests: Requests = Arc::default();
        let log = Arc::clone(&requests);
        tokio::spawn(async move {
            // Held so that hanging requests stay open until the test ends.
            let mut hanging = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let uri = request.uri();
                let watch = uri.query().is_some_and(|q| q.contains("watch=true"));
                let line = format!("{} {}", request.method(), uri);
                let route = self.routes.iter_mut().find(|r| {
                    r.method == request.method().as_str()
                        && r.path == uri.path()
                        && r.watch == watch
                });
                let Some(route) = route else {
                    log.lock().expect("log").push(format!("UNEXPECTED {line}"));
                    send.send_response(status(404));
                    continue;
                };
                log.lock().expect("log").push(line);
                let reply = if route.replies.len() > 1 {
                    route.replies.pop_front()
                } else {
                    route.replies.front().map(Reply::again)
                };
                match reply.unwrap_or(Reply::Hang) {
                    Reply::Json(value) => send.send_response(ok(value.to_string())),
                    Reply::Text(text) => send.send_response(ok(text)),
                    Reply::Status(code) => send.send_response(status(code)),
                    Reply::Events(events) => {
                        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
                        send.send_response(ok(body));
                    }
                    Reply::Hang => hanging.push(send),
                }
            }
        });
        (Client::new(service, "default"), requests)
    }
}

impl Reply {
    /// A copy of a repeating reply (event streams are not repeated: a re-watch hangs instead).
    fn again(&self) -> Reply {
        match self {
            Reply::Json(v) => Reply::Json(v.clone()),
            Reply::Status(c) => Reply::Status(*c),
            Reply::Text(t) => Reply::Text(t.clone()),
            Reply::Events(_) | Reply::Hang => Reply::Hang,
        }
    }
}

fn ok(body: String) -> Response<Body> {
    Response::builder()
        .status(200)
        .body(Body::from(body.into_bytes()))
        .expect("response")
}

fn status(code: u16) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound", "code": code,
    });
    Response::builder()
        .status(code)
        .body(Body::from(body.to_string().into_bytes()))
        .expect("response")
}

/// A list response holding `items`.
pub(crate) fn list(items: Vec<Value>) -> Reply {
    Reply::Json(json!({
        "apiVersion": "v1", "kind": "List",
        "metadata": {"resourceVersion": "100"},
        "items": items,
    }))
}

/// A watch event (`ADDED`, `MODIFIED`, `DELETED`).
pub(crate) fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

/// A pod in `default` with one container `app`, in the given phase and container state.
pub(crate) fn pod(name: &str, phase: &str, state: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "101",
                     "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        "status": {"phase": phase, "containerStatuses": [{
            "name": "app", "image": "nginx", "imageID": "", "ready": phase == "Running",
            "restartCount": 0, "state": state,
        }]},
    })
}

/// A deployment `name` in `default` selecting `app=web`, with the given generations and counts.
pub(crate) fn deployment(
    name: &str,
    generation: i64,
    observed: i64,
    replicas: i32,
    updated: i32,
    available: i32,
) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "generation": generation,
                     "resourceVersion": "102"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}}},
        "status": {"observedGeneration": observed, "replicas": replicas,
                   "updatedReplicas": updated, "availableReplicas": available},
    })
}
