//! Traffic routing in the model: Istio's VirtualServices and DestinationRules, and the Gateway
//! API's routes.
//!
//! Istio: the hosts a VirtualService or DestinationRule names, resolved as Istio resolves them,
//! and the checks on them — a second VirtualService for a host, a later DestinationRule whose
//! top-level policy is ignored (both while replaying), and at the end of the main sequence hosts
//! with no Service, subsets without endpoints and routes to undefined subsets.
//!
//! Gateway API, with the same severities: a second HTTPRoute with a match an older one has on
//! the same Gateway (while replaying), and at the end of the main sequence routes attached to a
//! Gateway that does not exist, backends that are not Services of the lab, and rules whose
//! weights add up to 0.

use std::collections::BTreeSet;

use serde_json::Value;

use super::state::{Model, Object, labels_at, service_selector};
use crate::kubectl::{Labels, Selector, is_dynamic};
use crate::manifest::Doc;
use crate::yaml::Seg;
use crate::{Severity, Sink};

/// A host as a Service: `(name, namespace)`, for short names and `*.svc.cluster.local` names.
pub(super) fn resolve_host(host: &str, ns: &str) -> Option<(String, String)> {
    if host.contains('*') || is_dynamic(host) {
        return None;
    }
    if !host.contains('.') {
        return Some((host.to_string(), ns.to_string()));
    }
    let rest = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))?;
    let (name, namespace) = rest.split_once('.')?;
    (!namespace.contains('.')).then(|| (name.to_string(), namespace.to_string()))
}

/// The hosts a VirtualService applies to inside the mesh (none when bound only to gateways).
pub(super) fn mesh_hosts(json: &Value, ns: &str) -> Vec<String> {
    let gateways: Vec<&str> = json
        .pointer("/spec/gateways")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !gateways.is_empty() && !gateways.contains(&"mesh") {
        return Vec::new();
    }
    json.pointer("/spec/hosts")
        .and_then(Value::as_array)
        .map(|hosts| {
            hosts
                .iter()
                .filter_map(Value::as_str)
                .map(|h| match resolve_host(h, ns) {
                    Some((name, namespace)) => format!("{name}.{namespace}.svc.cluster.local"),
                    None => h.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn virtual_service_conflict(
    doc: &Doc,
    ns: &str,
    name: &str,
    model: &Model,
    sink: &mut Sink<'_>,
) {
    let hosts = mesh_hosts(&doc.json, ns);
    for older in model
        .objects
        .iter()
        .filter(|o| o.kind == "VirtualService" && o.here())
    {
        let older_ns = older.namespace.as_deref().unwrap_or("default");
        let shared: Vec<&String> = mesh_hosts(&older.json, older_ns)
            .iter()
            .filter_map(|h| hosts.iter().find(|x| *x == h))
            .collect();
        if let Some(host) = shared.first() {
            let short = host.split('.').next().unwrap_or(host);
            sink.emit(
                "virtual-service-conflict",
                Severity::Error,
                doc.line_of(&[Seg::Key("spec".into()), Seg::Key("hosts".into())]),
                format!(
                    "VirtualService `{name}` is a second one for host `{short}`: `{}` ({}) already routes it, and inside the mesh only the oldest takes effect, so these rules are ignored",
                    older.name,
                    older.origin()
                ),
                Some(format!("change `{}` instead (`kubectl apply` it again, or `kubectl patch`), or delete it first", older.name)),
            );
            return;
        }
    }
}

pub(super) fn destination_rule_ignored(
    doc: &Doc,
    ns: &str,
    name: &str,
    model: &Model,
    sink: &mut Sink<'_>,
) {
    if doc.json.pointer("/spec/trafficPolicy").is_none()
        || doc.json.pointer("/spec/workloadSelector").is_some()
    {
        return;
    }
    let Some(host) = doc.json.pointer("/spec/host").and_then(Value::as_str) else {
        return;
    };
    let key = resolve_host(host, ns);
    let older = model.objects.iter().find(|o| {
        o.kind == "DestinationRule"
            && o.here()
            && o.namespace.as_deref() == Some(ns)
            && o.json.pointer("/spec/workloadSelector").is_none()
            && o.json
                .pointer("/spec/host")
                .and_then(Value::as_str)
                .is_some_and(|h| h == host || (key.is_some() && resolve_host(h, ns) == key))
    });
    if let Some(older) = older {
        sink.emit(
            "destination-rule-ignored",
            Severity::Error,
            doc.line_of(&[Seg::Key("spec".into()), Seg::Key("trafficPolicy".into())]),
            format!(
                "DestinationRule `{name}` is a second one for host `{host}`: Istio merges it into `{}` ({}), keeps only its subsets, and ignores this top-level trafficPolicy",
                older.name,
                older.origin()
            ),
            Some(format!("put the trafficPolicy in `{}` (apply it again with the policy added)", older.name)),
        );
    }
}

/// A destination found in a VirtualService: host, subset and the path of the `destination`.
pub(super) fn destinations(json: &Value) -> Vec<(String, Option<String>, Vec<Seg>)> {
    let mut out = Vec::new();
    for section in ["http", "tcp", "tls"] {
        let Some(routes) = json
            .pointer(&format!("/spec/{section}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (r, route) in routes.iter().enumerate() {
            let Some(dests) = route.get("route").and_then(Value::as_array) else {
                continue;
            };
            for (d, dest) in dests.iter().enumerate() {
                let Some(destination) = dest.get("destination") else {
                    continue;
                };
                let Some(host) = destination.get("host").and_then(Value::as_str) else {
                    continue;
                };
                let subset = destination
                    .get("subset")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let path = vec![
                    Seg::Key("spec".into()),
                    Seg::Key(section.into()),
                    Seg::Index(r),
                    Seg::Key("route".into()),
                    Seg::Index(d),
                    Seg::Key("destination".into()),
                ];
                out.push((host.to_string(), subset, path));
            }
        }
    }
    out
}

/// Hosts declared by ServiceEntries in the model.
pub(super) fn service_entry_hosts(model: &Model) -> BTreeSet<String> {
    model
        .objects
        .iter()
        .filter(|o| o.kind == "ServiceEntry")
        .flat_map(|o| {
            o.json
                .pointer("/spec/hosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub(super) fn host_not_found(
    object: &Object,
    host: &str,
    svc: &str,
    ns: &str,
    path: &[Seg],
    sink: &mut Sink<'_>,
) {
    let how = if host.contains('.') {
        String::new()
    } else {
        format!(
            " (a short host is read in the namespace of the {}, `{}`)",
            object.kind,
            object.namespace.as_deref().unwrap_or("default")
        )
    };
    sink.emit(
        "host-not-found",
        Severity::Error,
        object.line_of(path),
        format!("host `{host}` of {} is `{svc}.{ns}.svc.cluster.local`{how}, and there is no Service `{svc}` in namespace `{ns}`: the rule applies to nothing", object.describe()),
        Some(format!("create the Service in `{ns}`, or write the host in full (`{svc}.<namespace>.svc.cluster.local`)")),
    );
}

pub(super) fn subsets_without_endpoints(
    model: &Model,
    rule: &Object,
    svc: &str,
    ns: &str,
    sink: &mut Sink<'_>,
) {
    if !model.certain(ns) || model.unknown_pod_labels.contains(ns) {
        return;
    }
    let Some(service) = model.get("Service", Some(ns), svc) else {
        return;
    };
    let Some(selector) = service_selector(&service.json) else {
        return;
    };
    let service_selector = Selector::from_labels(&selector);
    let behind: Vec<Labels> = model
        .pod_label_sets(ns)
        .into_iter()
        .filter(|(l, _)| service_selector.matches(l))
        .map(|(l, _)| l)
        .collect();
    let Some(subsets) = rule.json.pointer("/spec/subsets").and_then(Value::as_array) else {
        return;
    };
    for (i, subset) in subsets.iter().enumerate() {
        let labels = labels_at(subset, &["labels"]);
        if labels.is_empty() {
            continue;
        }
        let name = subset.get("name").and_then(Value::as_str).unwrap_or("?");
        let wanted = Selector::from_labels(&labels);
        if !behind.iter().any(|l| wanted.matches(l)) {
            let path = [
                Seg::Key("spec".into()),
                Seg::Key("subsets".into()),
                Seg::Index(i),
                Seg::Key("labels".into()),
            ];
            sink.emit(
                "subset-no-endpoints",
                Severity::Warning,
                rule.line_of(&path),
                format!(
                    "subset `{name}` of {} selects `{wanted}`, but none of the pods behind Service `{svc}` (`{service_selector}`) has those labels: traffic routed to it fails with 503",
                    rule.describe()
                ),
                Some(format!("the Service `{svc}` must select the pods of every version; give the workloads a shared label (such as `app`) and a `version` label in their pod templates")),
            );
        }
    }
}

pub(super) fn undefined_subset(
    model: &Model,
    vs: &Object,
    svc: &str,
    svc_ns: &str,
    subset: &str,
    path: &[Seg],
    sink: &mut Sink<'_>,
) {
    let vs_ns = vs.namespace.as_deref().unwrap_or("default");
    if !model.certain(vs_ns) || !model.certain(svc_ns) {
        return;
    }
    let rules: Vec<&Object> = model
        .objects
        .iter()
        .filter(|o| o.kind == "DestinationRule")
        .filter(|o| {
            let ns = o.namespace.as_deref().unwrap_or("default");
            o.json
                .pointer("/spec/host")
                .and_then(Value::as_str)
                .and_then(|h| resolve_host(h, ns))
                .is_some_and(|(name, namespace)| name == svc && namespace == svc_ns)
        })
        .collect();
    let defined = rules.iter().any(|r| {
        r.json
            .pointer("/spec/subsets")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|x| x.get("name").and_then(Value::as_str) == Some(subset))
            })
    });
    if !defined {
        let which = if rules.is_empty() {
            format!("no DestinationRule for `{svc}` exists")
        } else {
            format!(
                "{} {} not define it",
                rules
                    .iter()
                    .map(|r| format!("`{}`", r.name))
                    .collect::<Vec<_>>()
                    .join(" and "),
                if rules.len() == 1 { "does" } else { "do" }
            )
        };
        sink.emit(
            "subset-undefined",
            Severity::Error,
            vs.line_of(&[path, &[Seg::Key("subset".into())]].concat()),
            format!("{} routes to subset `{subset}` of `{svc}`, but {which}: requests to it fail with 503", vs.describe()),
            Some(format!("define subset `{subset}` in the DestinationRule for `{svc}`, and apply it before the VirtualService")),
        );
    }
}

/// Hosts, subsets and routes of every DestinationRule and VirtualService at the end of the main
/// sequence.
pub(super) fn routes(model: &Model, sink: &mut Sink<'_>) {
    let entries = service_entry_hosts(model);
    let service_exists = |name: &str, ns: &str| model.get("Service", Some(ns), name).is_some();
    for object in model.objects.iter().filter(|o| o.here()) {
        let ns = object.namespace.as_deref().unwrap_or("default");
        match object.kind.as_str() {
            "DestinationRule" => {
                let Some(host) = object.json.pointer("/spec/host").and_then(Value::as_str) else {
                    continue;
                };
                let host_path = [Seg::Key("spec".into()), Seg::Key("host".into())];
                let Some((svc, svc_ns)) = resolve_host(host, ns) else {
                    continue;
                };
                if !service_exists(&svc, &svc_ns) {
                    if model.certain(&svc_ns) && !entries.contains(host) {
                        host_not_found(object, host, &svc, &svc_ns, &host_path, sink);
                    }
                    continue;
                }
                subsets_without_endpoints(model, object, &svc, &svc_ns, sink);
            }
            "VirtualService" => {
                let gateways_only = mesh_hosts(&object.json, ns).is_empty()
                    && object.json.pointer("/spec/gateways").is_some();
                let mut reported_host = false;
                if !gateways_only {
                    for (i, host) in object
                        .json
                        .pointer("/spec/hosts")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .enumerate()
                    {
                        if let Some((svc, svc_ns)) = resolve_host(host, ns)
                            && !service_exists(&svc, &svc_ns)
                            && model.certain(&svc_ns)
                            && !entries.contains(host)
                        {
                            let path = [
                                Seg::Key("spec".into()),
                                Seg::Key("hosts".into()),
                                Seg::Index(i),
                            ];
                            host_not_found(object, host, &svc, &svc_ns, &path, sink);
                            reported_host = true;
                            break;
                        }
                    }
                }
                for (host, subset, path) in destinations(&object.json) {
                    let Some((svc, svc_ns)) = resolve_host(&host, ns) else {
                        continue;
                    };
                    if !service_exists(&svc, &svc_ns) {
                        if !reported_host && model.certain(&svc_ns) && !entries.contains(&host) {
                            host_not_found(
                                object,
                                &host,
                                &svc,
                                &svc_ns,
                                &[path.as_slice(), &[Seg::Key("host".into())]].concat(),
                                sink,
                            );
                            reported_host = true;
                        }
                        continue;
                    }
                    if let Some(subset) = subset {
                        undefined_subset(model, object, &svc, &svc_ns, &subset, &path, sink);
                    }
                }
            }
            "HTTPRoute" | "GRPCRoute" => gateway_route(model, object, sink),
            _ => {}
        }
    }
}

/// The API group of the Gateway API, whose `Gateway` shares its kind name with Istio's.
const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// Whether an object is a Gateway API Gateway (not an Istio `networking.istio.io` Gateway).
fn is_gateway_api_gateway(object: &Object) -> bool {
    object.kind == "Gateway"
        && object
            .json
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.split('/').next() == Some(GATEWAY_API_GROUP))
}

/// The `(name, namespace)` of the Gateways a route attaches to (`parentRefs` of kind Gateway),
/// with the index of each reference.
fn gateway_parents(json: &Value, ns: &str) -> Vec<(usize, String, String)> {
    json.pointer("/spec/parentRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, r)| {
            r.get("kind").and_then(Value::as_str).unwrap_or("Gateway") == "Gateway"
                && r.get("group")
                    .and_then(Value::as_str)
                    .unwrap_or(GATEWAY_API_GROUP)
                    == GATEWAY_API_GROUP
        })
        .filter_map(|(i, r)| {
            let name = r.get("name").and_then(Value::as_str)?;
            let namespace = r.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            (!is_dynamic(name) && !is_dynamic(namespace))
                .then(|| (i, name.to_string(), namespace.to_string()))
        })
        .collect()
}

/// An HTTPRoute's or GRPCRoute's references at the end of the main sequence: Gateways and
/// Services that do not exist, and rules whose backend weights add up to 0.
fn gateway_route(model: &Model, route: &Object, sink: &mut Sink<'_>) {
    let ns = route.namespace.as_deref().unwrap_or("default");
    for (i, name, namespace) in gateway_parents(&route.json, ns) {
        let found = model
            .in_namespace(&namespace)
            .any(|o| o.name == name && is_gateway_api_gateway(o));
        if !found && model.certain(&namespace) {
            let path = [
                Seg::Key("spec".into()),
                Seg::Key("parentRefs".into()),
                Seg::Index(i),
            ];
            sink.emit(
                "route-parent-not-found",
                Severity::Error,
                route.line_of(&path),
                format!(
                    "{} attaches to Gateway `{name}`, and there is no Gateway `{name}` in namespace `{namespace}`: the route serves nothing",
                    route.describe()
                ),
                Some(format!("create the Gateway (`apiVersion: {GATEWAY_API_GROUP}/v1`) first, or name an existing one in `parentRefs` (with `namespace:` if it is in another namespace)")),
            );
        }
    }
    let rules = route
        .json
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (r, rule) in rules.iter().enumerate() {
        let Some(backends) = rule.get("backendRefs").and_then(Value::as_array) else {
            continue;
        };
        let rule_path = [
            Seg::Key("spec".into()),
            Seg::Key("rules".into()),
            Seg::Index(r),
        ];
        for (b, backend) in backends.iter().enumerate() {
            let is_service = backend
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("Service")
                == "Service"
                && backend
                    .get("group")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty();
            let Some(name) = backend.get("name").and_then(Value::as_str) else {
                continue;
            };
            let namespace = backend
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(ns);
            if !is_service || is_dynamic(name) || is_dynamic(namespace) {
                continue;
            }
            if model.get("Service", Some(namespace), name).is_none() && model.certain(namespace) {
                let path = [
                    &rule_path[..],
                    &[Seg::Key("backendRefs".into()), Seg::Index(b)],
                ]
                .concat();
                sink.emit(
                    "route-backend-not-found",
                    Severity::Error,
                    route.line_of(&path),
                    format!(
                        "{} sends traffic to Service `{name}`, and there is no Service `{name}` in namespace `{namespace}`: those requests fail with 500",
                        route.describe()
                    ),
                    Some(format!("create the Service in `{namespace}` first, or name an existing one in `backendRefs`")),
                );
            }
        }
        // A backend without a weight has weight 1.
        let total: i64 = backends
            .iter()
            .map(|b| b.get("weight").and_then(Value::as_i64).unwrap_or(1))
            .sum();
        if !backends.is_empty() && total == 0 {
            sink.emit(
                "route-weights-zero",
                Severity::Error,
                route.line_of(&[&rule_path[..], &[Seg::Key("backendRefs".into())]].concat()),
                format!(
                    "every backend of this rule of {} has weight 0, so the rule sends no traffic anywhere and its requests fail with 500",
                    route.describe()
                ),
                Some("give the backend that should answer a weight above 0".into()),
            );
        }
    }
}

/// The matches of an HTTPRoute rule, as the Gateway API reads them: a rule without `matches`,
/// or a match without `path`, matches the path prefix `/`.
fn http_matches(rule: &Value) -> Vec<Value> {
    let default_path = || serde_json::json!({"type": "PathPrefix", "value": "/"});
    let matches: Vec<Value> = rule
        .get("matches")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if matches.is_empty() {
        return vec![serde_json::json!({"path": default_path()})];
    }
    matches
        .into_iter()
        .map(|mut m| {
            if let Some(map) = m.as_object_mut() {
                let path = map.entry("path").or_insert_with(default_path);
                if let Some(path) = path.as_object_mut() {
                    path.entry("type").or_insert_with(|| "PathPrefix".into());
                }
            }
            m
        })
        .collect()
}

/// The hostnames of a route; empty means every hostname of its Gateway.
fn hostnames(json: &Value) -> BTreeSet<String> {
    json.pointer("/spec/hostnames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// A new HTTPRoute with a match that an older one already has, on the same Gateway and host: the
/// Gateway API gives such requests to the oldest route, so the new rule is never used.
pub(super) fn http_route_conflict(
    doc: &Doc,
    ns: &str,
    name: &str,
    model: &Model,
    sink: &mut Sink<'_>,
) {
    let parents: BTreeSet<(String, String)> = gateway_parents(&doc.json, ns)
        .into_iter()
        .map(|(_, gw, gw_ns)| (gw, gw_ns))
        .collect();
    let hosts = hostnames(&doc.json);
    let rules = doc
        .json
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for older in model.objects.iter().filter(|o| o.kind == "HTTPRoute") {
        let older_ns = older.namespace.as_deref().unwrap_or("default");
        let Some(gateway) = gateway_parents(&older.json, older_ns)
            .into_iter()
            .map(|(_, gw, gw_ns)| (gw, gw_ns))
            .find(|p| parents.contains(p))
        else {
            continue;
        };
        let older_hosts = hostnames(&older.json);
        if !hosts.is_empty() && !older_hosts.is_empty() && hosts.is_disjoint(&older_hosts) {
            continue;
        }
        let older_matches: Vec<Value> = older
            .json
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(http_matches)
            .collect();
        for (r, rule) in rules.iter().enumerate() {
            if http_matches(rule).iter().any(|m| older_matches.contains(m)) {
                let mut path = vec![
                    Seg::Key("spec".into()),
                    Seg::Key("rules".into()),
                    Seg::Index(r),
                ];
                if rule.get("matches").is_some() {
                    path.push(Seg::Key("matches".into()));
                }
                sink.emit(
                    "route-conflict",
                    Severity::Error,
                    doc.line_of(&path),
                    format!(
                        "HTTPRoute `{name}` has a match that `{}` (line {}) already has on Gateway `{}`: the Gateway API gives those requests to the oldest route, so this rule is never used",
                        older.name, older.line, gateway.0
                    ),
                    Some(format!("change `{}` instead, or make the matches differ (a header, a path)", older.name)),
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_resolve_like_istio() {
        let cases = [
            ("reviews", Some(("reviews", "demo"))),
            ("reviews.prod.svc.cluster.local", Some(("reviews", "prod"))),
            ("reviews.prod", None),
            ("example.com", None),
            ("*.example.com", None),
        ];
        for (host, expected) in cases {
            assert_eq!(
                resolve_host(host, "demo"),
                expected.map(|(a, b)| (a.to_string(), b.to_string())),
                "{host}"
            );
        }
    }
}
