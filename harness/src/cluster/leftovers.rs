//! Leftovers after cleanup: what a lab created and did not delete, as report warnings.
//!
//! A reader who follows the Cleanup section should end with the cluster as they found it; anything
//! still there will surprise the next lab. The check lists, in each namespace the lab wrote to,
//! Deployments, Services (but `kubernetes`), bare pods (pods owned by a controller go with it),
//! ConfigMaps (but the CA bundles Kubernetes and Istio put in every namespace), and Istio
//! VirtualServices and DestinationRules through the dynamic API; and every namespace the lab
//! created that still exists. Objects already being deleted are not leftovers.
//!
//! Namespaces that belong to the platform (`kube-system`, `istio-system`, ...) are never listed:
//! the lab did not create what runs there.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectMeta};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// Namespaces whose contents belong to the cluster or the mesh, not to a lab.
pub const PLATFORM_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
    "istio-system",
];

/// Objects every namespace has, that no lab creates.
const BUILT_IN: &[(&str, &str)] = &[
    ("service", "kubernetes"),
    ("configmap", "kube-root-ca.crt"),
    ("configmap", "istio-ca-root-cert"),
];

/// The Istio API versions tried, newest first; the first one the server knows is used.
const ISTIO_VERSIONS: &[&str] = &["v1", "v1beta1", "v1alpha3"];

/// Lists what remains after cleanup, one warning per namespace (and one per namespace the lab
/// created that still exists). API errors become warnings too: the check is then incomplete,
/// and says so.
pub async fn find(
    client: &Client,
    written: &BTreeSet<String>,
    created: &BTreeSet<String>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for ns in created {
        match Api::<Namespace>::all(client.clone()).get_opt(ns).await {
            Ok(Some(namespace)) if namespace.metadata.deletion_timestamp.is_none() => {
                warnings.push(format!(
                    "namespace {ns} was created by the lab and still exists after cleanup"
                ));
            }
            Ok(_) => {}
            Err(e) => warnings.push(format!("could not check namespace {ns}: {e}")),
        }
    }
    for ns in written {
        if created.contains(ns) || PLATFORM_NAMESPACES.contains(&ns.as_str()) {
            continue;
        }
        let mut left = Vec::new();
        let mut errors = Vec::new();
        collect::<Deployment>(client, ns, "deployment", &mut left, &mut errors, |_| true).await;
        collect::<Service>(client, ns, "service", &mut left, &mut errors, |_| true).await;
        // Pods owned by a ReplicaSet or a Job go away with their owner.
        collect::<Pod>(client, ns, "pod", &mut left, &mut errors, |m| {
            m.owner_references.as_ref().is_none_or(Vec::is_empty)
        })
        .await;
        collect::<ConfigMap>(client, ns, "configmap", &mut left, &mut errors, |_| true).await;
        for kind in ["VirtualService", "DestinationRule"] {
            istio(client, ns, kind, &mut left, &mut errors).await;
        }
        if !left.is_empty() {
            warnings.push(format!(
                "left behind in namespace {ns} after cleanup: {}",
                left.join(", ")
            ));
        }
        for error in errors {
            warnings.push(format!(
                "leftover check incomplete in namespace {ns}: {error}"
            ));
        }
    }
    warnings
}

/// Adds `kind/name` for each object of a type in `ns` that is not built in, not being deleted,
/// and passes `keep`.
async fn collect<K>(
    client: &Client,
    ns: &str,
    kind: &str,
    left: &mut Vec<String>,
    errors: &mut Vec<String>,
    keep: impl Fn(&ObjectMeta) -> bool,
) where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    match Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            for object in list.items {
                let meta = object.meta();
                push(kind, meta, left, &keep);
            }
        }
        Err(e) => errors.push(format!("failed to list {kind}s: {e}")),
    }
}

fn push(
    kind: &str,
    meta: &ObjectMeta,
    left: &mut Vec<String>,
    keep: &impl Fn(&ObjectMeta) -> bool,
) {
    let name = meta.name.as_deref().unwrap_or("?");
    if meta.deletion_timestamp.is_some() || BUILT_IN.contains(&(kind, name)) || !keep(meta) {
        return;
    }
    left.push(format!("{kind}/{name}"));
}

/// Istio objects through the dynamic API; a server without the Istio CRDs has none.
async fn istio(
    client: &Client,
    ns: &str,
    kind: &str,
    left: &mut Vec<String>,
    errors: &mut Vec<String>,
) {
    for version in ISTIO_VERSIONS {
        let gvk = GroupVersionKind::gvk("networking.istio.io", version, kind);
        let resource = ApiResource::from_gvk(&gvk);
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource);
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for object in list.items {
                    push(&kind.to_lowercase(), &object.metadata, left, &|_| true);
                }
                return;
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => continue,
            Err(e) => {
                errors.push(format!("failed to list {}s: {e}", kind.to_lowercase()));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mock::{FakeApi, Reply, list, pod};
    use serde_json::json;

    fn named(kind: &str, name: &str) -> serde_json::Value {
        json!({"kind": kind, "metadata": {"name": name, "namespace": "default"}})
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn lists_what_remains_but_built_ins_owned_pods_and_deletions() {
        let mut owned = pod("web-7d9-abcde", "Running", json!({"running": {}}));
        owned["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9", "uid": "u"}]);
        let mut going = named("ConfigMap", "going");
        going["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let d = "/api/v1/namespaces/default";
        let (client, requests) = FakeApi::new()
            .get(
                "/apis/apps/v1/namespaces/default/deployments",
                list(vec![named("Deployment", "web")]),
            )
            .get(
                &format!("{d}/services"),
                list(vec![
                    named("Service", "kubernetes"),
                    named("Service", "web"),
                ]),
            )
            .get(
                &format!("{d}/pods"),
                list(vec![owned, pod("debug", "Running", json!({"running": {}}))]),
            )
            .get(
                &format!("{d}/configmaps"),
                list(vec![
                    named("ConfigMap", "kube-root-ca.crt"),
                    named("ConfigMap", "istio-ca-root-cert"),
                    going,
                    named("ConfigMap", "app-config"),
                ]),
            )
            .get(
                "/apis/networking.istio.io/v1/namespaces/default/virtualservices",
                list(vec![named("VirtualService", "reviews")]),
            )
            .get(
                "/apis/networking.istio.io/v1/namespaces/default/destinationrules",
                list(vec![]),
            )
            .get(
                "/api/v1/namespaces/staging",
                Reply::Json(json!({"metadata": {"name": "staging"}})),
            )
            .get("/api/v1/namespaces/gone", Reply::Status(404))
            .start();
        let warnings = find(
            &client,
            &set(&["default", "istio-system", "staging"]),
            &set(&["staging", "gone"]),
        )
        .await;
        assert_eq!(
            warnings,
            [
                "namespace staging was created by the lab and still exists after cleanup",
                "left behind in namespace default after cleanup: deployment/web, service/web, \
                 pod/debug, configmap/app-config, virtualservice/reviews",
            ]
        );
        let requests = requests.lock().expect("log").clone();
        assert!(
            !requests.iter().any(|r| r.starts_with("UNEXPECTED")),
            "{requests:#?}"
        );
        assert!(
            !requests.iter().any(|r| r.contains("istio-system")),
            "{requests:#?}"
        );
    }

    #[tokio::test]
    async fn a_clean_namespace_without_istio_has_no_warnings() {
        let d = "/api/v1/namespaces/default";
        let mut api = FakeApi::new()
            .get("/apis/apps/v1/namespaces/default/deployments", list(vec![]))
            .get(
                &format!("{d}/services"),
                list(vec![named("Service", "kubernetes")]),
            )
            .get(&format!("{d}/pods"), list(vec![]))
            .get(
                &format!("{d}/configmaps"),
                list(vec![named("ConfigMap", "kube-root-ca.crt")]),
            );
        for version in ISTIO_VERSIONS {
            for plural in ["virtualservices", "destinationrules"] {
                api = api.get(
                    &format!("/apis/networking.istio.io/{version}/namespaces/default/{plural}"),
                    Reply::Status(404),
                );
            }
        }
        let (client, requests) = api.start();
        let warnings = find(&client, &set(&["default"]), &set(&[])).await;
        assert!(warnings.is_empty(), "{warnings:?}");
        let requests = requests.lock().expect("log").clone();
        assert!(
            !requests.iter().any(|r| r.starts_with("UNEXPECTED")),
            "{requests:#?}"
        );
        // Every Istio version was tried before concluding that Istio is not installed.
        assert_eq!(
            requests
                .iter()
                .filter(|r| r.contains("networking.istio.io"))
                .count(),
            6
        );
    }
}
