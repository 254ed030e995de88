//! The ConnectionPoolPolicy as this peer reads it: a small typed resource (no CustomResource derive, no schema),
//! decoded straight from the API server's JSON. serde skips every field not named here while parsing, so the
//! status, the database block and the rest of the spec never become values; `spec.selector` and `spec.pool` stay
//! JSON values so that the reconcile reads them with the Go peer's unstructured rules (a field of the wrong type
//! takes the default).

use std::borrow::Cow;

use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::Resource;
use serde::Deserialize;
use serde_json::Value;

#[derive(Clone, Debug, Deserialize)]
pub struct Policy {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PolicySpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PolicySpec {
    #[serde(default)]
    pub selector: Option<Value>,
    #[serde(default)]
    pub pool: Option<Value>,
}

impl Resource for Policy {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ConnectionPoolPolicy".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "poolguard.dev".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "poolguard.dev/v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "connectionpoolpolicies".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Keeps of a policy what the reconcile reads: name, namespace, spec.selector.matchLabels and spec.pool.
pub fn strip(p: &mut Policy) {
    p.metadata = ObjectMeta {
        name: p.metadata.name.take(),
        namespace: p.metadata.namespace.take(),
        ..ObjectMeta::default()
    };
    if let Some(Value::Object(sel)) = p.spec.selector.as_mut() {
        sel.retain(|k, _| k == "matchLabels");
    }
}
