//! Where an Environment sends the transitions of its Releases: `spec.notifications`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::LocalObjectRef;

/// The receivers of an Environment's Release transitions (Committed, Ready, Failed,
/// Promoted, RolledBack).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsSpec {
    /// Each receiver gets every transition of every Release of this Environment, in order
    /// per Release. At most 10.
    #[serde(default)]
    #[schemars(
        length(max = 10),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub receivers: Vec<NotificationReceiver>,
}

/// One receiver: a webhook that gets a JSON document per transition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.address) || has(self.secretRef)",
        "message": "a receiver needs an address, or a secretRef whose Secret holds the address"
    },
    {
        "rule": "self.type != 'generic-hmac' || has(self.secretRef)",
        "message": "type generic-hmac needs a secretRef whose Secret holds the HMAC key in `token`"
    }
]))]
pub struct NotificationReceiver {
    /// Name of the receiver, unique in the Environment; shown in the
    /// `NotificationsDelivered` condition.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// `generic`: the JSON event; `generic-hmac`: the same, signed with an
    /// `X-Signature: sha256=<hex HMAC of the body>` header keyed by the Secret's `token`
    /// (as Flux's `generic-hmac` provider); `slack`: a Slack-compatible incoming webhook
    /// (`{"text": ...}`).
    #[serde(rename = "type")]
    pub type_: ReceiverType,
    /// `http://` or `https://` URL of the webhook. Webhook URLs that are credentials
    /// (Slack's) belong in the Secret's `address` key instead, which wins over this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s]+$"), length(max = 2048))]
    pub address: Option<String>,
    /// A Secret in the Environment's namespace with `address` (the URL, kept out of the
    /// spec) and/or `token` (the HMAC key of `generic-hmac`), as Flux's Provider reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectRef>,
}

/// The format a receiver gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ReceiverType {
    #[default]
    #[serde(rename = "generic")]
    Generic,
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    #[serde(rename = "slack")]
    Slack,
}

impl ReceiverType {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverType::Generic => "generic",
            ReceiverType::GenericHmac => "generic-hmac",
            ReceiverType::Slack => "slack",
        }
    }
}
