//! Host stages: the first stages run inside the host's pushes, the rest on pipeline
//! threads. The outputs equal a fully threaded pipeline's, in order; statistics name the
//! host as thread 0; held events come out when the input closes; failures in a host stage
//! fail the pipeline; shutdown with the input still open is an error, not a silent loss;
//! and warm pushes do not allocate.

mod common;

use common::{five_stages, inputs, Add, HoldAll, Mix, PanicAt, Rec};
use ebbflow::engine::{
    ConfigProblem, Pinning, PipelineBuilder, PipelineError, Placement, PushError, WaitStrategy,
};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// The engine tests' five stages, with small rings and room for every output.
macro_rules! chain {
    () => {
        five_stages().capacity(256).output_capacity(1 << 16)
    };
}

fn threaded_outputs(events: &[Rec]) -> Vec<Rec> {
    let (pipeline, mut input, mut output) = chain!().placement(Placement::Fused).build().unwrap();
    let mut got = Vec::new();
    for &e in events {
        input.push(e).unwrap();
    }
    drop(input);
    pipeline.finish(&mut output, |e| got.push(e)).unwrap();
    got
}

#[test]
fn outputs_equal_the_threaded_pipelines_for_every_split() {
    let events = inputs(20_000);
    let expected = threaded_outputs(&events);
    assert_eq!(expected.len(), 2 * (20_000 - 6_667));
    for host in 1..5 {
        let (pipeline, mut input, mut output) = chain!()
            .host_stages(host)
            .placement(Placement::Fused)
            .build()
            .unwrap();
        let mut got = Vec::new();
        // Uneven pushes: single events and slices longer than max_batch.
        for (i, part) in events.chunks(333).enumerate() {
            if i % 2 == 0 {
                input.push_slice(part).unwrap();
            } else {
                part.iter().for_each(|&e| input.push(e).unwrap());
            }
            while output.read_batch(|b| got.extend_from_slice(b)) > 0 {}
        }
        input.close();
        let stats = pipeline.finish(&mut output, |e| got.push(e)).unwrap();
        assert_eq!(got, expected, "host_stages({host}): outputs differ");
        assert_eq!(stats.threads.len(), 2);
        assert_eq!(stats.threads[0].name, "host");
        assert_eq!(stats.threads[0].stages, (0..host).collect::<Vec<_>>());
        assert!(stats.stages[..host].iter().all(|s| s.thread == 0));
        assert!(stats.stages[host..].iter().all(|s| s.thread == 1));
        assert_eq!(stats.stages[0].events_in, 20_000);
        assert_eq!(stats.stages[4].events_out, expected.len() as u64);
        // One ring after the host stages and the output ring; no input ring.
        assert_eq!(stats.rings.len(), 2);
        assert_eq!(stats.in_flight(), 0);
    }
}

#[test]
fn host_stages_combine_with_several_pinned_pipeline_threads() {
    let events = inputs(5_000);
    let expected = threaded_outputs(&events);
    let (pipeline, mut input, mut output) = chain!()
        .host_stages(1)
        .placement(Placement::Groups(vec![2, 2]))
        .pinning(Pinning::None)
        .thread_wait(1, WaitStrategy::Park)
        .build()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Ok(e) = output.recv_timeout(std::time::Duration::from_secs(20)) {
            got.push(e);
        }
        got
    });
    input.push_slice(&events).unwrap();
    drop(input);
    let stats = pipeline.shutdown().unwrap();
    assert_eq!(reader.join().unwrap(), expected);
    assert_eq!(stats.threads.len(), 3);
    // Thread 1 of the planned groups is thread 2 once the host is thread 0.
    assert_eq!(stats.threads[2].wait, WaitStrategy::Park);
    assert_eq!(stats.threads[2].stages, vec![3, 4]);
}

#[test]
fn closing_the_input_releases_what_host_stages_hold() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("hold", HoldAll(Vec::with_capacity(1000)))
        .stage("add", Add(5))
        .max_batch(16)
        .host_stages(1)
        .build()
        .unwrap();
    input.push_slice(&inputs(1000)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(output.pop(), None, "held events came out before the close");
    input.close();
    let mut got = Vec::new();
    let stats = pipeline.finish(&mut output, |e| got.push(e)).unwrap();
    assert_eq!(got.len(), 1000);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, r)| r.seq == i as u64 && r.value == Rec::new(i as u64).value.wrapping_add(5)));
    assert_eq!(stats.stages[1].events_in, 1000);
}

#[test]
fn shutdown_with_the_input_open_is_an_error_naming_the_host_stages() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("hold", HoldAll(Vec::with_capacity(10)))
        .stage("add", Add(5))
        .host_stages(1)
        .build()
        .unwrap();
    input.push_slice(&inputs(10)).unwrap();
    let err = pipeline.finish(&mut output, |_| {}).unwrap_err();
    assert_eq!(err, PipelineError::HostInputOpen { host_stages: 1 });
    // The input refuses further events instead of accepting them into a stopped pipeline.
    assert_eq!(
        input.push(Rec::new(99)),
        Err(PushError::Closed(Rec::new(99)))
    );
}

#[test]
fn a_panicking_host_stage_fails_the_pipeline_and_refuses_later_pushes() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("add", Add(1))
        .stage("panic-at-100", PanicAt(100))
        .stage("mix", Mix)
        .host_stages(2)
        .max_batch(32)
        .build()
        .unwrap();
    let err = input.push_slice(&inputs(200)).unwrap_err();
    assert_eq!(err, PushError::Closed(0));
    assert_eq!(input.push(Rec::new(0)), Err(PushError::Closed(Rec::new(0))));
    drop(input);
    match pipeline.finish(&mut output, |_| {}).unwrap_err() {
        PipelineError::StagePanicked {
            stage,
            index,
            message,
        } => {
            assert_eq!((stage.as_str(), index), ("panic-at-100", 1));
            assert!(message.contains("bad event 100"), "{message}");
        }
        other => panic!("expected StagePanicked, got {other:?}"),
    }
}

#[test]
fn every_stage_on_the_host_is_refused() {
    let err = PipelineBuilder::<Rec>::new()
        .stage("a", Add(1))
        .stage("b", Add(2))
        .host_stages(2)
        .build()
        .err()
        .expect("at least one stage must stay on a pipeline thread");
    assert_eq!(
        err.problems,
        vec![ConfigProblem::TooManyHostStages {
            host_stages: 2,
            stages: 2
        }]
    );
}

#[test]
fn host_stage_histograms_reach_the_statistics_when_published() {
    let (pipeline, mut input, mut output) = chain!().host_stages(2).build().unwrap();
    input.push_slice(&inputs(4096)).unwrap();
    while output.read_batch(|_| {}) > 0 {}
    assert!(input.publish_stats());
    let stats = pipeline.stats();
    assert!(
        stats.stages[0].latency.count > 0 && stats.stages[1].latency.count > 0,
        "host stages' histograms were not folded: {:?}",
        stats.stages
    );
    assert_eq!(stats.stale_threads, 0);
    input.close();
    pipeline.finish(&mut output, |_| {}).unwrap();
}

#[test]
fn warm_pushes_through_host_stages_do_not_allocate() {
    let (pipeline, mut input, mut output) = chain!().host_stages(3).build().unwrap();
    let events = inputs(4096);
    let mut n = 0u64;
    let mut run = |input: &mut ebbflow::engine::Input<Rec>| {
        for part in events.chunks(64) {
            input.push_slice(part).unwrap();
            while output.read_batch(|b| n += b.len() as u64) > 0 {}
        }
    };
    // Warm-up: histograms, clock calibration.
    run(&mut input);
    let ((), allocations) = counting_alloc::on_this_thread(|| run(&mut input));
    assert_eq!(allocations, 0, "pushes through host stages allocated");
    input.close();
    pipeline.finish(&mut output, |_| {}).unwrap();
}
