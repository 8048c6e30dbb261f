//! Bad configuration: a clear error listing every problem from `build`, never a panic.

mod common;

use std::time::Duration;

use common::{Add, Mix, Rec};
use ebbflow::engine::{ConfigProblem, CoreSet, Pinning, PipelineBuilder, Placement, WaitStrategy};

fn problems<I, O, C>(b: PipelineBuilder<I, O, C>) -> Vec<ConfigProblem>
where
    I: ebbflow::engine::Event,
    O: ebbflow::engine::Event,
    C: ebbflow::engine::Chain<I, Out = O>,
{
    match b.build() {
        Ok(_) => panic!("invalid configuration was accepted"),
        Err(e) => e.problems,
    }
}

#[test]
fn zero_capacity_is_refused_for_every_ring() {
    let p = problems(
        PipelineBuilder::<Rec>::new()
            .stage("a", Add(1))
            .capacity(0)
            .stage("b", Mix)
            .capacity(0)
            .output_capacity(0)
            .placement(Placement::PerStage),
    );
    assert_eq!(
        p,
        vec![
            ConfigProblem::ZeroCapacity {
                ring: "input".into()
            },
            ConfigProblem::ZeroCapacity {
                ring: "a -> b".into()
            },
            ConfigProblem::ZeroCapacity {
                ring: "output".into()
            },
        ]
    );
}

#[test]
fn zero_budget_zero_batch_and_duplicate_names_are_all_reported_together() {
    let p = problems(
        PipelineBuilder::<Rec>::new()
            .stage("a", Add(1))
            .budget(Duration::ZERO)
            .stage("a", Mix)
            .max_batch(0),
    );
    assert_eq!(
        p,
        vec![
            ConfigProblem::ZeroBatch,
            ConfigProblem::ZeroBudget { stage: "a".into() },
            ConfigProblem::DuplicateStageName { name: "a".into() },
        ]
    );
}

#[test]
fn per_stage_settings_before_any_stage_are_refused() {
    let p = problems(
        PipelineBuilder::<Rec>::new()
            .budget(Duration::from_micros(3))
            .stage("a", Add(1)),
    );
    assert_eq!(
        p,
        vec![ConfigProblem::SettingBeforeStage { setting: "budget" }]
    );
}

#[test]
fn pinning_more_threads_than_allowed_cores_is_refused() {
    // Planned against a two-core set, whatever this machine has.
    let p = problems(
        PipelineBuilder::<Rec>::new()
            .stage("a", Add(0))
            .stage("b", Add(1))
            .stage("c", Add(2))
            .placement(Placement::PerStage)
            .pinning(Pinning::Auto)
            .cores(CoreSet::from_ids(vec![0, 1])),
    );
    assert_eq!(
        p,
        vec![ConfigProblem::TooManyPinnedThreads {
            threads: 3,
            cores: 2
        }]
    );
}

#[test]
fn naming_a_core_outside_the_allowed_set_is_refused() {
    let allowed = CoreSet::detect().ids().to_vec();
    let outside = allowed.iter().max().unwrap() + 1;
    let p = problems(
        PipelineBuilder::<Rec>::new()
            .stage("a", Add(0))
            .placement(Placement::Fused)
            .pinning(Pinning::Cores(vec![outside])),
    );
    assert_eq!(
        p,
        vec![ConfigProblem::CoreNotAllowed {
            core: outside,
            allowed
        }]
    );
}

#[test]
fn more_busy_spinning_threads_than_cores_is_refused() {
    let p = problems(
        PipelineBuilder::<Rec>::new()
            .stage("a", Add(0))
            .stage("b", Add(1))
            .stage("c", Add(2))
            .placement(Placement::PerStage)
            .wait(WaitStrategy::BusySpin)
            .cores(CoreSet::from_ids(vec![0, 1])),
    );
    assert_eq!(
        p,
        vec![ConfigProblem::TooManySpinningThreads {
            spinning: 3,
            cores: 2
        }]
    );
}

#[test]
fn placement_groups_must_cover_the_stages() {
    let p = problems(
        PipelineBuilder::<Rec>::new()
            .stage("a", Add(0))
            .stage("b", Add(1))
            .placement(Placement::Groups(vec![1, 0, 2]))
            .thread_wait(7, WaitStrategy::Park),
    );
    assert_eq!(
        p,
        vec![
            ConfigProblem::EmptyGroup { group: 1 },
            ConfigProblem::GroupsDoNotCoverStages {
                stages: 2,
                covered: 3
            },
        ]
    );
}

#[test]
fn a_wait_override_for_a_missing_thread_is_refused() {
    let p = problems(
        PipelineBuilder::<Rec>::new()
            .stage("a", Add(0))
            .placement(Placement::Fused)
            .thread_wait(3, WaitStrategy::Park),
    );
    assert_eq!(
        p,
        vec![ConfigProblem::NoSuchThread {
            thread: 3,
            threads: 1
        }]
    );
}

#[test]
fn the_error_message_lists_every_problem() {
    let err = PipelineBuilder::<Rec>::new()
        .stage("a", Add(0))
        .capacity(0)
        .budget(Duration::ZERO)
        .build()
        .err()
        .expect("invalid");
    let msg = err.to_string();
    assert!(msg.contains("ring `input` has capacity 0"), "{msg}");
    assert!(msg.contains("stage `a` has a budget of 0 µs"), "{msg}");
}
