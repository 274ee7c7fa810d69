//! A message's hold on the properties of the connection it came from,
//! passed from each dropped message to the next one received on the same
//! thread.
//!
//! Every received message carries its connection's properties, shared by
//! all of that connection's messages through one count. Taking a hold as
//! a message is received and giving it back as it is dropped were two
//! locked operations per message on the application's thread, each
//! waiting for the stores before it: a 16 B stream's receiving side spent
//! 79 ns of CPU per message with them and 65 without any properties
//! (`zeroguard perf`, each process on one CPU). Here a dropped message
//! leaves its hold in a slot of its thread, and a message received on
//! that thread from the same connection takes it from there, so a thread
//! that takes a message, handles it and drops it before the next touches
//! no count at all (75 ns pinned; 94 → 86 ns with placement left to the
//! scheduler). Anything else (a message dropped on another thread,
//! several held at once, a message from another connection) counts as
//! before.
//!
//! The slot keeps one connection's properties alive after its last
//! message is gone, until the thread drops a message from another
//! connection or ends: one set per thread, no larger than a handshake
//! may carry.

use std::cell::Cell;
use std::sync::Arc;

use crate::metadata::Metadata;

thread_local! {
    /// The hold that this thread's last dropped message left behind.
    static SPARE: Cell<Option<Arc<Metadata>>> = const { Cell::new(None) };
}

/// Connection properties held by one message (none for a message built
/// by the application).
#[derive(Debug, Clone, Default)]
pub(super) struct Properties(Option<Arc<Metadata>>);

impl Properties {
    pub(super) fn new(metadata: Arc<Metadata>) -> Properties {
        Properties(Some(metadata))
    }

    /// A hold on `metadata`: the one this thread's last dropped message
    /// left, if it was on the same properties, a new one otherwise.
    #[inline]
    pub(super) fn of(metadata: &Arc<Metadata>) -> Properties {
        let spare = SPARE
            .try_with(|slot| match slot.take() {
                Some(held) if Arc::ptr_eq(&held, metadata) => Some(held),
                other => {
                    slot.set(other);
                    None
                }
            })
            .ok()
            .flatten();
        Properties(Some(spare.unwrap_or_else(|| metadata.clone())))
    }

    pub(super) fn get(&self) -> Option<&Metadata> {
        self.0.as_deref()
    }
}

impl Drop for Properties {
    #[inline]
    fn drop(&mut self) {
        if let Some(held) = self.0.take() {
            // The hold it replaces is given back as usual. While the
            // thread ends, the slot is gone and `held` is dropped here.
            let _ = SPARE.try_with(|slot| slot.set(Some(held)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(name: &str) -> Arc<Metadata> {
        let mut m = Metadata::new();
        m.insert("Socket-Type", name.to_owned()).unwrap();
        Arc::new(m)
    }

    #[test]
    fn a_dropped_hold_is_taken_again_by_the_next_message_of_its_connection() {
        let mine = properties("PUSH");
        let first = Properties::of(&mine);
        assert_eq!(Arc::strong_count(&mine), 2);
        drop(first);
        // Left in the slot, not given back.
        assert_eq!(Arc::strong_count(&mine), 2);
        let second = Properties::of(&mine);
        assert_eq!(
            Arc::strong_count(&mine),
            2,
            "taken from the slot, not counted again"
        );
        let third = Properties::of(&mine);
        assert_eq!(
            Arc::strong_count(&mine),
            3,
            "the slot was empty: a hold of its own"
        );
        assert!(second.get().is_some_and(|m| m.get("Socket-Type").is_some()));
        drop((second, third));
        assert_eq!(Arc::strong_count(&mine), 2, "the slot keeps one");
    }

    #[test]
    fn another_connections_hold_stays_in_the_slot_until_replaced() {
        let (a, b) = (properties("PUSH"), properties("DEALER"));
        drop(Properties::of(&a));
        let from_b = Properties::of(&b);
        assert_eq!(Arc::strong_count(&a), 2, "a's hold still in the slot");
        assert_eq!(Arc::strong_count(&b), 2);
        assert_eq!(
            from_b
                .get()
                .and_then(|m| m.get("Socket-Type"))
                .map(|v| &v[..]),
            Some(&b"DEALER"[..])
        );
        drop(from_b);
        assert_eq!(
            Arc::strong_count(&a),
            1,
            "replaced by b's, a's is given back"
        );
        assert_eq!(Arc::strong_count(&b), 2);
    }

    #[test]
    fn a_hold_dropped_on_another_thread_is_given_back_when_that_thread_ends() {
        let mine = properties("PULL");
        let held = Properties::of(&mine);
        std::thread::spawn(move || drop(held)).join().unwrap();
        // Left in that thread's slot, which went with it.
        assert_eq!(Arc::strong_count(&mine), 1);
    }
}
