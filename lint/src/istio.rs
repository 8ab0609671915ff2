//! Schemas of the Istio and Gateway API kinds, from maintained crates, and Istio's deprecations.
//!
//! The resource types come from crates generated from the projects' own CRDs, so they follow
//! every release without hand edits: `kcr_networking_istio_io`, `kcr_security_istio_io`,
//! `kcr_telemetry_istio_io` and `kcr_extensions_istio_io` (kube-custom-resources-rs) for Istio,
//! and kube-rs's `gateway-api` for `gateway.networking.k8s.io`. [`SCHEMAS`] maps each
//! (group, version, kind) to the `spec` type of that version; [`schema`] finds it. The generated
//! types do not deny unknown fields, so serde_ignored still reports every unknown field in one
//! run; their string enumerations are Rust enums, so a misspelt value is a type error naming the
//! accepted ones.
//!
//! What a schema cannot say lives in tables here: [`DEPRECATED`], the fields and values Istio
//! deprecated, with the release that did.

use serde::Deserialize;
use serde_json::Value as Json;

use crate::manifest::{Doc, Finding, typed};
use crate::yaml::{Node, Value};
use crate::{Severity, Sink};

use gateway_api::apis::standard as gwapi;
use kcr_extensions_istio_io::v1alpha1 as extensions_v1alpha1;
use kcr_networking_istio_io::{v1 as net_v1, v1alpha3 as net_v1alpha3, v1beta1 as net_v1beta1};
use kcr_security_istio_io::{v1 as sec_v1, v1beta1 as sec_v1beta1};
use kcr_telemetry_istio_io::{v1 as tel_v1, v1alpha1 as tel_v1alpha1};

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

/// The schema check of one (group, version, kind).
pub(crate) struct Schema {
    /// The API group, such as `networking.istio.io`.
    pub group: &'static str,
    /// The version within the group, such as `v1beta1`.
    pub version: &'static str,
    /// The kind, such as `VirtualService`.
    pub kind: &'static str,
    /// Deserializes a document into the kind's type and reports what does not fit.
    pub check: fn(&Json) -> Vec<Finding>,
}

macro_rules! schemas {
    ($($group:literal $version:literal $kind:literal => $spec:ty;)*) => {
        &[$(Schema {
            group: $group,
            version: $version,
            kind: $kind,
            check: typed::<Object<$spec>>,
        },)*]
    };
}

/// Every kind the crates describe, for each version its group serves. The Gateway API serves
/// some kinds as `v1beta1` too, with the same schema as `v1`; the crate only carries `v1`.
pub(crate) const SCHEMAS: &[Schema] = schemas! {
    "networking.istio.io" "v1" "VirtualService" => net_v1::virtualservices::VirtualServiceSpec;
    "networking.istio.io" "v1" "DestinationRule" => net_v1::destinationrules::DestinationRuleSpec;
    "networking.istio.io" "v1" "Gateway" => net_v1::gateways::GatewaySpec;
    "networking.istio.io" "v1" "ServiceEntry" => net_v1::serviceentries::ServiceEntrySpec;
    "networking.istio.io" "v1" "Sidecar" => net_v1::sidecars::SidecarSpec;
    "networking.istio.io" "v1" "WorkloadEntry" => net_v1::workloadentries::WorkloadEntrySpec;
    "networking.istio.io" "v1" "WorkloadGroup" => net_v1::workloadgroups::WorkloadGroupSpec;
    "networking.istio.io" "v1beta1" "VirtualService" => net_v1beta1::virtualservices::VirtualServiceSpec;
    "networking.istio.io" "v1beta1" "DestinationRule" => net_v1beta1::destinationrules::DestinationRuleSpec;
    "networking.istio.io" "v1beta1" "Gateway" => net_v1beta1::gateways::GatewaySpec;
    "networking.istio.io" "v1beta1" "ServiceEntry" => net_v1beta1::serviceentries::ServiceEntrySpec;
    "networking.istio.io" "v1beta1" "Sidecar" => net_v1beta1::sidecars::SidecarSpec;
    "networking.istio.io" "v1beta1" "WorkloadEntry" => net_v1beta1::workloadentries::WorkloadEntrySpec;
    "networking.istio.io" "v1beta1" "WorkloadGroup" => net_v1beta1::workloadgroups::WorkloadGroupSpec;
    "networking.istio.io" "v1beta1" "ProxyConfig" => net_v1beta1::proxyconfigs::ProxyConfigSpec;
    "networking.istio.io" "v1alpha3" "VirtualService" => net_v1alpha3::virtualservices::VirtualServiceSpec;
    "networking.istio.io" "v1alpha3" "DestinationRule" => net_v1alpha3::destinationrules::DestinationRuleSpec;
    "networking.istio.io" "v1alpha3" "Gateway" => net_v1alpha3::gateways::GatewaySpec;
    "networking.istio.io" "v1alpha3" "ServiceEntry" => net_v1alpha3::serviceentries::ServiceEntrySpec;
    "networking.istio.io" "v1alpha3" "Sidecar" => net_v1alpha3::sidecars::SidecarSpec;
    "networking.istio.io" "v1alpha3" "WorkloadEntry" => net_v1alpha3::workloadentries::WorkloadEntrySpec;
    "networking.istio.io" "v1alpha3" "WorkloadGroup" => net_v1alpha3::workloadgroups::WorkloadGroupSpec;
    "networking.istio.io" "v1alpha3" "EnvoyFilter" => net_v1alpha3::envoyfilters::EnvoyFilterSpec;
    "security.istio.io" "v1" "AuthorizationPolicy" => sec_v1::authorizationpolicies::AuthorizationPolicySpec;
    "security.istio.io" "v1" "PeerAuthentication" => sec_v1::peerauthentications::PeerAuthenticationSpec;
    "security.istio.io" "v1" "RequestAuthentication" => sec_v1::requestauthentications::RequestAuthenticationSpec;
    "security.istio.io" "v1beta1" "AuthorizationPolicy" => sec_v1beta1::authorizationpolicies::AuthorizationPolicySpec;
    "security.istio.io" "v1beta1" "PeerAuthentication" => sec_v1beta1::peerauthentications::PeerAuthenticationSpec;
    "security.istio.io" "v1beta1" "RequestAuthentication" => sec_v1beta1::requestauthentications::RequestAuthenticationSpec;
    "telemetry.istio.io" "v1" "Telemetry" => tel_v1::telemetries::TelemetrySpec;
    "telemetry.istio.io" "v1alpha1" "Telemetry" => tel_v1alpha1::telemetries::TelemetrySpec;
    "extensions.istio.io" "v1alpha1" "WasmPlugin" => extensions_v1alpha1::wasmplugins::WasmPluginSpec;
    "gateway.networking.k8s.io" "v1" "Gateway" => gwapi::gateways::GatewaySpec;
    "gateway.networking.k8s.io" "v1" "GatewayClass" => gwapi::gatewayclasses::GatewayClassSpec;
    "gateway.networking.k8s.io" "v1" "HTTPRoute" => gwapi::httproutes::HttpRouteSpec;
    "gateway.networking.k8s.io" "v1" "GRPCRoute" => gwapi::grpcroutes::GrpcRouteSpec;
    "gateway.networking.k8s.io" "v1" "ReferenceGrant" => gwapi::referencegrants::ReferenceGrantSpec;
    "gateway.networking.k8s.io" "v1beta1" "Gateway" => gwapi::gateways::GatewaySpec;
    "gateway.networking.k8s.io" "v1beta1" "GatewayClass" => gwapi::gatewayclasses::GatewayClassSpec;
    "gateway.networking.k8s.io" "v1beta1" "HTTPRoute" => gwapi::httproutes::HttpRouteSpec;
    "gateway.networking.k8s.io" "v1beta1" "ReferenceGrant" => gwapi::referencegrants::ReferenceGrantSpec;
};

/// The schema of an `apiVersion` and `kind`, if a crate describes it.
pub(crate) fn schema(api_version: &str, kind: &str) -> Option<&'static Schema> {
    let (group, version) = api_version.split_once('/')?;
    SCHEMAS
        .iter()
        .find(|s| s.group == group && s.version == version && s.kind == kind)
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
