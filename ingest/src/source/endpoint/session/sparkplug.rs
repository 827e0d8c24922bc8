//! A connection's Sparkplug B side (see [`crate::source::endpoint::sparkplug`]): an edge node's
//! messages through the host, its subscriptions, the route of its commands and citytel's STATE.

use citytel_proto::sparkplug::topic::MessageType;

use super::{Next, Session};
use crate::source::broker::submit::submit_sparkplug;
use crate::source::endpoint::connection::Disconnect;
use crate::source::endpoint::reply::ToClient;
use crate::source::endpoint::sparkplug::{self as sp, EndpointSparkplug, NodeKey, Wanted};
use crate::source::endpoint::wire::Publish;
use crate::telemetry::metrics as m;

impl Session {
    /// Submits a Sparkplug message through the host (acknowledged once everything made of it is
    /// durable); with device authentication, only for the connection's own edge node. An
    /// NBIRTH binds the connection to its node unless it is bound already.
    pub(super) async fn sparkplug_publish(
        &mut self,
        sparkplug: &EndpointSparkplug,
        publish: Publish,
    ) -> Next {
        let node = sp::node_of(&publish.topic);
        if let Some(speaker) = &mut self.speaker {
            let me = speaker.identity().device_id.clone();
            let allowed = match &node {
                Some((node, _)) if !sparkplug.is_identity(node, &me) => Err(format!(
                    "{me:?} may not speak for Sparkplug edge node {}/{}",
                    node.0, node.1
                )),
                _ => speaker.check_standing(),
            };
            if let Err(why) = allowed {
                return self.unauthorized(publish, why).await;
            }
        }
        if let Some((node, MessageType::NBirth)) = node {
            self.bind_node(sparkplug, node);
        }
        let inbound = self.inbound(publish);
        match submit_sparkplug(&self.shared.pipeline, &sparkplug.host, inbound).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::Stop(Disconnect::PipelineClosed),
        }
    }

    /// Binds this connection to Sparkplug edge node `node` (its commands come here), unless it
    /// is bound already.
    fn bind_node(&mut self, sparkplug: &EndpointSparkplug, node: NodeKey) {
        if self.sparkplug_node.is_none() {
            let route = sparkplug
                .routes
                .bind(node.clone(), self.outgoing.control.clone());
            self.sparkplug_node = Some((node, route));
        }
    }

    /// Answers SUBSCRIBE: each filter granted at QoS 0 or refused ([`sp::decide`]), every one
    /// counted; a granted subscription to citytel's STATE is followed by the retained STATE.
    pub(super) fn subscribe(&mut self, pkid: u16, filters: &[String]) -> Next {
        let mut granted = Vec::with_capacity(filters.len());
        let mut send_state = false;
        for filter in filters {
            let decision = match self.shared.sparkplug.clone() {
                None => Err(sp::SubscribeRefusal::Filter),
                Some(sparkplug) => {
                    let own = self.sparkplug_node.as_ref().map(|(node, _)| node);
                    let identity = self
                        .speaker
                        .as_ref()
                        .map(|s| s.identity().device_id.as_str());
                    let decision = sp::decide(&sparkplug, filter, own, identity);
                    match &decision {
                        Ok(Wanted::Commands(node)) => self.bind_node(&sparkplug, node.clone()),
                        Ok(Wanted::State) => send_state = true,
                        Err(_) => {}
                    }
                    if decision.is_ok() {
                        self.subscriptions.insert(filter.clone());
                    }
                    decision
                }
            };
            let outcome = match decision {
                Ok(_) => "granted",
                Err(refusal) => {
                    tracing::debug!(filter, reason = refusal.label(), "subscription refused");
                    refusal.label()
                }
            };
            metrics::counter!(m::ENDPOINT_SUBSCRIPTIONS_TOTAL, "outcome" => outcome).increment(1);
            granted.push(decision.is_ok());
        }
        if let Next::Stop(reason) = self.control(ToClient::SubAck(pkid, granted)) {
            return Next::Stop(reason);
        }
        let state = self.shared.sparkplug.as_ref().and_then(|sp| sp.state(true));
        match state {
            Some(state) if send_state => self.control(state),
            _ => Next::Continue,
        }
    }

    /// Holds a subscription of a resumed session again, as granted before (its edge node's
    /// commands routed here again); one no longer allowed (Sparkplug turned off, another
    /// identity) is dropped.
    pub(super) fn restore_subscription(&mut self, filter: String) {
        let Some(sparkplug) = self.shared.sparkplug.clone() else {
            return;
        };
        let own = self.sparkplug_node.as_ref().map(|(node, _)| node);
        let identity = self
            .speaker
            .as_ref()
            .map(|s| s.identity().device_id.as_str());
        match sp::decide(&sparkplug, &filter, own, identity) {
            Ok(Wanted::Commands(node)) => self.bind_node(&sparkplug, node),
            Ok(Wanted::State) => {}
            Err(_) => return,
        }
        self.subscriptions.insert(filter);
    }

    /// Answers UNSUBSCRIBE, each filter with whether a subscription to it existed (MQTT 5's
    /// reason codes); unsubscribing from citytel's STATE means no offline STATE at shutdown.
    pub(super) fn unsubscribe(&mut self, pkid: u16, filters: &[String]) -> Next {
        let existed = filters
            .iter()
            .map(|filter| self.subscriptions.remove(filter))
            .collect();
        self.control(ToClient::UnsubAck(pkid, existed))
    }

    /// Whether the connection holds a subscription to citytel's STATE.
    fn state_subscribed(&self) -> bool {
        let state = self.shared.sparkplug.as_ref().and_then(|sp| {
            let id = sp.settings.host_id.as_deref()?;
            Some(citytel_proto::sparkplug::topic::state(id))
        });
        state.is_some_and(|state| self.subscriptions.contains(&state))
    }

    /// Queues citytel's STATE offline for a connection subscribed to it (before citytel closes
    /// it at shutdown).
    pub(crate) fn host_offline(&self) {
        let state = self
            .shared
            .sparkplug
            .as_ref()
            .and_then(|sp| sp.state(false));
        if let Some(state) = state.filter(|_| self.state_subscribed()) {
            let _ = self.control(state);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let (Some(sparkplug), Some((_, route))) = (&self.shared.sparkplug, &self.sparkplug_node)
        {
            sparkplug.routes.unbind(route);
        }
    }
}
