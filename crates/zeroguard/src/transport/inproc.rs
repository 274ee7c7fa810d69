//! inproc: two sockets of one context joined by a pair of queues.
//!
//! No task and no I/O: one socket's outgoing queue is the other's incoming
//! queue, so messages pass by reference between threads. Either side may
//! come first; a connect to a name nobody bound yet waits for the bind.

use std::sync::{Arc, Weak};

use zeroguard_zmtp::{MechanismKind, SocketType};

use crate::context::InprocEntry;
use crate::error::{Error, Result};
use crate::monitor::MonitorEvent;
use crate::pipe::{Queue, Signal};
use crate::socket::SocketCore;

pub(crate) fn bind(core: &Arc<SocketCore>, name: &str, given: &str) -> Result<String> {
    let pending = {
        let mut reg = core
            .ctx
            .inner
            .inproc
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let pending = match reg.get_mut(name) {
            Some(InprocEntry::Bound(w)) if w.strong_count() > 0 => {
                return Err(Error::InprocInUse(name.to_owned()));
            }
            Some(InprocEntry::Pending(list)) => std::mem::take(list),
            _ => Vec::new(),
        };
        reg.insert(name.to_owned(), InprocEntry::Bound(Arc::downgrade(core)));
        pending
    };
    let resolved = format!("inproc://{name}");
    core.add_endpoint(given, &resolved, Some(name.to_owned()), None);
    core.emit(MonitorEvent::Listening {
        endpoint: resolved.clone(),
    });
    for connector in pending.iter().filter_map(Weak::upgrade) {
        if !connector.is_closed() {
            link(&connector, core, &resolved);
        }
    }
    Ok(resolved)
}

pub(crate) fn connect(core: &Arc<SocketCore>, name: &str, given: &str) -> Result<()> {
    let resolved = format!("inproc://{name}");
    core.add_endpoint(given, &resolved, None, None);
    let binder = {
        let mut reg = core
            .ctx
            .inner
            .inproc
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match reg.get_mut(name) {
            Some(InprocEntry::Bound(w)) if w.strong_count() > 0 => w.upgrade(),
            Some(InprocEntry::Pending(list)) => {
                list.retain(|w| w.strong_count() > 0);
                list.push(Arc::downgrade(core));
                None
            }
            _ => {
                reg.insert(
                    name.to_owned(),
                    InprocEntry::Pending(vec![Arc::downgrade(core)]),
                );
                None
            }
        }
    };
    if let Some(binder) = binder {
        link(core, &binder, &resolved);
    }
    Ok(())
}

/// Joins two sockets. The high-water marks of both ends add up, as in libzmq.
fn link(connector: &Arc<SocketCore>, binder: &Arc<SocketCore>, endpoint: &str) {
    if !connector.kind.is_compatible_with(binder.kind) {
        for (core, other) in [(connector, binder), (binder, connector)] {
            core.emit(MonitorEvent::HandshakeFailed {
                endpoint: endpoint.to_owned(),
                category: zeroguard_zmtp::ErrorCategory::Incompatible,
                detail: format!(
                    "a {} socket cannot talk to a {} socket",
                    core.kind, other.kind
                ),
            });
        }
        return;
    }
    let co = connector.options();
    let bo = binder.options();
    let c2b = Queue::new(
        co.sndhwm.saturating_add(bo.rcvhwm),
        co.sndhwm_bytes.saturating_add(bo.rcvhwm_bytes),
        Signal::all(binder.readable.clone()),
        Signal::all(connector.writable.clone()),
    );
    let b2c = Queue::new(
        bo.sndhwm.saturating_add(co.rcvhwm),
        bo.sndhwm_bytes.saturating_add(co.rcvhwm_bytes),
        Signal::all(connector.readable.clone()),
        Signal::all(binder.writable.clone()),
    );
    let id_c = connector.next_peer_id();
    let id_b = binder.next_peer_id();
    let announced = |core: &SocketCore, o: &crate::options::SocketOptions| {
        o.routing_id.clone().filter(|_| core.kind.sends_identity())
    };
    let c_side = (
        connector,
        id_c,
        announced(binder, &bo),
        c2b.clone(),
        b2c.clone(),
        (Arc::downgrade(binder), id_b),
    );
    let b_side = (
        binder,
        id_b,
        announced(connector, &co),
        b2c,
        c2b,
        (Arc::downgrade(connector), id_c),
    );
    // The publishing side first, so subscriptions replayed by the other find it attached.
    let subscriber_connects = matches!(connector.kind, SocketType::Sub | SocketType::XSub);
    let order = if subscriber_connects {
        [b_side, c_side]
    } else {
        [c_side, b_side]
    };
    let mut done: Vec<(&Arc<SocketCore>, u64)> = Vec::new();
    for (core, id, announced, out, inq, remote) in order {
        match core.attach(id, announced, out, inq, Some(remote), None) {
            Ok(()) => {
                core.emit(MonitorEvent::HandshakeSucceeded {
                    endpoint: endpoint.to_owned(),
                    mechanism: MechanismKind::Null,
                });
                done.push((core, id));
            }
            Err(reason) => {
                core.emit(MonitorEvent::HandshakeFailed {
                    endpoint: endpoint.to_owned(),
                    category: zeroguard_zmtp::ErrorCategory::Incompatible,
                    detail: reason,
                });
                for (c, i) in done.drain(..) {
                    c.detach(i);
                }
                return;
            }
        }
    }
}
