//! Schemas of the Istio and Gateway API kinds, from maintained crates, and Istio's deprecations.
//!
//! The resource types come from crates generated from the projects' own CRDs, so they follow
//! every release without hand edits: `kcr_networking_istio_io`, `kcr_security_istio_io`,
//! `kcr_telemetry_istio_io`, `kcr_extensions_istio_io` and `kcr_gateway_networking_k8s_io`
//! (kube-custom-resources-rs). [`SCHEMAS`] maps each group and kind, and the versions that serve
//! it, to its `spec` type; [`schema`] finds it. The generated types do not deny unknown fields,
//! so serde_ignored still reports every unknown field in one run; their string enumerations are
//! Rust enums, so a misspelt value is a type error naming the accepted ones.
//!
//! One type per kind serves every version of its group: Istio's CRDs give `v1alpha3`, `v1beta1`
//! and `v1` one and the same schema (Istio promoted the versions without changing a field), and
//! the Gateway API's CRDs do the same for `v1beta1` and `v1`. The crates' generated files for
//! those versions differ only in the `version` of their `#[kube]` attribute, so the lint builds
//! one version of each crate, which keeps its cold build short, and
//! `fixtures/lint/schema-kinds/versions.md` checks each kind under every version it lists.
//!
//! What a schema cannot say lives in tables here: [`DEPRECATED`], the fields and values Istio
//! deprecated, with the release that did.

use serde::Deserialize;
use serde_json::Value as Json;

use crate::manifest::{Doc, Finding, typed};
use crate::yaml::{Node, Value};
use crate::{Severity, Sink};

use kcr_extensions_istio_io::v1alpha1 as extensions;
use kcr_gateway_networking_k8s_io::v1 as gateway;
use kcr_networking_istio_io::v1alpha3 as networking_v1alpha3;
use kcr_networking_istio_io::v1beta1 as networking;
use kcr_security_istio_io::v1 as security;
use kcr_telemetry_istio_io::v1 as telemetry;

/// The envelope around a kind's `spec`: the generated root types carry kube's metadata type of
/// another k8s-openapi release, so the lint reads the envelope itself and only the `spec` from
/// the crates.
// Only deserialized, for what deserializing finds; no field is read.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object<S> {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: Option<S>,
    status: Option<Json>,
}

/// The schema check of one kind, for every version that serves it.
pub(crate) struct Schema {
    /// The API group, such as `networking.istio.io`.
    pub group: &'static str,
    /// The versions of the group that serve the kind with this one schema.
    pub versions: &'static [&'static str],
    /// The kind, such as `VirtualService`.
    pub kind: &'static str,
    /// Deserializes a document into the kind's type and reports what does not fit.
    pub check: fn(&Json) -> Vec<Finding>,
}

macro_rules! schemas {
    ($($group:literal [$($version:literal),+] $kind:literal => $spec:ty;)*) => {
        &[$(Schema {
            group: $group,
            versions: &[$($version),+],
            kind: $kind,
            check: typed::<Object<$spec>>,
        },)*]
    };
}

/// Every kind the crates describe and the versions that serve it. EnvoyFilter is served as
/// `v1alpha3` only and ProxyConfig as `v1beta1` only; the Gateway API serves GRPCRoute as `v1`
/// only among the versions here (its `v1alpha2` schema is an older one).
pub(crate) const SCHEMAS: &[Schema] = schemas! {
    "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] "VirtualService" => networking::virtualservices::VirtualServiceSpec;
    "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] "DestinationRule" => networking::destinationrules::DestinationRuleSpec;
    "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] "Gateway" => networking::gateways::GatewaySpec;
    "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] "ServiceEntry" => networking::serviceentries::ServiceEntrySpec;
    "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] "Sidecar" => networking::sidecars::SidecarSpec;
    "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] "WorkloadEntry" => networking::workloadentries::WorkloadEntrySpec;
    "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] "WorkloadGroup" => networking::workloadgroups::WorkloadGroupSpec;
    "networking.istio.io" ["v1beta1"] "ProxyConfig" => networking::proxyconfigs::ProxyConfigSpec;
    "networking.istio.io" ["v1alpha3"] "EnvoyFilter" => networking_v1alpha3::envoyfilters::EnvoyFilterSpec;
    "security.istio.io" ["v1", "v1beta1"] "AuthorizationPolicy" => security::authorizationpolicies::AuthorizationPolicySpec;
    "security.istio.io" ["v1", "v1beta1"] "PeerAuthentication" => security::peerauthentications::PeerAuthenticationSpec;
    "security.istio.io" ["v1", "v1beta1"] "RequestAuthentication" => security::requestauthentications::RequestAuthenticationSpec;
    "telemetry.istio.io" ["v1", "v1alpha1"] "Telemetry" => telemetry::telemetries::TelemetrySpec;
    "extensions.istio.io" ["v1alpha1"] "WasmPlugin" => extensions::wasmplugins::WasmPluginSpec;
    "gateway.networking.k8s.io" ["v1", "v1beta1"] "Gateway" => gateway::gateways::GatewaySpec;
    "gateway.networking.k8s.io" ["v1", "v1beta1"] "GatewayClass" => gateway::gatewayclasses::GatewayClassSpec;
    "gateway.networking.k8s.io" ["v1", "v1beta1"] "HTTPRoute" => gateway::httproutes::HttpRouteSpec;
    "gateway.networking.k8s.io" ["v1"] "GRPCRoute" => gateway::grpcroutes::GrpcRouteSpec;
    "gateway.networking.k8s.io" ["v1", "v1beta1"] "ReferenceGrant" => gateway::referencegrants::ReferenceGrantSpec;
};

/// The schema of an `apiVersion` and `kind`, if a crate describes it.
pub(crate) fn schema(api_version: &str, kind: &str) -> Option<&'static Schema> {
    let (group, version) = api_version.split_once('/')?;
    SCHEMAS
        .iter()
        .find(|s| s.group == group && s.kind == kind && s.versions.contains(&version))
}

/// Whether an `apiVersion` is served by a CRD rather than by Kubernetes itself: its group has a
/// dot and is not one of Kubernetes' own `*.k8s.io` groups (the Gateway API's group is a CRD).
pub(crate) fn is_custom(api_version: &str) -> bool {
    let Some((group, _)) = api_version.split_once('/') else {
        return false;
    };
    group.contains('.') && (!group.ends_with(".k8s.io") || group == "gateway.networking.k8s.io")
}

/// A field or value Istio deprecated.
pub(crate) struct Deprecation {
    /// The kind it belongs to.
    pub kind: &'static str,
    /// The keys that lead to it, last ones only (list indices left out): it is deprecated
    /// wherever these keys end a path in the `spec`.
    pub keys: &'static [&'static str],
    /// Only this value is deprecated, not the field.
    pub value: Option<&'static str>,
    /// The Istio release whose API reference first marked it deprecated.
    pub since: &'static str,
    /// What the lint says.
    pub message: &'static str,
    /// What to write instead.
    pub help: &'static str,
}

/// The fields and values Istio deprecated, with the release that deprecated them.
pub(crate) const DEPRECATED: &[Deprecation] = &[
    Deprecation {
        kind: "VirtualService",
        keys: &["http", "fault", "delay", "percent"],
        value: None,
        since: "1.0",
        message: "`fault.delay.percent` is deprecated",
        help: "use `fault.delay.percentage.value`",
    },
    Deprecation {
        kind: "VirtualService",
        keys: &["http", "mirrorPercent"],
        value: None,
        since: "1.5",
        message: "`mirrorPercent` is deprecated",
        help: "use `mirrorPercentage.value`",
    },
    Deprecation {
        kind: "VirtualService",
        keys: &["http", "corsPolicy", "allowOrigin"],
        value: None,
        since: "1.5",
        message: "`corsPolicy.allowOrigin` is deprecated",
        help: "use `corsPolicy.allowOrigins`",
    },
    Deprecation {
        kind: "DestinationRule",
        keys: &["outlierDetection", "consecutiveErrors"],
        value: None,
        since: "1.5",
        message: "`outlierDetection.consecutiveErrors` is deprecated (it only counts 502/503/504)",
        help: "use `consecutive5xxErrors` (or `consecutiveGatewayErrors` for gateway errors only)",
    },
    Deprecation {
        kind: "DestinationRule",
        keys: &["consistentHash", "minimumRingSize"],
        value: None,
        since: "1.14",
        message: "`consistentHash.minimumRingSize` is deprecated",
        help: "use `consistentHash.ringHash.minimumRingSize`",
    },
    Deprecation {
        kind: "DestinationRule",
        keys: &["loadBalancer", "warmupDurationSecs"],
        value: None,
        since: "1.24",
        message: "`loadBalancer.warmupDurationSecs` is deprecated",
        help: "use `loadBalancer.warmup.duration`",
    },
    Deprecation {
        kind: "DestinationRule",
        keys: &["loadBalancer", "simple"],
        value: Some("LEAST_CONN"),
        since: "1.14",
        message: "`simple: LEAST_CONN` is deprecated",
        help: "use `simple: LEAST_REQUEST`",
    },
];

/// Reports the deprecated fields and values of an Istio document, anywhere in its `spec`.
pub(crate) fn deprecated_fields(doc: &Doc, kind: &str, sink: &mut Sink<'_>) {
    fn walk(
        doc: &Doc,
        table: &[&Deprecation],
        node: &Node,
        keys: &mut Vec<String>,
        sink: &mut Sink<'_>,
    ) {
        match &node.value {
            Value::Map(entries) => {
                for entry in entries {
                    keys.push(entry.key.clone());
                    let value = entry.value.as_str();
                    for deprecation in table {
                        if keys.ends_with_keys(deprecation.keys)
                            && deprecation
                                .value
                                .is_none_or(|v| value.as_deref() == Some(v))
                        {
                            sink.emit(
                                "manifest-deprecated-field",
                                Severity::Warning,
                                doc.markdown_line(entry.line),
                                deprecation.message,
                                Some(format!(
                                    "{} (deprecated since Istio {})",
                                    deprecation.help, deprecation.since
                                )),
                            );
                        }
                    }
                    walk(doc, table, &entry.value, keys, sink);
                    keys.pop();
                }
            }
            Value::Seq(items) => {
                for item in items {
                    walk(doc, table, item, keys, sink);
                }
            }
            _ => {}
        }
    }
    let table: Vec<&Deprecation> = DEPRECATED.iter().filter(|d| d.kind == kind).collect();
    if table.is_empty() {
        return;
    }
    if let Some(spec) = doc.tree.get("spec") {
        walk(doc, &table, spec, &mut vec!["spec".to_string()], sink);
    }
}

/// Whether a path of keys ends with some keys.
trait EndsWithKeys {
    fn ends_with_keys(&self, keys: &[&str]) -> bool;
}

impl EndsWithKeys for Vec<String> {
    fn ends_with_keys(&self, keys: &[&str]) -> bool {
        self.len() >= keys.len()
            && self[self.len() - keys.len()..]
                .iter()
                .zip(keys)
                .all(|(a, b)| a == b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_the_issue_has_a_schema() {
        let cases = [
            ("networking.istio.io/v1", "VirtualService"),
            ("networking.istio.io/v1beta1", "DestinationRule"),
            ("networking.istio.io/v1alpha3", "Gateway"),
            ("networking.istio.io/v1", "ServiceEntry"),
            ("networking.istio.io/v1", "Sidecar"),
            ("networking.istio.io/v1", "WorkloadEntry"),
            ("networking.istio.io/v1beta1", "ProxyConfig"),
            ("networking.istio.io/v1alpha3", "EnvoyFilter"),
            ("security.istio.io/v1", "PeerAuthentication"),
            ("security.istio.io/v1beta1", "AuthorizationPolicy"),
            ("security.istio.io/v1", "RequestAuthentication"),
            ("telemetry.istio.io/v1", "Telemetry"),
            ("extensions.istio.io/v1alpha1", "WasmPlugin"),
            ("gateway.networking.k8s.io/v1", "Gateway"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            ("gateway.networking.k8s.io/v1", "GRPCRoute"),
            ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
        ];
        for (api_version, kind) in cases {
            assert!(schema(api_version, kind).is_some(), "{api_version} {kind}");
        }
        for (api_version, kind) in [
            ("networking.istio.io/v1", "EnvoyFilter"),
            ("networking.istio.io/v2", "VirtualService"),
            ("example.com/v1", "Widget"),
            ("v1", "Service"),
        ] {
            assert!(schema(api_version, kind).is_none(), "{api_version} {kind}");
        }
    }

    /// `fixtures/lint/schema-kinds/versions.md` has one manifest for each version of each kind
    /// of [`SCHEMAS`], and no other, so its test covers every version the lint claims to check.
    #[test]
    fn the_versions_fixture_covers_every_version_of_every_schema() {
        let fixture = include_str!("../../fixtures/lint/schema-kinds/versions.md");
        let mut in_fixture: Vec<(&str, &str)> = Vec::new();
        let mut lines = fixture.lines();
        while let Some(line) = lines.next() {
            if let Some(api_version) = line.strip_prefix("apiVersion: ")
                && api_version.contains(".io/")
            {
                let kind = lines.next().and_then(|l| l.strip_prefix("kind: "));
                in_fixture.push((api_version, kind.expect("`kind:` after `apiVersion:`")));
            }
        }
        let mut listed: Vec<(String, &str)> = SCHEMAS
            .iter()
            .flat_map(|s| {
                s.versions
                    .iter()
                    .map(move |v| (format!("{}/{v}", s.group), s.kind))
            })
            .collect();
        let mut in_fixture: Vec<(String, &str)> = in_fixture
            .into_iter()
            .map(|(a, k)| (a.to_string(), k))
            .collect();
        listed.sort();
        in_fixture.sort();
        assert_eq!(in_fixture, listed);
    }

    #[test]
    fn custom_groups_are_told_from_kubernetes_groups() {
        let cases = [
            ("v1", false),
            ("apps/v1", false),
            ("networking.k8s.io/v1", false),
            ("rbac.authorization.k8s.io/v1", false),
            ("gateway.networking.k8s.io/v1", true),
            ("networking.istio.io/v1", true),
            ("example.com/v1", true),
        ];
        for (api_version, expected) in cases {
            assert_eq!(is_custom(api_version), expected, "{api_version}");
        }
    }

    #[test]
    fn deprecations_match_the_end_of_a_path() {
        let cases: [(&[&str], &[&str], bool); 4] = [
            (
                &[
                    "spec",
                    "trafficPolicy",
                    "outlierDetection",
                    "consecutiveErrors",
                ],
                &["outlierDetection", "consecutiveErrors"],
                true,
            ),
            (
                &["spec", "http", "fault", "delay", "percent"],
                &["http", "fault", "delay", "percent"],
                true,
            ),
            (
                &["spec", "http", "fault", "delay", "percentage"],
                &["http", "fault", "delay", "percent"],
                false,
            ),
            (&["percent"], &["delay", "percent"], false),
        ];
        for (path, keys, expected) in cases {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            assert_eq!(path.ends_with_keys(keys), expected, "{path:?}");
        }
    }

    #[test]
    fn every_deprecation_names_a_release() {
        for d in DEPRECATED {
            let (major, minor) = d.since.split_once('.').expect("a release such as 1.5");
            assert!(
                major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok(),
                "{}",
                d.since
            );
            assert!(
                d.message.starts_with('`') && d.help.starts_with("use"),
                "{}",
                d.message
            );
        }
    }
}
