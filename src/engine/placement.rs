//! Placement: which stages share a thread, and which core each thread is pinned to.
//!
//! Placement is configuration, not code: the same stage chain runs fused on one thread,
//! one thread per stage, or any split in between, with identical output.

use std::ops::Range;
use std::sync::OnceLock;

use super::error::ConfigProblem;
use super::wait::WaitStrategy;

/// How stages are spread over threads. Stages on one thread run to completion, one batch
/// at a time, with no ring between them; a ring joins consecutive threads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// As many threads as the allowed cores leave after reserving
    /// [`host_cores`](crate::engine::PipelineBuilder::host_cores) for the host (at least one,
    /// at most one per stage); stages are split into consecutive groups of equal size.
    #[default]
    Auto,
    /// Every stage on one thread.
    Fused,
    /// One thread per stage.
    PerStage,
    /// Consecutive groups of the given sizes, one thread each: `Groups(vec![2, 1, 3])`.
    Groups(Vec<usize>),
}

/// Which cores pipeline threads are pinned to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Pinning {
    /// Not pinned; the OS schedules the threads.
    #[default]
    None,
    /// Thread `i` of `n` gets the `i`-th of the last `n` allowed cores, leaving the first
    /// ones to the host thread.
    Auto,
    /// Thread `i` is pinned to `cores[i]` (core ids as the OS numbers them).
    Cores(Vec<usize>),
}

/// The cores this process may run on, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreSet {
    ids: Vec<usize>,
}

static DETECTED: OnceLock<CoreSet> = OnceLock::new();

impl CoreSet {
    /// The cores allowed to the process, read on the first call and remembered.
    ///
    /// The OS reports the cores allowed to the *calling thread*, so once any thread is
    /// pinned later calls would see one core. Call this at start-up, before pinning
    /// anything; the pipeline builder calls it too.
    pub fn detect() -> &'static CoreSet {
        DETECTED.get_or_init(|| {
            let mut ids: Vec<usize> = core_affinity::get_core_ids()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.id)
                .collect();
            if ids.is_empty() {
                // Affinity is not reported on this platform: count the CPUs instead.
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                ids = (0..n).collect();
            }
            ids.sort_unstable();
            CoreSet { ids }
        })
    }

    /// A core set with the given ids (for planning on another machine's shape).
    pub fn from_ids(mut ids: Vec<usize>) -> CoreSet {
        ids.sort_unstable();
        ids.dedup();
        CoreSet { ids }
    }

    /// The core ids, ascending.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// How many cores.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no core is known (never true for a detected set).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The resolved layout: one entry per thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) groups: Vec<Range<usize>>,
    pub(crate) waits: Vec<WaitStrategy>,
    pub(crate) cores: Vec<Option<usize>>,
    /// Thread 0 is the host's: its stages run inside the input's pushes, no thread is
    /// spawned for it.
    pub(crate) host: bool,
}

impl Plan {
    /// Which thread runs stage `stage`.
    pub(crate) fn thread_of(&self, stage: usize) -> usize {
        self.groups
            .iter()
            .position(|g| g.contains(&stage))
            .expect("groups cover every stage")
    }

    /// Whether stages `stage` and `stage + 1` share a thread.
    pub(crate) fn fused_after(&self, stage: usize) -> bool {
        self.thread_of(stage) == self.thread_of(stage + 1)
    }

    pub(crate) fn threads(&self) -> usize {
        self.groups.len()
    }

    /// The plan with the first `stages` stages run by the host as thread 0: the planned
    /// groups (which covered the stages after them) shift up by `stages`, and every thread
    /// index by one.
    pub(crate) fn with_host_group(mut self, stages: usize, wait: WaitStrategy) -> Plan {
        for g in &mut self.groups {
            *g = g.start + stages..g.end + stages;
        }
        self.groups.insert(0, 0..stages);
        self.waits.insert(0, wait);
        self.cores.insert(0, None);
        self.host = true;
        self
    }
}

/// Inputs to planning, gathered by the builder.
pub(crate) struct PlanRequest<'a> {
    pub(crate) stages: usize,
    pub(crate) placement: &'a Placement,
    pub(crate) pinning: &'a Pinning,
    pub(crate) cores: &'a CoreSet,
    pub(crate) host_cores: usize,
    pub(crate) wait: WaitStrategy,
    pub(crate) wait_overrides: &'a [(usize, WaitStrategy)],
}

/// Resolves placement, pinning and wait strategies, adding every problem found.
pub(crate) fn plan(req: &PlanRequest<'_>, problems: &mut Vec<ConfigProblem>) -> Option<Plan> {
    let sizes: Vec<usize> = match req.placement {
        Placement::Fused => vec![req.stages],
        Placement::PerStage => vec![1; req.stages],
        Placement::Auto => {
            let threads = req
                .cores
                .len()
                .saturating_sub(req.host_cores)
                .clamp(1, req.stages);
            even_split(req.stages, threads)
        }
        Placement::Groups(sizes) => {
            let mut ok = true;
            for (group, &size) in sizes.iter().enumerate() {
                if size == 0 {
                    problems.push(ConfigProblem::EmptyGroup { group });
                    ok = false;
                }
            }
            let covered: usize = sizes.iter().sum();
            if covered != req.stages {
                problems.push(ConfigProblem::GroupsDoNotCoverStages {
                    stages: req.stages,
                    covered,
                });
                ok = false;
            }
            if !ok {
                return None;
            }
            sizes.clone()
        }
    };
    let threads = sizes.len();
    let mut groups = Vec::with_capacity(threads);
    let mut start = 0;
    for size in sizes {
        groups.push(start..start + size);
        start += size;
    }

    let mut waits = vec![req.wait; threads];
    for &(thread, wait) in req.wait_overrides {
        match waits.get_mut(thread) {
            Some(w) => *w = wait,
            None => problems.push(ConfigProblem::NoSuchThread { thread, threads }),
        }
    }
    let spinning = waits
        .iter()
        .filter(|w| **w == WaitStrategy::BusySpin)
        .count();
    if spinning > req.cores.len() {
        problems.push(ConfigProblem::TooManySpinningThreads {
            spinning,
            cores: req.cores.len(),
        });
    }

    let cores = match req.pinning {
        Pinning::None => vec![None; threads],
        Pinning::Auto => {
            if threads > req.cores.len() {
                problems.push(ConfigProblem::TooManyPinnedThreads {
                    threads,
                    cores: req.cores.len(),
                });
                return None;
            }
            let ids = req.cores.ids();
            ids[ids.len() - threads..]
                .iter()
                .map(|&c| Some(c))
                .collect()
        }
        Pinning::Cores(list) => {
            if list.len() != threads {
                problems.push(ConfigProblem::PinListLength {
                    listed: list.len(),
                    threads,
                });
            }
            if list.len() > req.cores.len() {
                problems.push(ConfigProblem::TooManyPinnedThreads {
                    threads: list.len(),
                    cores: req.cores.len(),
                });
            }
            for (i, &core) in list.iter().enumerate() {
                if !req.cores.ids().contains(&core) {
                    problems.push(ConfigProblem::CoreNotAllowed {
                        core,
                        allowed: req.cores.ids().to_vec(),
                    });
                }
                if list[..i].contains(&core) {
                    problems.push(ConfigProblem::CoreReused { core });
                }
            }
            let mut cores: Vec<Option<usize>> = list.iter().map(|&c| Some(c)).collect();
            cores.resize(threads, None);
            cores
        }
    };
    Some(Plan {
        groups,
        waits,
        cores,
        host: false,
    })
}

/// Splits `n` stages into `parts` consecutive groups whose sizes differ by at most one.
fn even_split(n: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| n / parts + usize::from(i < n % parts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(
        stages: usize,
        placement: &'a Placement,
        pinning: &'a Pinning,
        cores: &'a CoreSet,
    ) -> PlanRequest<'a> {
        PlanRequest {
            stages,
            placement,
            pinning,
            cores,
            host_cores: 1,
            wait: WaitStrategy::SpinYield,
            wait_overrides: &[],
        }
    }

    #[test]
    fn auto_on_two_cores_fuses_everything_on_one_thread_off_the_host_core() {
        let cores = CoreSet::from_ids(vec![0, 1]);
        let mut problems = vec![];
        let p = plan(
            &req(4, &Placement::Auto, &Pinning::Auto, &cores),
            &mut problems,
        )
        .unwrap();
        assert!(problems.is_empty());
        assert_eq!(p.groups, vec![0..4]);
        assert_eq!(p.cores, vec![Some(1)]);
    }

    #[test]
    fn auto_on_sixteen_cores_gives_each_stage_a_core() {
        let cores = CoreSet::from_ids((0..16).collect());
        let mut problems = vec![];
        let p = plan(
            &req(9, &Placement::Auto, &Pinning::Auto, &cores),
            &mut problems,
        )
        .unwrap();
        assert_eq!(p.threads(), 9);
        assert_eq!(p.cores[0], Some(7));
        assert_eq!(p.cores[8], Some(15));
    }

    #[test]
    fn auto_on_four_cores_splits_evenly() {
        let cores = CoreSet::from_ids(vec![0, 1, 2, 3]);
        let mut problems = vec![];
        let p = plan(
            &req(8, &Placement::Auto, &Pinning::None, &cores),
            &mut problems,
        )
        .unwrap();
        assert_eq!(p.groups, vec![0..3, 3..6, 6..8]);
        assert!(p.fused_after(0) && !p.fused_after(2));
    }

    #[test]
    fn groups_must_cover_the_stages_and_be_non_empty() {
        let cores = CoreSet::from_ids(vec![0, 1]);
        let mut problems = vec![];
        let g = Placement::Groups(vec![2, 0, 1]);
        assert!(plan(&req(4, &g, &Pinning::None, &cores), &mut problems).is_none());
        assert_eq!(
            problems,
            vec![
                ConfigProblem::EmptyGroup { group: 1 },
                ConfigProblem::GroupsDoNotCoverStages {
                    stages: 4,
                    covered: 3
                }
            ]
        );
    }

    #[test]
    fn pinning_more_threads_than_cores_is_refused() {
        let cores = CoreSet::from_ids(vec![0, 1]);
        let mut problems = vec![];
        let p = plan(
            &req(3, &Placement::PerStage, &Pinning::Auto, &cores),
            &mut problems,
        );
        assert!(p.is_none());
        assert_eq!(
            problems,
            vec![ConfigProblem::TooManyPinnedThreads {
                threads: 3,
                cores: 2
            }]
        );
    }

    #[test]
    fn explicit_cores_must_be_allowed_and_distinct() {
        let cores = CoreSet::from_ids(vec![0, 1]);
        let mut problems = vec![];
        let pin = Pinning::Cores(vec![1, 1]);
        plan(&req(2, &Placement::PerStage, &pin, &cores), &mut problems);
        assert_eq!(problems, vec![ConfigProblem::CoreReused { core: 1 }]);
        problems.clear();
        let pin = Pinning::Cores(vec![0, 7]);
        plan(&req(2, &Placement::PerStage, &pin, &cores), &mut problems);
        assert_eq!(
            problems,
            vec![ConfigProblem::CoreNotAllowed {
                core: 7,
                allowed: vec![0, 1]
            }]
        );
    }

    #[test]
    fn a_host_group_takes_thread_zero_and_shifts_the_rest() {
        let cores = CoreSet::from_ids(vec![0, 1]);
        let mut problems = vec![];
        let pin = Pinning::Cores(vec![1]);
        let p = plan(&req(6, &Placement::Fused, &pin, &cores), &mut problems)
            .unwrap()
            .with_host_group(3, WaitStrategy::BusySpin);
        assert!(problems.is_empty());
        assert_eq!(p.groups, vec![0..3, 3..9]);
        assert_eq!(p.cores, vec![None, Some(1)]);
        assert_eq!(p.waits[0], WaitStrategy::BusySpin);
        assert_eq!(p.thread_of(2), 0);
        assert_eq!(p.thread_of(3), 1);
        assert!(p.fused_after(1) && !p.fused_after(2));
        assert!(p.host);
    }

    #[test]
    fn more_spinners_than_cores_is_refused() {
        let cores = CoreSet::from_ids(vec![0, 1]);
        let mut problems = vec![];
        let mut r = req(3, &Placement::PerStage, &Pinning::None, &cores);
        r.wait = WaitStrategy::BusySpin;
        plan(&r, &mut problems);
        assert_eq!(
            problems,
            vec![ConfigProblem::TooManySpinningThreads {
                spinning: 3,
                cores: 2
            }]
        );
    }
}
