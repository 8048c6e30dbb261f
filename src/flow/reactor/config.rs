//! [`ReactorConfig`] and its builder: chains, routing, retry policy, capacity, timing.
//!
//! Everything here allocates (names, step boxes, tables) — once, at configuration time.

use crate::flow::reactor::router::Router;
use crate::flow::reactor::{RetryPolicy, Step, Timing, MAX_STEPS};
use crate::sources::intern::Symbol;
use crate::sources::record::Kind;

/// Most chains one reactor holds (chain ids are `u8`).
pub const MAX_CHAINS: usize = 64;
/// Most `(kind, namespace)` routes over all chains.
pub const MAX_ROUTES: usize = 64;
/// Largest retry table.
pub const MAX_RETRY_CAPACITY: usize = 1 << 20;
/// Default retry table capacity (items parked at once).
pub const DEFAULT_RETRY_CAPACITY: usize = 1024;

/// A configuration mistake, found by [`ReactorConfigBuilder::build`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A chain without steps.
    #[error("chain {chain:?} has no steps")]
    EmptyChain {
        /// Chain name.
        chain: String,
    },
    /// A chain longer than [`MAX_STEPS`].
    #[error("chain {chain:?} has {steps} steps; at most {max} are allowed")]
    TooManySteps {
        /// Chain name.
        chain: String,
        /// Its steps.
        steps: usize,
        /// [`MAX_STEPS`].
        max: usize,
    },
    /// A chain no record can reach.
    #[error("chain {chain:?} has no kind and no namespace route: no record reaches it")]
    Unreachable {
        /// Chain name.
        chain: String,
    },
    /// Two chains claim the same kind.
    #[error("kind {kind:?} is claimed by chain {first:?} and chain {second:?}")]
    KindClaimedTwice {
        /// The kind.
        kind: Kind,
        /// The first chain that claimed it.
        first: String,
        /// The second.
        second: String,
    },
    /// Two chains claim the same `(kind, namespace)` route.
    #[error("route ({kind:?}, namespace symbol {namespace}) is claimed by chain {first:?} and chain {second:?}")]
    RouteClaimedTwice {
        /// The kind.
        kind: Kind,
        /// The namespace symbol id.
        namespace: u32,
        /// The first chain that claimed it.
        first: String,
        /// The second.
        second: String,
    },
    /// More than [`MAX_CHAINS`] chains.
    #[error("{count} chains; at most {max} are allowed")]
    TooManyChains {
        /// Chains configured.
        count: usize,
        /// [`MAX_CHAINS`].
        max: usize,
    },
    /// More than [`MAX_ROUTES`] namespace routes.
    #[error("{count} namespace routes; at most {max} are allowed")]
    TooManyRoutes {
        /// Routes configured.
        count: usize,
        /// [`MAX_ROUTES`].
        max: usize,
    },
    /// A retry policy that breaks an invariant of [`RetryPolicy`].
    #[error("retry policy of {scope}: {problem}")]
    BadRetryPolicy {
        /// `"the reactor"` or `chain "name"`.
        scope: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A retry capacity outside `1..=MAX_RETRY_CAPACITY`.
    #[error("retry capacity {capacity} is outside 1..={max}")]
    BadCapacity {
        /// The capacity asked for.
        capacity: usize,
        /// [`MAX_RETRY_CAPACITY`].
        max: usize,
    },
}

/// Every mistake [`ReactorConfigBuilder::build`] found (at least one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid reactor configuration: {}", join(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn join(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One step chain: its name, which records it takes, its steps and its retry policy.
pub struct ChainConfig {
    pub(crate) name: String,
    pub(crate) kinds: Vec<Kind>,
    pub(crate) routes: Vec<(Kind, Symbol)>,
    pub(crate) steps: Vec<Box<dyn Step>>,
    pub(crate) retry: Option<RetryPolicy>,
}

impl core::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("name", &self.name)
            .field("kinds", &self.kinds)
            .field("routes", &self.routes)
            .field(
                "steps",
                &self.steps.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("retry", &self.retry)
            .finish()
    }
}

impl ChainConfig {
    /// An empty chain named `name` (the name appears in errors and docs only).
    pub fn new(name: impl Into<String>) -> ChainConfig {
        ChainConfig {
            name: name.into(),
            kinds: Vec::new(),
            routes: Vec::new(),
            steps: Vec::new(),
            retry: None,
        }
    }

    /// Records of these kinds run this chain (unless a namespace route sends them
    /// elsewhere). A kind may belong to one chain only.
    pub fn kinds(mut self, kinds: &[Kind]) -> ChainConfig {
        self.kinds.extend_from_slice(kinds);
        self
    }

    /// Records of `kind` in `namespace` run this chain, whatever chain `kind` belongs
    /// to: the namespace classifier. `namespace` is the symbol the source's interner
    /// gave the namespace string.
    pub fn namespace(mut self, kind: Kind, namespace: Symbol) -> ChainConfig {
        self.routes.push((kind, namespace));
        self
    }

    /// Appends a step.
    pub fn step(mut self, step: impl Step) -> ChainConfig {
        self.steps.push(Box::new(step));
        self
    }

    /// Appends an already boxed step.
    pub fn boxed_step(mut self, step: Box<dyn Step>) -> ChainConfig {
        self.steps.push(step);
        self
    }

    /// This chain's retry policy (default: the reactor's).
    pub fn retry(mut self, policy: RetryPolicy) -> ChainConfig {
        self.retry = Some(policy);
        self
    }
}

/// Builds a [`ReactorConfig`]; see [`ReactorConfig::builder`].
#[derive(Debug)]
pub struct ReactorConfigBuilder {
    chains: Vec<ChainConfig>,
    retry: RetryPolicy,
    capacity: usize,
    seed: u64,
    timing: Timing,
}

/// A checked reactor configuration. Build one with [`ReactorConfig::builder`].
#[derive(Debug)]
pub struct ReactorConfig {
    pub(crate) chains: Vec<(ChainConfig, RetryPolicy)>,
    pub(crate) router: Router,
    pub(crate) capacity: usize,
    pub(crate) seed: u64,
    pub(crate) timing: Timing,
}

impl ReactorConfig {
    /// A builder with no chains, [`RetryPolicy::default`], a retry table of
    /// [`DEFAULT_RETRY_CAPACITY`], seed 0 and [`Timing::PerStep`].
    pub fn builder() -> ReactorConfigBuilder {
        ReactorConfigBuilder {
            chains: Vec::new(),
            retry: RetryPolicy::default(),
            capacity: DEFAULT_RETRY_CAPACITY,
            seed: 0,
            timing: Timing::PerStep,
        }
    }

    /// The retry table capacity.
    pub fn retry_capacity(&self) -> usize {
        self.capacity
    }
}

impl ReactorConfigBuilder {
    /// Adds a chain; its id is the number of chains added before it.
    pub fn chain(mut self, chain: ChainConfig) -> Self {
        self.chains.push(chain);
        self
    }

    /// The retry policy of chains that set none.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How many items may be parked at once (retrying, or waiting behind a retrying item
    /// of their key). See the overflow policy in [`FailReason`](super::FailReason).
    pub fn retry_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Seed of the jitter generator.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// What the reactor measures.
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Checks everything and returns the configuration, or every mistake found.
    pub fn build(self) -> Result<ReactorConfig, ConfigErrors> {
        let mut errors = Vec::new();
        if self.capacity == 0 || self.capacity > MAX_RETRY_CAPACITY {
            errors.push(ConfigError::BadCapacity {
                capacity: self.capacity,
                max: MAX_RETRY_CAPACITY,
            });
        }
        if let Some(problem) = self.retry.problems() {
            errors.push(ConfigError::BadRetryPolicy {
                scope: "the reactor".into(),
                problem,
            });
        }
        if self.chains.len() > MAX_CHAINS {
            errors.push(ConfigError::TooManyChains {
                count: self.chains.len(),
                max: MAX_CHAINS,
            });
        }
        let routes: usize = self.chains.iter().map(|c| c.routes.len()).sum();
        if routes > MAX_ROUTES {
            errors.push(ConfigError::TooManyRoutes {
                count: routes,
                max: MAX_ROUTES,
            });
        }
        let mut router = Router::new();
        let mut kind_owner: [Option<usize>; Kind::COUNT] = [None; Kind::COUNT];
        let mut route_owner: Vec<(Kind, Symbol, usize)> = Vec::new();
        for (id, c) in self.chains.iter().enumerate() {
            if c.steps.is_empty() {
                errors.push(ConfigError::EmptyChain {
                    chain: c.name.clone(),
                });
            }
            if c.steps.len() > MAX_STEPS {
                errors.push(ConfigError::TooManySteps {
                    chain: c.name.clone(),
                    steps: c.steps.len(),
                    max: MAX_STEPS,
                });
            }
            if c.kinds.is_empty() && c.routes.is_empty() {
                errors.push(ConfigError::Unreachable {
                    chain: c.name.clone(),
                });
            }
            if let Some(problem) = c.retry.and_then(|p| p.problems()) {
                errors.push(ConfigError::BadRetryPolicy {
                    scope: format!("chain {:?}", c.name),
                    problem,
                });
            }
            for &kind in &c.kinds {
                match kind_owner[kind as usize] {
                    Some(first) if first != id => errors.push(ConfigError::KindClaimedTwice {
                        kind,
                        first: self.chains[first].name.clone(),
                        second: c.name.clone(),
                    }),
                    _ => kind_owner[kind as usize] = Some(id),
                }
            }
            for &(kind, ns) in &c.routes {
                match route_owner.iter().find(|r| r.0 == kind && r.1 == ns) {
                    Some(&(_, _, first)) if first != id => {
                        errors.push(ConfigError::RouteClaimedTwice {
                            kind,
                            namespace: ns.id(),
                            first: self.chains[first].name.clone(),
                            second: c.name.clone(),
                        })
                    }
                    Some(_) => {}
                    None => route_owner.push((kind, ns, id)),
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        for (kind, owner) in kind_owner.iter().enumerate() {
            if let Some(id) = owner {
                router.set_kind(Kind::ALL[kind], *id as u8);
            }
        }
        for &(kind, ns, id) in &route_owner {
            router.add_route(kind, ns, id as u8);
        }
        let default = self.retry;
        let chains = self
            .chains
            .into_iter()
            .map(|c| {
                let p = c.retry.unwrap_or(default);
                (c, p)
            })
            .collect();
        Ok(ReactorConfig {
            chains,
            router,
            capacity: self.capacity,
            seed: self.seed,
            timing: self.timing,
        })
    }
}
