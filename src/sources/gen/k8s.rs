//! `enterprise_k8s_cluster`: pods, deployments, services, events and node
//! status of a 50-node cluster, as [`Record`]s or as watch-event JSON
//! lines the [`WatchDecoder`](crate::sources::k8s::WatchDecoder) reads.
//!
//! Two schedules share the virtual clock:
//!
//! - **changes** at `changes_per_min` (5000/min = one every 12 ms): 70 %
//!   pod updates, 10 % deployment updates, 5 % service updates, 15 %
//!   `Event`s about a pod;
//! - **node status** every `node_status_interval_ns` (5 s): one `Node`
//!   record per node (the scenario's "metrics every 5 s").
//!
//! Trouble (rates per million of the records it applies to):
//! `crashloop_per_million` of pod updates put the pod into
//! `CrashLoopBackOff` (not ready, restarts + 1; later updates of a
//! crash-looping pod recover it half of the time); `notready_per_million`
//! of node status records are `Ready = false` (with memory pressure);
//! `spec_edit_per_million` of pod, deployment and service updates change
//! the object's spec (a new `SpecHash`, a new image in the JSON form).
//! `delete_per_million` of pod updates delete the pod; the next update
//! picked for a deleted pod re-creates it (`Added`).
//!
//! Records carry the fields the watch decoder produces for the same kind
//! (see `docs/sources.md`), resource versions from one counter starting at
//! 1000, and names from tables built at construction (`node-NNN`,
//! `deploy-NNN`, `deploy-NNN-xxxxx` pods, `svc-NNN`). `Event` records are
//! keyed per regarded pod (`key_of("Event", ns, pod)`, name = the pod's),
//! like an aggregated event series, so their key count stays bounded.

use std::io::Write;

use crate::sources::gen::{Generator, Rng, DEFAULT_START_NS};
use crate::sources::hash::{fmix64, key_of};
use crate::sources::intern::{known, Interner, InternerConfig, Symbol};
use crate::sources::k8s::PRESSURE_MEMORY;
use crate::sources::labels::LabelSet;
use crate::sources::record::{FieldId, FieldValue, Kind, Op, Record};
use crate::sources::wallclock::IngestClock;

/// Shape, rate and trouble of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Seed.
    pub seed: u64,
    /// Nodes (≤ 1000).
    pub nodes: u32,
    /// Pods (≤ 100,000).
    pub pods: u32,
    /// Services (≤ 1000).
    pub services: u32,
    /// Deployments (1 ≤ n ≤ 1000); pod `i` belongs to deployment `i mod n`.
    pub deployments: u32,
    /// Namespaces (1 ≤ n ≤ 26).
    pub namespaces: u32,
    /// Nominal change rate on the virtual clock.
    pub changes_per_min: u32,
    /// Node status interval on the virtual clock.
    pub node_status_interval_ns: i64,
    /// Pod updates per million that enter CrashLoopBackOff.
    pub crashloop_per_million: u32,
    /// Node status records per million that are NotReady.
    pub notready_per_million: u32,
    /// Pod/deployment/service updates per million that edit the spec.
    pub spec_edit_per_million: u32,
    /// Pod updates per million that delete the pod.
    pub delete_per_million: u32,
    /// Virtual clock start, ns since the Unix epoch.
    pub start_ns: i64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            seed: 1,
            nodes: 50,
            pods: 2000,
            services: 150,
            deployments: 80,
            namespaces: 5,
            changes_per_min: 5000,
            node_status_interval_ns: 5_000_000_000,
            crashloop_per_million: 20_000,
            notready_per_million: 10_000,
            spec_edit_per_million: 30_000,
            delete_per_million: 5_000,
            start_ns: DEFAULT_START_NS,
        }
    }
}

/// Counters of a [`ClusterGenerator`] (what trouble it injected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Records generated.
    pub records: u64,
    /// Pod update records (Added/Modified/Deleted).
    pub pod_updates: u64,
    /// Pod updates that entered CrashLoopBackOff.
    pub crashloops: u64,
    /// Node status records.
    pub node_status: u64,
    /// Of which NotReady.
    pub notready: u64,
    /// Pod, deployment and service updates.
    pub spec_candidates: u64,
    /// Of which spec edits.
    pub spec_edits: u64,
    /// Pod deletions.
    pub deletions: u64,
}

const NAMESPACES: [&str; 5] = ["default", "payments", "frontend", "data", "monitoring"];

#[derive(Clone, Copy, Debug, Default)]
struct Pod {
    name: Symbol,
    ns: u8,
    node: u16,
    restarts: i64,
    crashloop: bool,
    deleted: bool,
    spec: u64,
    labels: Symbol,
}

#[derive(Clone, Copy, Debug, Default)]
struct Deployment {
    name: Symbol,
    ns: u8,
    replicas: i64,
    ready: i64,
    spec: u64,
    labels: Symbol,
}

#[derive(Clone, Copy, Debug, Default)]
struct Service {
    name: Symbol,
    ns: u8,
    ty: Symbol,
    spec: u64,
    labels: Symbol,
}

#[derive(Clone, Copy, Debug, Default)]
struct Node {
    name: Symbol,
    spec: u64,
    labels: Symbol,
}

/// The cluster generator. See the [module docs](self).
#[derive(Debug)]
pub struct ClusterGenerator {
    cfg: ClusterConfig,
    rng: Rng,
    interner: Interner,
    ns: Vec<Symbol>,
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    pod_kind: Symbol,
    reasons: [Symbol; 4],
    next_change_ns: i64,
    next_status_ns: i64,
    status_cursor: u32,
    change_interval_ns: i64,
    rv: u64,
    seq: u64,
    clock: IngestClock,
    stats: ClusterStats,
}

/// Replaces the contents of `s` with `args` (construction only).
fn fmt(s: &mut String, args: core::fmt::Arguments<'_>) {
    use core::fmt::Write as _;
    s.clear();
    let _ = s.write_fmt(args);
}

fn name_hash(seed: u64, i: u64) -> u64 {
    fmix64(seed ^ fmix64(i.wrapping_add(0x5151)))
}

impl ClusterGenerator {
    /// A generator: builds and interns every name now (≈ 2,300 strings
    /// for the default shape).
    pub fn new(mut cfg: ClusterConfig) -> ClusterGenerator {
        cfg.nodes = cfg.nodes.clamp(1, 1000);
        cfg.pods = cfg.pods.min(100_000);
        cfg.services = cfg.services.min(1000);
        cfg.deployments = cfg.deployments.clamp(1, 1000);
        cfg.namespaces = cfg.namespaces.clamp(1, 26);
        cfg.changes_per_min = cfg.changes_per_min.max(1);
        cfg.node_status_interval_ns = cfg.node_status_interval_ns.max(1);
        let mut rng = Rng::new(cfg.seed);
        // Names of everything, plus one label set per node, service and
        // deployment and one per deployment's pods.
        let entries = cfg.pods + 2 * cfg.nodes + 2 * cfg.services + 3 * cfg.deployments + 64;
        let mut interner = Interner::new(InternerConfig {
            max_entries: entries,
            max_bytes: 96 * entries as usize,
        });
        let mut set = LabelSet::new();
        let mut labels = |interner: &mut Interner, pairs: &[(&str, &str)]| {
            set.clear();
            for (k, v) in pairs {
                set.push(k.as_bytes(), v.as_bytes());
            }
            interner.intern(set.canonical().unwrap_or(""))
        };
        let mut t = String::with_capacity(64);
        let mut u = String::with_capacity(64);
        let mut s = String::with_capacity(64);
        let mut name = |interner: &mut Interner, args: core::fmt::Arguments<'_>| {
            use core::fmt::Write as _;
            s.clear();
            let _ = s.write_fmt(args);
            interner.intern(&s)
        };
        let ns: Vec<Symbol> = (0..cfg.namespaces as usize)
            .map(|i| match NAMESPACES.get(i) {
                Some(n) => interner.intern(n),
                None => name(
                    &mut interner,
                    format_args!("ns-{}", (b'a' + i as u8) as char),
                ),
            })
            .collect();
        let nodes = (0..cfg.nodes)
            .map(|i| {
                let name = name(&mut interner, format_args!("node-{i:03}"));
                let spec = rng.next_u64();
                let r = rng.next_u64();
                fmt(&mut t, format_args!("node-{i:03}"));
                fmt(
                    &mut u,
                    format_args!("zone-{}", (b'a' + (r % 3) as u8) as char),
                );
                Node {
                    name,
                    spec,
                    labels: labels(
                        &mut interner,
                        &[
                            ("topology.kubernetes.io/zone", &u),
                            ("kubernetes.io/hostname", &t),
                        ],
                    ),
                }
            })
            .collect();
        let mut pod_labels = Vec::with_capacity(cfg.deployments as usize);
        let mut deployments: Vec<Deployment> = (0..cfg.deployments)
            .map(|i| {
                let name = name(&mut interner, format_args!("deploy-{i:03}"));
                let spec = rng.next_u64();
                let r = rng.next_u64();
                fmt(&mut t, format_args!("deploy-{i:03}"));
                fmt(&mut u, format_args!("team-{}", r % 8));
                let team = u.clone();
                fmt(&mut u, format_args!("{:08x}", (r >> 8) as u32));
                pod_labels.push(labels(
                    &mut interner,
                    &[("team", &team), ("pod-template-hash", &u), ("app", &t)],
                ));
                Deployment {
                    name,
                    ns: (i % cfg.namespaces) as u8,
                    replicas: 0,
                    ready: 0,
                    spec,
                    labels: labels(&mut interner, &[("team", &team), ("app", &t)]),
                }
            })
            .collect();
        let pods = (0..cfg.pods)
            .map(|i| {
                let d = (i % cfg.deployments) as usize;
                deployments[d].replicas += 1;
                deployments[d].ready += 1;
                let suffix = name_hash(cfg.seed, u64::from(i)) & 0xf_ffff;
                Pod {
                    name: name(&mut interner, format_args!("deploy-{d:03}-{suffix:05x}")),
                    ns: deployments[d].ns,
                    node: rng.below(u64::from(cfg.nodes)) as u16,
                    restarts: 0,
                    crashloop: false,
                    deleted: false,
                    spec: deployments[d].spec,
                    labels: pod_labels[d],
                }
            })
            .collect();
        let types = [known::CLUSTER_IP, known::NODE_PORT, known::LOAD_BALANCER];
        let services = (0..cfg.services)
            .map(|i| {
                let name = name(&mut interner, format_args!("svc-{i:03}"));
                let spec = rng.next_u64();
                let r = rng.next_u64();
                fmt(&mut t, format_args!("svc-{i:03}"));
                let tier = ["frontend", "backend", "data"][(r % 3) as usize];
                Service {
                    name,
                    ns: (i % cfg.namespaces) as u8,
                    ty: types[(i % 10).min(2) as usize],
                    spec,
                    labels: labels(&mut interner, &[("tier", tier), ("app", &t)]),
                }
            })
            .collect();
        let pod_kind = interner.intern("Pod");
        let reasons = [
            interner.intern("BackOff"),
            interner.intern("Pulled"),
            interner.intern("Started"),
            interner.intern("Scheduled"),
        ];
        let change_interval_ns = (60_000_000_000 / i64::from(cfg.changes_per_min)).max(1);
        ClusterGenerator {
            rng,
            interner,
            ns,
            nodes,
            pods,
            deployments,
            services,
            pod_kind,
            reasons,
            next_change_ns: cfg.start_ns + change_interval_ns,
            next_status_ns: cfg.start_ns,
            status_cursor: 0,
            change_interval_ns,
            rv: 1000,
            seq: 0,
            clock: IngestClock::wall(),
            stats: ClusterStats::default(),
            cfg,
        }
    }

    /// Replaces the ingest clock of the records (default: wall time from a
    /// `SystemTime` anchor extrapolated with the TSC, see
    /// [`wallclock`](crate::sources::wallclock)); `clock` is then called
    /// once per record.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = IngestClock::custom(clock);
        self
    }

    /// The configuration (after clamping).
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &ClusterStats {
        &self.stats
    }

    /// The interner the records' symbols refer to.
    pub fn interner(&self) -> &Interner {
        &self.interner
    }

    /// The interner, to add strings before the pipeline starts (rule strings, for
    /// example). The generator's symbols stay valid.
    pub fn interner_mut(&mut self) -> &mut Interner {
        &mut self.interner
    }

    fn text(&self, s: Symbol) -> &str {
        self.interner.resolve(s).unwrap_or("")
    }

    fn base(&mut self, kind: Kind, op: Op, ns: Symbol, name: Symbol, now: i64) -> Record {
        let mut r = Record::new(kind, op);
        r.key = key_of(
            kind.name().as_bytes(),
            self.text(ns).as_bytes(),
            self.text(name).as_bytes(),
        );
        r.namespace = ns;
        r.name = name;
        r.source_ns = now;
        self.rv += 1;
        r.resource_version = self.rv;
        r.seq = self.seq;
        self.seq += 1;
        r.ingest_ns = self.clock.now();
        r
    }

    fn node_status(&mut self, now: i64) -> Record {
        let i = self.status_cursor as usize;
        self.status_cursor = (self.status_cursor + 1) % self.cfg.nodes;
        if self.status_cursor == 0 {
            self.next_status_ns += self.cfg.node_status_interval_ns;
        }
        let notready = self.rng.chance(self.cfg.notready_per_million);
        let n = self.nodes[i];
        let mut r = self.base(Kind::Node, Op::Modified, Symbol::EMPTY, n.name, now);
        r.push(FieldId::Ready, FieldValue::Bool(!notready));
        r.push(
            FieldId::NodePressure,
            FieldValue::I64(if notready { PRESSURE_MEMORY } else { 0 }),
        );
        r.push(FieldId::Unschedulable, FieldValue::Bool(false));
        r.push(FieldId::SpecHash, FieldValue::I64(n.spec as i64));
        r.push(FieldId::Labels, FieldValue::Sym(n.labels));
        self.stats.node_status += 1;
        self.stats.notready += u64::from(notready);
        r
    }

    fn spec_edit(&mut self) -> bool {
        self.stats.spec_candidates += 1;
        let e = self.rng.chance(self.cfg.spec_edit_per_million);
        self.stats.spec_edits += u64::from(e);
        e
    }

    fn pod(&mut self, now: i64) -> Record {
        let i = self.rng.below(u64::from(self.cfg.pods.max(1))) as usize;
        let op = if self.pods[i].deleted {
            let p = &mut self.pods[i];
            p.deleted = false;
            p.restarts = 0;
            p.crashloop = false;
            Op::Added
        } else if self.rng.chance(self.cfg.delete_per_million) {
            self.pods[i].deleted = true;
            self.stats.deletions += 1;
            Op::Deleted
        } else {
            Op::Modified
        };
        if op == Op::Modified {
            if self.rng.chance(self.cfg.crashloop_per_million) {
                let p = &mut self.pods[i];
                p.crashloop = true;
                p.restarts += 1;
                self.stats.crashloops += 1;
            } else if self.pods[i].crashloop && self.rng.next_u64() & 1 == 0 {
                self.pods[i].crashloop = false;
            }
        }
        if self.spec_edit() {
            self.pods[i].spec = self.rng.next_u64();
        }
        self.stats.pod_updates += 1;
        let p = self.pods[i];
        let ns = self.ns[p.ns as usize];
        let mut r = self.base(Kind::Pod, op, ns, p.name, now);
        r.push(FieldId::Phase, FieldValue::Sym(known::RUNNING));
        r.push(FieldId::Ready, FieldValue::Bool(!p.crashloop));
        r.push(FieldId::RestartsTotal, FieldValue::I64(p.restarts));
        r.push(FieldId::RestartsMax, FieldValue::I64(p.restarts));
        if p.crashloop {
            r.push(
                FieldId::WaitingReason,
                FieldValue::Sym(known::CRASH_LOOP_BACK_OFF),
            );
        }
        r.push(
            FieldId::NodeName,
            FieldValue::Sym(self.nodes[p.node as usize].name),
        );
        r.push(FieldId::SpecHash, FieldValue::I64(p.spec as i64));
        r.push(FieldId::Labels, FieldValue::Sym(p.labels));
        r
    }

    fn deployment(&mut self, now: i64) -> Record {
        let i = self.rng.below(u64::from(self.cfg.deployments)) as usize;
        let edited = self.spec_edit();
        if edited {
            self.deployments[i].spec = self.rng.next_u64();
        }
        let d = self.deployments[i];
        let ns = self.ns[d.ns as usize];
        let mut r = self.base(Kind::Deployment, Op::Modified, ns, d.name, now);
        r.push(FieldId::ReplicasDesired, FieldValue::I64(d.replicas));
        r.push(FieldId::ReplicasCurrent, FieldValue::I64(d.replicas));
        r.push(FieldId::ReplicasReady, FieldValue::I64(d.ready));
        r.push(FieldId::ReplicasAvailable, FieldValue::I64(d.ready));
        r.push(
            FieldId::ReplicasUpdated,
            FieldValue::I64(if edited { 0 } else { d.replicas }),
        );
        r.push(FieldId::SpecHash, FieldValue::I64(d.spec as i64));
        r.push(FieldId::Labels, FieldValue::Sym(d.labels));
        r
    }

    fn service(&mut self, now: i64) -> Record {
        let i = self.rng.below(u64::from(self.cfg.services.max(1))) as usize;
        if self.spec_edit() {
            self.services[i].spec = self.rng.next_u64();
        }
        let s = self.services[i];
        let ns = self.ns[s.ns as usize];
        let mut r = self.base(Kind::Service, Op::Modified, ns, s.name, now);
        r.push(FieldId::ServiceType, FieldValue::Sym(s.ty));
        r.push(FieldId::SpecHash, FieldValue::I64(s.spec as i64));
        r.push(FieldId::Labels, FieldValue::Sym(s.labels));
        r
    }

    fn event(&mut self, now: i64) -> Record {
        let i = self.rng.below(u64::from(self.cfg.pods.max(1))) as usize;
        let p = self.pods[i];
        let ns = self.ns[p.ns as usize];
        let (reason, ty) = if p.crashloop {
            (self.reasons[0], known::WARNING)
        } else {
            (self.reasons[1 + self.rng.below(3) as usize], known::NORMAL)
        };
        let pod_key = key_of(
            b"Pod",
            self.text(ns).as_bytes(),
            self.text(p.name).as_bytes(),
        );
        let count = 1 + if p.crashloop { p.restarts } else { 0 };
        let mut r = self.base(Kind::Event, Op::Added, ns, p.name, now);
        r.push(FieldId::Reason, FieldValue::Sym(reason));
        r.push(FieldId::EventType, FieldValue::Sym(ty));
        r.push(FieldId::RegardingKind, FieldValue::Sym(self.pod_kind));
        r.push(FieldId::RegardingName, FieldValue::Sym(p.name));
        r.push(FieldId::RegardingKey, FieldValue::I64(pod_key as i64));
        r.push(FieldId::Count, FieldValue::I64(count));
        r
    }

    /// Writes `rec` (a record of this generator) as one watch-event JSON
    /// line with `\n`, in the shape the API server writes (only the fields
    /// the decoder reads). Decoding it gives the same kind, op, namespace,
    /// name, resource version and fields, except `SpecHash`, which the
    /// decoder computes from the JSON (a spec edit changes both); `Labels`
    /// symbols are of different interners but resolve to the same text
    /// (the labels are written in reverse canonical order).
    /// Allocates only if `out` has to grow.
    pub fn write_watch_json(&self, rec: &Record, out: &mut Vec<u8>) -> std::io::Result<()> {
        let ns = self.text(rec.namespace);
        let name = self.text(rec.name);
        let ts = Rfc3339(rec.source_ns);
        let i64f = |id| rec.get(id).and_then(FieldValue::as_i64).unwrap_or(0);
        let boolf = |id| rec.get(id).and_then(FieldValue::as_bool).unwrap_or(false);
        let symf = |id| {
            rec.get(id)
                .and_then(FieldValue::as_sym)
                .map_or("", |s| self.text(s))
        };
        let spec = i64f(FieldId::SpecHash) as u64;
        let labels = symf(FieldId::Labels);
        write!(
            out,
            r#"{{"type":"{}","object":{{"kind":"{}","apiVersion":"{}","metadata":{{"name":"{}","#,
            rec.op.name(),
            rec.kind.name(),
            match rec.kind {
                Kind::Deployment => "apps/v1",
                _ => "v1",
            },
            name
        )?;
        if !ns.is_empty() {
            write!(out, r#""namespace":"{ns}","#)?;
        }
        write!(
            out,
            r#""resourceVersion":"{}","creationTimestamp":"{ts}","labels":{{"#,
            rec.resource_version
        )?;
        if !labels.is_empty() {
            for (i, pair) in labels.rsplit(',').enumerate() {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let sep = if i == 0 { "" } else { "," };
                write!(out, r#"{sep}"{k}":"{v}""#)?;
            }
        }
        out.extend_from_slice(b"}},");
        let ready = |b: bool| if b { "True" } else { "False" };
        match rec.kind {
            Kind::Pod => {
                let restarts = i64f(FieldId::RestartsTotal);
                let waiting = symf(FieldId::WaitingReason);
                write!(
                    out,
                    r#""spec":{{"nodeName":"{}","containers":[{{"name":"app","image":"registry.local/app:{spec:016x}"}}]}},"status":{{"phase":"{}","conditions":[{{"type":"Ready","status":"{}"}}],"containerStatuses":[{{"name":"app","restartCount":{restarts},"state":"#,
                    symf(FieldId::NodeName),
                    symf(FieldId::Phase),
                    ready(boolf(FieldId::Ready)),
                )?;
                if waiting.is_empty() {
                    write!(out, r#"{{"running":{{"startedAt":"{ts}"}}}}"#)?;
                } else {
                    write!(out, r#"{{"waiting":{{"reason":"{waiting}"}}}}"#)?;
                }
                out.extend_from_slice(b"}]}}}\n");
            }
            Kind::Node => {
                let mem = i64f(FieldId::NodePressure) & PRESSURE_MEMORY != 0;
                writeln!(
                    out,
                    r#""spec":{{"podCIDR":"10.{}.0.0/24","unschedulable":false}},"status":{{"conditions":[{{"type":"Ready","status":"{}"}},{{"type":"MemoryPressure","status":"{}"}}]}}}}}}"#,
                    spec % 256,
                    ready(boolf(FieldId::Ready)),
                    ready(mem),
                )?;
            }
            Kind::Deployment => writeln!(
                out,
                r#""spec":{{"replicas":{},"template":{{"spec":{{"containers":[{{"name":"app","image":"registry.local/app:{spec:016x}"}}]}}}}}},"status":{{"replicas":{},"readyReplicas":{},"availableReplicas":{},"updatedReplicas":{}}}}}}}"#,
                i64f(FieldId::ReplicasDesired),
                i64f(FieldId::ReplicasCurrent),
                i64f(FieldId::ReplicasReady),
                i64f(FieldId::ReplicasAvailable),
                i64f(FieldId::ReplicasUpdated),
            )?,
            Kind::Service => writeln!(
                out,
                r#""spec":{{"type":"{}","selector":{{"app":"{spec:016x}"}}}}}}}}"#,
                symf(FieldId::ServiceType)
            )?,
            _ => writeln!(
                out,
                r#""reason":"{}","type":"{}","count":{},"lastTimestamp":"{ts}","involvedObject":{{"kind":"{}","namespace":"{ns}","name":"{}"}}}}}}"#,
                symf(FieldId::Reason),
                symf(FieldId::EventType),
                i64f(FieldId::Count),
                symf(FieldId::RegardingKind),
                symf(FieldId::RegardingName),
            )?,
        }
        Ok(())
    }
}

impl Generator for ClusterGenerator {
    fn next_record(&mut self) -> Record {
        self.stats.records += 1;
        if self.next_status_ns <= self.next_change_ns {
            let now = self.next_status_ns;
            return self.node_status(now);
        }
        let now = self.next_change_ns;
        self.next_change_ns += self.change_interval_ns;
        match self.rng.below(100) {
            0..=69 => self.pod(now),
            70..=79 => self.deployment(now),
            80..=84 => self.service(now),
            _ => self.event(now),
        }
    }
}

/// Formats ns since the epoch as RFC 3339 UTC with nanoseconds, without
/// allocating.
struct Rfc3339(i64);

impl core::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Civil from days (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}
