//! [`Router`]: which chain a record runs — by kind, with `(kind, namespace)` overrides.

use crate::sources::intern::Symbol;
use crate::sources::record::{Kind, Record};

const NO_CHAIN: u8 = u8::MAX;

/// Maps a record to a chain id: a `(kind, namespace)` route if one matches, else the
/// kind's chain, else none (the record passes through). A kind without routes costs one
/// array load; a kind with routes scans them (at most
/// [`MAX_ROUTES`](super::MAX_ROUTES)).
#[derive(Clone, Debug)]
pub(crate) struct Router {
    by_kind: [u8; Kind::COUNT],
    kind_has_routes: [bool; Kind::COUNT],
    routes: Vec<(Kind, Symbol, u8)>,
}

impl Router {
    pub(crate) fn new() -> Router {
        Router {
            by_kind: [NO_CHAIN; Kind::COUNT],
            kind_has_routes: [false; Kind::COUNT],
            routes: Vec::new(),
        }
    }

    pub(crate) fn set_kind(&mut self, kind: Kind, chain: u8) {
        self.by_kind[kind as usize] = chain;
    }

    pub(crate) fn add_route(&mut self, kind: Kind, namespace: Symbol, chain: u8) {
        self.kind_has_routes[kind as usize] = true;
        self.routes.push((kind, namespace, chain));
    }

    /// The chain for `record`, if any.
    #[inline]
    pub(crate) fn route(&self, record: &Record) -> Option<u8> {
        let k = record.kind as usize;
        if self.kind_has_routes[k] {
            for &(kind, ns, chain) in &self.routes {
                if kind == record.kind && ns == record.namespace {
                    return Some(chain);
                }
            }
        }
        let c = self.by_kind[k];
        (c != NO_CHAIN).then_some(c)
    }
}
