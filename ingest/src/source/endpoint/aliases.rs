//! MQTT 5 topic aliases of one connection: a PUBLISH with a topic name and a Topic Alias sets
//! the alias, a later one with the alias and an empty topic name uses it. citytel grants up to
//! `endpoint.topic_alias_maximum` aliases (told in CONNACK); an alias of 0 or above that
//! maximum, or an empty topic name with an alias never set, breaks the protocol and ends the
//! connection.

use super::connection::Disconnect;

/// The aliases a connection has set.
#[derive(Debug, Default)]
pub(crate) struct TopicAliases {
    /// Topic of alias `i + 1`.
    topics: Vec<Option<String>>,
}

impl TopicAliases {
    /// Room for aliases 1 to `max`.
    pub(crate) fn new(max: u16) -> Self {
        TopicAliases {
            topics: vec![None; usize::from(max)],
        }
    }

    /// The topic of a PUBLISH with topic name `topic` and Topic Alias `alias`, setting the alias
    /// when both are given.
    pub(crate) fn resolve(
        &mut self,
        topic: String,
        alias: Option<u16>,
    ) -> Result<String, Disconnect> {
        let Some(alias) = alias else {
            if topic.is_empty() {
                return Err(Disconnect::ProtocolError(
                    "PUBLISH without a topic name or a topic alias".into(),
                ));
            }
            return Ok(topic);
        };
        let max = self.topics.len();
        let Some(slot) = usize::from(alias)
            .checked_sub(1)
            .and_then(|i| self.topics.get_mut(i))
        else {
            return Err(Disconnect::TopicAliasInvalid(format!(
                "topic alias {alias} is outside 1..={max} (endpoint.topic_alias_maximum)"
            )));
        };
        if topic.is_empty() {
            return slot.clone().ok_or_else(|| {
                Disconnect::ProtocolError(format!("topic alias {alias} was never set"))
            });
        }
        *slot = Some(topic.clone());
        Ok(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";

    #[test]
    fn an_alias_is_set_with_a_topic_and_used_without_one() {
        let mut aliases = TopicAliases::new(2);
        assert_eq!(aliases.resolve(TOPIC.into(), Some(2)).unwrap(), TOPIC);
        assert_eq!(aliases.resolve(String::new(), Some(2)).unwrap(), TOPIC);
        // Set again, it names the new topic.
        let other = "citytel/v1/site-01/cabinet/cab-0001/status";
        assert_eq!(aliases.resolve(other.into(), Some(2)).unwrap(), other);
        assert_eq!(aliases.resolve(String::new(), Some(2)).unwrap(), other);
        assert_eq!(aliases.resolve(TOPIC.into(), None).unwrap(), TOPIC);
    }

    #[test]
    fn bad_aliases_end_the_connection() {
        let mut aliases = TopicAliases::new(2);
        for alias in [0, 3] {
            assert!(matches!(
                aliases.resolve(TOPIC.into(), Some(alias)),
                Err(Disconnect::TopicAliasInvalid(_))
            ));
        }
        assert!(matches!(
            aliases.resolve(String::new(), Some(1)),
            Err(Disconnect::ProtocolError(why)) if why.contains("never set")
        ));
        assert!(matches!(
            aliases.resolve(String::new(), None),
            Err(Disconnect::ProtocolError(_))
        ));
        assert!(matches!(
            TopicAliases::new(0).resolve(TOPIC.into(), Some(1)),
            Err(Disconnect::TopicAliasInvalid(_))
        ));
    }
}
