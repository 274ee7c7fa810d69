//! Prefix subscriptions of one subscriber, as kept by a publisher.
//!
//! Topics are kept whole in a map with counts (subscriptions are not
//! idempotent, RFC 29), plus the set of distinct topic lengths. A message
//! matches when, for one of those lengths, its prefix of that length is a
//! subscribed topic. No recursion anywhere (CVE-2021-20236 overflowed the
//! stack of a recursive trie with a very long topic), and memory is the sum
//! of the topics' sizes: a long topic costs its length, not a node per byte.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// A multiset of subscribed prefixes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Subscriptions {
    topics: HashMap<Bytes, u32>,
    lengths: BTreeMap<usize, u32>,
    bytes: usize,
}

impl Subscriptions {
    /// Adds one subscription; returns true if the topic is new.
    pub(crate) fn add(&mut self, topic: Bytes) -> bool {
        let len = topic.len();
        let count = self.topics.entry(topic).or_insert(0);
        *count = count.saturating_add(1);
        if *count == 1 {
            *self.lengths.entry(len).or_insert(0) += 1;
            self.bytes += len;
            true
        } else {
            false
        }
    }

    /// Removes one subscription; returns true if the topic is now gone.
    pub(crate) fn remove(&mut self, topic: &[u8]) -> bool {
        let Some(count) = self.topics.get_mut(topic) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        self.topics.remove(topic);
        self.bytes -= topic.len();
        if let Some(n) = self.lengths.get_mut(&topic.len()) {
            *n -= 1;
            if *n == 0 {
                self.lengths.remove(&topic.len());
            }
        }
        true
    }

    /// Whether a message whose first frame is `data` matches any subscription.
    pub(crate) fn matches(&self, data: &[u8]) -> bool {
        self.lengths
            .keys()
            .take_while(|&&l| l <= data.len())
            .any(|&l| self.topics.contains_key(&data[..l]))
    }

    /// How many times `topic` is subscribed.
    pub(crate) fn count(&self, topic: &[u8]) -> u32 {
        self.topics.get(topic).copied().unwrap_or(0)
    }

    /// The distinct topics.
    pub(crate) fn topics(&self) -> impl Iterator<Item = &Bytes> {
        self.topics.keys()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Distinct topics held.
    pub(crate) fn len(&self) -> usize {
        self.topics.len()
    }

    /// Bytes of topic data held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matching_with_counts() {
        let mut s = Subscriptions::default();
        assert!(!s.matches(b"weather"));
        assert!(s.add(Bytes::from_static(b"wea")));
        assert!(!s.add(Bytes::from_static(b"wea")));
        assert!(s.matches(b"weather") && !s.matches(b"we") && !s.matches(b"news"));
        assert!(!s.remove(b"wea"));
        assert!(s.matches(b"weather"));
        assert!(s.remove(b"wea"));
        assert!(!s.matches(b"weather"));
        assert!(!s.remove(b"never"));
        s.add(Bytes::new());
        assert!(s.matches(b"") && s.matches(b"anything"));
    }

    #[test]
    fn very_long_topic_needs_no_recursion() {
        let mut s = Subscriptions::default();
        let topic = Bytes::from(vec![b'a'; 8 * 1024 * 1024]);
        s.add(topic.clone());
        assert_eq!(s.bytes(), topic.len());
        let mut msg = topic.to_vec();
        msg.push(b'!');
        assert!(s.matches(&msg));
        assert!(s.remove(&topic));
        assert!(s.is_empty());
    }
}
