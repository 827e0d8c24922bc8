//! What an authenticated device may say, checked on every message of its connection.
//!
//! A [`Speaker`] is one connection's identity with the registry snapshot it checks against
//! (refreshed when the provisioning file is reloaded, so a revocation reaches open connections
//! at their next message). The rules:
//!
//! - a device publishes only on its own topics, `citytel/v1/{site}/{kind}/{device_id}/...`,
//!   with the site and kind it is provisioned with;
//! - a gateway also on the topics of its provisioned children (entries whose `gateway` is it),
//!   with their sites and kinds; never for anyone else;
//! - a payload's `gateway_id`, when set, is the connecting device, and a birth lists only the
//!   device's own children;
//! - its Last Will is a status of its own (topic and payload name the connecting device), or,
//!   with Sparkplug on, the NDEATH of the edge node it is;
//! - with Sparkplug on, it publishes Sparkplug messages only for the edge node it is (checked
//!   by the session, see [`super::sparkplug`]).
//!
//! With `endpoint.auto_register`, a device the registry does not list is bound, in
//! [`AutoBindings`], to the first site and kind it publishes for, and a device it publishes for
//! (or lists as a child in its birth) that nobody provisioned or claimed becomes its child;
//! later messages must agree with those bindings. Bindings last until restart.
//!
//! A violation is a reason string; the connection dead-letters the message as `unauthorized`
//! and closes (or, for the will, refuses the CONNECT).

use std::collections::HashMap;
use std::sync::Arc;

use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::{Status, status};
use parking_lot::Mutex;
use prost::Message as _;
use rumqttc::mqttbytes::v4::LastWill;

use super::identity::{Authority, Identity};
use crate::decode::Decoded;
use crate::provisioning::Registry;
use crate::sparkplug::HostSettings;
use citytel_proto::sparkplug::topic as sp_topic;

/// Most devices auto-registration binds; beyond it unknown devices are refused.
const MAX_AUTO_BINDINGS: usize = 1_000_000;

/// What an auto-registered device is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    /// Who may speak for it: itself, or the gateway that claimed it.
    owner: String,
    /// Its site and kind, once it was published for.
    place: Option<(String, String)>,
}

/// Sites, kinds and owners of devices admitted by auto-registration.
#[derive(Debug, Default)]
pub(crate) struct AutoBindings {
    by_device: Mutex<HashMap<String, Binding>>,
}

impl AutoBindings {
    /// Binds `device` to `owner` (and `place`, if given) or checks it agrees with its binding.
    fn bind(&self, device: &str, owner: &str, place: Option<(&str, &str)>) -> Result<(), String> {
        let mut map = self.by_device.lock();
        if !map.contains_key(device) && map.len() >= MAX_AUTO_BINDINGS {
            return Err("too many auto-registered devices".into());
        }
        let binding = map.entry(device.to_string()).or_insert_with(|| Binding {
            owner: owner.to_string(),
            place: None,
        });
        if binding.owner != owner {
            return Err(format!(
                "device {device:?} is spoken for by {:?}",
                binding.owner
            ));
        }
        if let Some((site, kind)) = place {
            match &binding.place {
                None => binding.place = Some((site.to_string(), kind.to_string())),
                Some((s, k)) if s == site && k == kind => {}
                Some((s, k)) => {
                    return Err(format!(
                        "device {device:?} is at site {s:?} as a {k:?}, not at {site:?} as a {kind:?}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One connection's identity and what it checks against.
#[derive(Debug)]
pub(crate) struct Speaker {
    authority: Arc<Authority>,
    identity: Identity,
    registry: Arc<Registry>,
    generation: u64,
}

impl Speaker {
    /// The speaker of a connection authenticated as `identity`.
    pub(crate) fn new(authority: Arc<Authority>, identity: Identity) -> Speaker {
        let generation = authority.provisioning.generation();
        let registry = authority.provisioning.snapshot();
        Speaker {
            authority,
            identity,
            registry,
            generation,
        }
    }

    /// The connecting device.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The status topic of the connecting device, if the registry gives its site and kind.
    pub(crate) fn own_status_topic(&self) -> Option<String> {
        let entry = self.registry.get(&self.identity.device_id)?;
        Some(topic::build(
            &entry.site,
            &entry.kind,
            &entry.id,
            Channel::Status,
        ))
    }

    /// Takes up a reloaded registry.
    fn refresh(&mut self) {
        let generation = self.authority.provisioning.generation();
        if generation != self.generation {
            self.registry = self.authority.provisioning.snapshot();
            self.generation = generation;
        }
    }

    /// Whether this connection may publish on `topic`. A topic that is not a device topic
    /// passes (decoding rejects it as `unknown_topic`).
    pub(crate) fn check_topic(&mut self, topic: &str) -> Result<(), String> {
        let Ok(t) = topic::parse(topic) else {
            return Ok(());
        };
        self.check_standing()?;
        let me = self.identity.device_id.as_str();
        let place = (t.site, t.kind);
        if t.device_id == me {
            return self.check_place(me, me, place);
        }
        match self.registry.get(t.device_id) {
            Some(child) if !child.revoked && child.gateway.as_deref() == Some(me) => {
                self.check_place(t.device_id, me, place)
            }
            Some(_) => Err(format!("{me:?} may not speak for device {:?}", t.device_id)),
            None if self.authority.auto_register => {
                self.authority.auto.bind(t.device_id, me, Some(place))
            }
            None => Err(format!(
                "{me:?} may not speak for device {:?}, which is not provisioned",
                t.device_id
            )),
        }
    }

    /// Whether the connecting device is still provisioned and not revoked (by the latest
    /// registry).
    pub(crate) fn check_standing(&mut self) -> Result<(), String> {
        self.refresh();
        let me = self.identity.device_id.as_str();
        match self.registry.get(me) {
            Some(entry) if entry.revoked => Err(format!("device {me:?} was revoked")),
            None if !self.authority.auto_register => {
                Err(format!("device {me:?} is no longer provisioned"))
            }
            _ => Ok(()),
        }
    }

    /// `device` (spoken for by `owner`) is at `place` by the registry, or by auto-registration.
    fn check_place(&self, device: &str, owner: &str, place: (&str, &str)) -> Result<(), String> {
        match self.registry.get(device) {
            Some(entry) if (entry.site.as_str(), entry.kind.as_str()) == place => Ok(()),
            Some(entry) => Err(format!(
                "device {device:?} is provisioned at site {:?} as a {:?}, not at {:?} as a {:?}",
                entry.site, entry.kind, place.0, place.1
            )),
            None => self.authority.auto.bind(device, owner, Some(place)),
        }
    }

    /// Whether a decoded message's payload stays within what this connection may say: its
    /// `gateway_id` names the connecting device, and a birth lists only its own children.
    pub(crate) fn check_payload(&self, decoded: &Decoded) -> Result<(), String> {
        let me = self.identity.device_id.as_str();
        let gateway = match decoded {
            Decoded::Telemetry(batch) => batch.gateway_id.as_deref(),
            Decoded::Status(status) => status.gateway_id.as_deref(),
        };
        if let Some(gateway) = gateway
            && gateway != me
        {
            return Err(format!("{me:?} sent a message naming gateway {gateway:?}"));
        }
        if let Decoded::Status(Status {
            kind: Some(status::Kind::Birth(birth)),
            device_id,
            ..
        }) = decoded
        {
            for child in &birth.children {
                let ours = if device_id != me {
                    false
                } else if self.registry.get(child).is_some() {
                    self.registry.is_child_of(child, me)
                } else {
                    self.authority.auto_register
                        && self.authority.auto.bind(child, me, None).is_ok()
                };
                if !ours {
                    return Err(format!("{me:?} claims device {child:?} as its child"));
                }
            }
        }
        Ok(())
    }

    /// Whether `will` is a status of the connecting device itself, or, with the Sparkplug host
    /// (`sparkplug`), the NDEATH of the edge node it is.
    pub(crate) fn check_will(
        &mut self,
        will: &LastWill,
        sparkplug: Option<&HostSettings>,
    ) -> Result<(), String> {
        let me = self.identity.device_id.clone();
        if let Some(settings) = sparkplug
            && sp_topic::is_sparkplug(&will.topic)
        {
            return match sp_topic::parse(&will.topic) {
                Ok(sp_topic::SparkplugTopic::Node {
                    group,
                    kind: sp_topic::MessageType::NDeath,
                    edge_node,
                    ..
                }) if settings.node_id(group, edge_node).as_deref() == Some(me.as_str()) => {
                    self.check_standing()
                }
                _ => Err(format!(
                    "the Last Will's topic {:?} is not {me:?}'s Sparkplug NDEATH",
                    will.topic
                )),
            };
        }
        let parsed = topic::parse(&will.topic)
            .map_err(|e| format!("the Last Will's topic {:?}: {e}", will.topic))?;
        if parsed.channel != Channel::Status || parsed.device_id != me {
            return Err(format!(
                "the Last Will's topic {:?} is not {me:?}'s status topic",
                will.topic
            ));
        }
        self.check_topic(&will.topic)?;
        let status = Status::decode(&will.message[..])
            .map_err(|e| format!("the Last Will is not a Status: {e}"))?;
        if status.device_id != me {
            return Err(format!(
                "the Last Will names device {:?}, not {me:?}",
                status.device_id
            ));
        }
        self.check_payload(&Decoded::Status(status))
    }
}

/// Decides a CONNECT under device authentication: authenticates it (see
/// [`super::identity`]), then requires its client id to be its device id (an empty one becomes
/// it) and its Last Will to be its own status. Returns the connection's speaker.
pub(crate) async fn admit(
    authority: &Arc<Authority>,
    connect: &rumqttc::mqttbytes::v4::Connect,
    cert: Option<&crate::net::tls::PeerCertificate>,
    sparkplug: Option<&HostSettings>,
) -> Result<Speaker, super::identity::Refused> {
    let refused = |why: String| super::identity::Refused {
        code: rumqttc::mqttbytes::v4::ConnectReturnCode::NotAuthorized,
        why,
    };
    let identity = authority.authenticate(connect, cert).await?;
    if !connect.client_id.is_empty() && connect.client_id != identity.device_id {
        return Err(refused(format!(
            "client id {:?} is not the device's id {:?}",
            connect.client_id, identity.device_id
        )));
    }
    let mut speaker = Speaker::new(authority.clone(), identity);
    if let Some(will) = &connect.last_will {
        speaker.check_will(will, sparkplug).map_err(refused)?;
    }
    Ok(speaker)
}
