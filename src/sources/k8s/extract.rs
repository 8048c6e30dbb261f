//! Walks one Kubernetes object (or watch envelope) with the scanner and
//! collects the fields the decoder needs into [`Extracted`].
//!
//! Keys are matched wherever they appear in their object, in any order;
//! everything else is skipped (and validated). Because `kind` may come after
//! the fields, a field of the wrong JSON type that only matters for some
//! kinds is not an error yet: it is *deferred* against those kinds
//! ([`Extracted::defer`]) and reported only if the object turns out to be of
//! such a kind. Wrong types in `metadata` and in the envelope are reported
//! at once, since every kind needs them.

use crate::sources::k8s::error::{DecodeError, JsonType};
use crate::sources::k8s::scan::{unescape, Got, Scanner, Str};
use crate::sources::k8s::time::{parse_rfc3339, Timestamp};
use crate::sources::labels::LabelSet;
use crate::sources::record::Kind;

type Result<T> = core::result::Result<T, DecodeError>;

/// A set of kinds, one bit per `Kind as u8`.
pub(crate) type KindMask = u16;

const fn bit(k: Kind) -> KindMask {
    1 << k as u8
}

pub(crate) const POD: KindMask = bit(Kind::Pod);
pub(crate) const NODE: KindMask = bit(Kind::Node);
pub(crate) const DEPLOYMENT: KindMask = bit(Kind::Deployment);
pub(crate) const SERVICE: KindMask = bit(Kind::Service);
pub(crate) const CONFIG_MAP: KindMask = bit(Kind::ConfigMap);
pub(crate) const EVENT: KindMask = bit(Kind::Event);
pub(crate) const STATUS: KindMask = bit(Kind::Status);
/// Kinds whose `spec`/`status` are objects the decoder reads.
const SPEC_STATUS_KINDS: KindMask = POD | NODE | DEPLOYMENT | SERVICE;

/// Node condition types reported in the pressure bit set.
pub const PRESSURE_MEMORY: i64 = 1 << 0;
/// `DiskPressure`.
pub const PRESSURE_DISK: i64 = 1 << 1;
/// `PIDPressure`.
pub const PRESSURE_PID: i64 = 1 << 2;
/// `NetworkUnavailable`.
pub const PRESSURE_NETWORK_UNAVAILABLE: i64 = 1 << 3;
/// `OutOfDisk` (removed in Kubernetes 1.13; still in old objects).
pub const PRESSURE_OUT_OF_DISK: i64 = 1 << 4;

/// State of a `Ready` condition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Ready {
    /// No `Ready` condition.
    #[default]
    Absent,
    /// `status: "True"`.
    True,
    /// `status: "False"`.
    False,
    /// Any other status (`"Unknown"`, …).
    Other,
}

/// Everything the decoder may need from one object, as spans into the input.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Extracted {
    pub event_type: Option<Str>,
    pub object_seen: bool,

    pub kind: Option<Str>,
    pub name: Option<Str>,
    pub namespace: Option<Str>,
    pub resource_version: Option<Str>,
    pub creation: Option<Str>,
    pub last_write: Option<Timestamp>,
    pub deleting: bool,
    /// Whether `metadata.labels` was an object; its pairs are in the
    /// [`LabelScratch`] the walk was given.
    pub labels_seen: bool,
    pub initial_events_end: bool,

    pub spec_hash: Option<u64>,
    pub spec_replicas: Option<i64>,
    pub node_name: Option<Str>,
    pub unschedulable: Option<bool>,
    pub service_type: Option<Str>,

    pub status_text: Option<Str>,
    pub phase: Option<Str>,
    pub ready: Ready,
    pub pressure: i64,
    pub containers: u32,
    pub restarts_total: i64,
    pub restarts_max: i64,
    pub waiting: Option<Str>,
    pub waiting_rank: u8,
    pub status_replicas: Option<i64>,
    pub ready_replicas: Option<i64>,
    pub available_replicas: Option<i64>,
    pub updated_replicas: Option<i64>,

    pub reason: Option<Str>,
    pub type_field: Option<Str>,
    pub code: Option<i64>,
    pub count: Option<i64>,
    pub regarding_kind: Option<Str>,
    pub regarding_name: Option<Str>,
    pub regarding_namespace: Option<Str>,
    pub regarding_is_new_api: bool,
    pub series_last: Option<Str>,
    pub last_timestamp: Option<Str>,
    pub event_time: Option<Str>,
    pub first_timestamp: Option<Str>,

    pub data_hash: Option<u64>,
    pub binary_data_hash: Option<u64>,
    pub data_count: i64,
    pub immutable: Option<bool>,

    /// Kinds for which a deferred error is recorded.
    pub wrong_mask: KindMask,
    /// The first deferred error per kind (valid where `wrong_mask` is set).
    pub wrong: [Option<DecodeError>; Kind::COUNT],
}

impl Extracted {
    /// Records `err` against every kind in `mask` that has none yet.
    fn defer(&mut self, mask: KindMask, err: DecodeError) {
        let mut m = mask & !self.wrong_mask;
        self.wrong_mask |= m;
        while m != 0 {
            let k = m.trailing_zeros() as usize;
            self.wrong[k] = Some(err);
            m &= m - 1;
        }
    }

    /// The deferred error for `kind`, if any.
    pub fn deferred(&self, kind: Kind) -> Option<DecodeError> {
        if self.wrong_mask & bit(kind) != 0 {
            self.wrong[kind as usize]
        } else {
            None
        }
    }
}

#[inline]
fn wrong_type(
    field: &'static str,
    expected: JsonType,
    found: JsonType,
    offset: usize,
) -> DecodeError {
    DecodeError::WrongType {
        field,
        offset,
        expected,
        found,
    }
}

/// Converts a `Got` into a value, failing at once on a type mismatch.
#[inline]
fn now<T>(g: Got<T>, field: &'static str, expected: JsonType) -> Result<Option<T>> {
    match g {
        Got::Val(v) => Ok(Some(v)),
        Got::Null => Ok(None),
        Got::Wrong { found, offset } => Err(wrong_type(field, expected, found, offset)),
        Got::OutOfRange { offset } => Err(DecodeError::NumberOutOfRange { field, offset }),
    }
}

/// Converts a `Got` into a value, deferring a mismatch against `mask`.
#[inline]
fn later<T>(
    x: &mut Extracted,
    g: Got<T>,
    mask: KindMask,
    field: &'static str,
    expected: JsonType,
) -> Option<T> {
    match g {
        Got::Val(v) => Some(v),
        Got::Null => None,
        Got::Wrong { found, offset } => {
            x.defer(mask, wrong_type(field, expected, found, offset));
            None
        }
        Got::OutOfRange { offset } => {
            x.defer(mask, DecodeError::NumberOutOfRange { field, offset });
            None
        }
    }
}

/// Whether the JSON string `s` equals `lit` after unescaping.
#[inline]
pub(crate) fn text_eq(buf: &[u8], s: Str, lit: &[u8]) -> bool {
    if !s.escaped {
        return s.raw(buf) == lit;
    }
    let mut tmp = [0u8; 64];
    matches!(unescape(s.raw(buf), &mut tmp), Some(n) if &tmp[..n] == lit)
}

/// Severity of a container waiting reason; the highest wins.
fn waiting_rank(reason: &[u8]) -> u8 {
    match reason {
        b"CrashLoopBackOff" => 7,
        b"ImagePullBackOff" => 6,
        b"ErrImagePull" => 5,
        b"CreateContainerConfigError"
        | b"CreateContainerError"
        | b"InvalidImageName"
        | b"RunContainerError" => 4,
        b"ContainerCreating" | b"PodInitializing" => 1,
        _ => 3,
    }
}

/// Walks a watch envelope `{"type": …, "object": {…}}` (the scanner is at
/// its `{`, already entered by the caller).
pub(crate) fn envelope(
    sc: &mut Scanner<'_>,
    x: &mut Extracted,
    ls: &mut LabelScratch,
) -> Result<()> {
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        match key.bytes() {
            b"type" => x.event_type = now(sc.string_val()?, "type", JsonType::String)?,
            b"object" => match sc.object_start()? {
                Got::Val(()) => {
                    object_body(sc, x, ls)?;
                    x.object_seen = true;
                }
                Got::Null => {}
                Got::Wrong { found, offset } => {
                    return Err(wrong_type("object", JsonType::Object, found, offset))
                }
                Got::OutOfRange { offset } => {
                    return Err(wrong_type(
                        "object",
                        JsonType::Object,
                        JsonType::Integer,
                        offset,
                    ))
                }
            },
            _ => sc.skip_value()?,
        }
    }
    Ok(())
}

/// Walks the keys of an object (the scanner has consumed its `{`).
pub(crate) fn object_body(
    sc: &mut Scanner<'_>,
    x: &mut Extracted,
    ls: &mut LabelScratch,
) -> Result<()> {
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        match key.bytes() {
            b"kind" => x.kind = now(sc.string_val()?, "kind", JsonType::String)?,
            b"metadata" => metadata(sc, x, ls)?,
            b"spec" => spec(sc, x)?,
            b"status" => status(sc, x)?,
            b"reason" => {
                let g = sc.string_val()?;
                x.reason = later(x, g, EVENT | STATUS, "reason", JsonType::String);
            }
            b"type" => {
                let g = sc.string_val()?;
                x.type_field = later(x, g, EVENT, "type", JsonType::String);
            }
            b"code" => {
                let g = sc.int_val()?;
                x.code = later(x, g, STATUS, "code", JsonType::Integer);
            }
            b"count" => {
                let g = sc.int_val()?;
                let c = later(x, g, EVENT, "count", JsonType::Integer);
                max_count(x, c);
            }
            b"deprecatedCount" => {
                let g = sc.int_val()?;
                let c = later(x, g, EVENT, "deprecatedCount", JsonType::Integer);
                max_count(x, c);
            }
            b"series" => series(sc, x)?,
            b"regarding" => object_ref(sc, x, true)?,
            b"involvedObject" => object_ref(sc, x, false)?,
            b"eventTime" => {
                let g = sc.string_val()?;
                x.event_time = later(x, g, EVENT, "eventTime", JsonType::String);
            }
            b"lastTimestamp" | b"deprecatedLastTimestamp" => {
                let g = sc.string_val()?;
                if let Some(s) = later(x, g, EVENT, "lastTimestamp", JsonType::String) {
                    x.last_timestamp = Some(s);
                }
            }
            b"firstTimestamp" | b"deprecatedFirstTimestamp" => {
                let g = sc.string_val()?;
                if let Some(s) = later(x, g, EVENT, "firstTimestamp", JsonType::String) {
                    x.first_timestamp = Some(s);
                }
            }
            b"data" => x.data_hash = config_data(sc, x, "data")?,
            b"binaryData" => x.binary_data_hash = config_data(sc, x, "binaryData")?,
            b"immutable" => {
                let g = sc.bool_val()?;
                x.immutable = later(x, g, CONFIG_MAP, "immutable", JsonType::Bool);
            }
            _ => sc.skip_value()?,
        }
    }
    Ok(())
}

fn max_count(x: &mut Extracted, c: Option<i64>) {
    if let Some(c) = c {
        x.count = Some(x.count.map_or(c, |old| old.max(c)));
    }
}

fn metadata(sc: &mut Scanner<'_>, x: &mut Extracted, ls: &mut LabelScratch) -> Result<()> {
    if now(sc.object_start()?, "metadata", JsonType::Object)?.is_none() {
        return Ok(());
    }
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        match key.bytes() {
            b"name" => x.name = now(sc.string_val()?, "metadata.name", JsonType::String)?,
            b"namespace" => {
                x.namespace = now(sc.string_val()?, "metadata.namespace", JsonType::String)?
            }
            b"resourceVersion" => {
                x.resource_version = now(
                    sc.string_val()?,
                    "metadata.resourceVersion",
                    JsonType::String,
                )?
            }
            b"creationTimestamp" => {
                x.creation = now(
                    sc.string_val()?,
                    "metadata.creationTimestamp",
                    JsonType::String,
                )?
            }
            b"deletionTimestamp" => {
                x.deleting = now(
                    sc.string_val()?,
                    "metadata.deletionTimestamp",
                    JsonType::String,
                )?
                .is_some()
            }
            b"labels" => x.labels_seen = labels(sc, ls)?,
            b"annotations" => annotations(sc, x)?,
            b"managedFields" => managed_fields(sc, x)?,
            _ => sc.skip_value()?,
        }
    }
    Ok(())
}

/// Preallocated space the walk collects `metadata.labels` into (owned by
/// the decoder; see [`crate::sources::labels`]).
pub(crate) struct LabelScratch {
    /// The pairs of the last labels object walked.
    pub set: LabelSet,
    /// Unescape space for one key and one value (two halves).
    tmp: Box<[u8]>,
}

impl LabelScratch {
    /// Space for keys and values of up to `max_string_bytes` each after
    /// unescaping.
    pub fn new(max_string_bytes: usize) -> LabelScratch {
        LabelScratch {
            set: LabelSet::new(),
            tmp: vec![0u8; max_string_bytes.saturating_mul(2)].into_boxed_slice(),
        }
    }
}

/// Walks `metadata.labels` (an object of strings, or `null`) into
/// `ls.set`; returns whether it was an object. Keys and values are
/// unescaped through `ls.tmp`; one whose unescaped form does not fit
/// (longer than the decoder's `max_string_bytes`; never a valid Kubernetes
/// label) is taken as written. `null` values are skipped.
fn labels(sc: &mut Scanner<'_>, ls: &mut LabelScratch) -> Result<bool> {
    ls.set.clear();
    if now(sc.object_start()?, "metadata.labels", JsonType::Object)?.is_none() {
        return Ok(false);
    }
    let buf = sc.buf();
    let half = ls.tmp.len() / 2;
    let (key_tmp, value_tmp) = ls.tmp.split_at_mut(half);
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        let Some(v) = now(sc.string_val()?, "metadata.labels", JsonType::String)? else {
            continue;
        };
        let raw = key.raw();
        let k = unescaped(raw, raw.contains(&b'\\'), key_tmp);
        let v = unescaped(v.raw(buf), v.escaped, value_tmp);
        ls.set.push(k, v);
    }
    Ok(true)
}

/// `raw` unescaped into `tmp`, or `raw` itself when it has no escapes or
/// its unescaped form does not fit.
#[inline]
fn unescaped<'a>(raw: &'a [u8], escaped: bool, tmp: &'a mut [u8]) -> &'a [u8] {
    if !escaped {
        return raw;
    }
    match unescape(raw, tmp) {
        Some(n) => &tmp[..n],
        None => raw,
    }
}

fn annotations(sc: &mut Scanner<'_>, x: &mut Extracted) -> Result<()> {
    if now(sc.object_start()?, "metadata.annotations", JsonType::Object)?.is_none() {
        return Ok(());
    }
    let buf = sc.buf();
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        if key.bytes() == b"k8s.io/initial-events-end" {
            if let Got::Val(v) = sc.string_val()? {
                x.initial_events_end = text_eq(buf, v, b"true");
            }
        } else {
            sc.skip_value()?;
        }
    }
    Ok(())
}

/// Keeps the latest `managedFields[].time`: the last write to the object.
fn managed_fields(sc: &mut Scanner<'_>, x: &mut Extracted) -> Result<()> {
    if now(sc.array_start()?, "metadata.managedFields", JsonType::Array)?.is_none() {
        return Ok(());
    }
    let buf = sc.buf();
    let mut first = true;
    while sc.next_elem(&mut first)? {
        if now(
            sc.object_start()?,
            "metadata.managedFields",
            JsonType::Object,
        )?
        .is_none()
        {
            continue;
        }
        let mut kfirst = true;
        while let Some(key) = sc.next_key(&mut kfirst)? {
            if key.bytes() != b"time" {
                sc.skip_value()?;
                continue;
            }
            let Some(s) = now(
                sc.string_val()?,
                "metadata.managedFields.time",
                JsonType::String,
            )?
            else {
                continue;
            };
            let t = parse_rfc3339(s.raw(buf)).ok_or(DecodeError::BadTimestamp {
                field: "metadata.managedFields.time",
                offset: s.offset(),
            })?;
            match x.last_write {
                Some(old) if old.ns >= t.ns => {}
                _ => x.last_write = Some(t),
            }
        }
    }
    Ok(())
}

fn spec(sc: &mut Scanner<'_>, x: &mut Extracted) -> Result<()> {
    sc.start_hash();
    match sc.object_start()? {
        Got::Val(()) => {
            let mut first = true;
            while let Some(key) = sc.next_key(&mut first)? {
                match key.bytes() {
                    b"replicas" => {
                        let g = sc.int_val()?;
                        x.spec_replicas =
                            later(x, g, DEPLOYMENT, "spec.replicas", JsonType::Integer);
                    }
                    b"nodeName" => {
                        let g = sc.string_val()?;
                        x.node_name = later(x, g, POD, "spec.nodeName", JsonType::String);
                    }
                    b"unschedulable" => {
                        let g = sc.bool_val()?;
                        x.unschedulable = later(x, g, NODE, "spec.unschedulable", JsonType::Bool);
                    }
                    b"type" => {
                        let g = sc.string_val()?;
                        x.service_type = later(x, g, SERVICE, "spec.type", JsonType::String);
                    }
                    _ => sc.skip_value()?,
                }
            }
            x.spec_hash = Some(sc.finish_hash());
        }
        Got::Null => {
            sc.finish_hash();
        }
        Got::Wrong { found, offset } => {
            x.spec_hash = Some(sc.finish_hash());
            x.defer(
                SPEC_STATUS_KINDS,
                wrong_type("spec", JsonType::Object, found, offset),
            );
        }
        Got::OutOfRange { offset } => {
            x.spec_hash = Some(sc.finish_hash());
            x.defer(
                SPEC_STATUS_KINDS,
                wrong_type("spec", JsonType::Object, JsonType::Integer, offset),
            );
        }
    }
    Ok(())
}

fn status(sc: &mut Scanner<'_>, x: &mut Extracted) -> Result<()> {
    // `Status` objects carry `status` as a string ("Failure"); everything
    // else as an object.
    if sc.peek()? == b'"' {
        let s = sc.string()?;
        x.status_text = Some(s);
        x.defer(
            SPEC_STATUS_KINDS,
            wrong_type("status", JsonType::Object, JsonType::String, s.offset()),
        );
        return Ok(());
    }
    let (found, offset) = match sc.object_start()? {
        Got::Val(()) => (JsonType::Object, 0),
        Got::Null => return Ok(()),
        Got::Wrong { found, offset } => (found, offset),
        Got::OutOfRange { offset } => (JsonType::Integer, offset),
    };
    if found != JsonType::Object {
        x.defer(
            SPEC_STATUS_KINDS,
            wrong_type("status", JsonType::Object, found, offset),
        );
        x.defer(
            STATUS,
            wrong_type("status", JsonType::String, found, offset),
        );
        return Ok(());
    }
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        match key.bytes() {
            b"phase" => {
                let g = sc.string_val()?;
                x.phase = later(x, g, POD, "status.phase", JsonType::String);
            }
            b"conditions" => conditions(sc, x)?,
            b"containerStatuses" | b"initContainerStatuses" | b"ephemeralContainerStatuses" => {
                container_statuses(sc, x)?
            }
            b"replicas" => {
                let g = sc.int_val()?;
                x.status_replicas = later(x, g, DEPLOYMENT, "status.replicas", JsonType::Integer);
            }
            b"readyReplicas" => {
                let g = sc.int_val()?;
                x.ready_replicas =
                    later(x, g, DEPLOYMENT, "status.readyReplicas", JsonType::Integer);
            }
            b"availableReplicas" => {
                let g = sc.int_val()?;
                x.available_replicas = later(
                    x,
                    g,
                    DEPLOYMENT,
                    "status.availableReplicas",
                    JsonType::Integer,
                );
            }
            b"updatedReplicas" => {
                let g = sc.int_val()?;
                x.updated_replicas = later(
                    x,
                    g,
                    DEPLOYMENT,
                    "status.updatedReplicas",
                    JsonType::Integer,
                );
            }
            _ => sc.skip_value()?,
        }
    }
    Ok(())
}

fn conditions(sc: &mut Scanner<'_>, x: &mut Extracted) -> Result<()> {
    const MASK: KindMask = POD | NODE;
    let g = sc.array_start()?;
    if later(x, g, MASK, "status.conditions", JsonType::Array).is_none() {
        return Ok(());
    }
    let buf = sc.buf();
    let mut first = true;
    while sc.next_elem(&mut first)? {
        let g = sc.object_start()?;
        if later(x, g, MASK, "status.conditions[]", JsonType::Object).is_none() {
            continue;
        }
        let mut ctype = None;
        let mut cstatus = None;
        let mut kfirst = true;
        while let Some(key) = sc.next_key(&mut kfirst)? {
            match key.bytes() {
                // `kind` is the pre-v1 spelling of `type` (kubeclient fixtures).
                b"type" | b"kind" => {
                    let g = sc.string_val()?;
                    if let Some(s) = later(x, g, MASK, "status.conditions[].type", JsonType::String)
                    {
                        ctype = Some(s);
                    }
                }
                b"status" => {
                    let g = sc.string_val()?;
                    cstatus = later(x, g, MASK, "status.conditions[].status", JsonType::String);
                }
                _ => sc.skip_value()?,
            }
        }
        let Some(t) = ctype else { continue };
        let is_true = cstatus.is_some_and(|s| text_eq(buf, s, b"True"));
        let bit = if text_eq(buf, t, b"Ready") {
            x.ready = if is_true {
                Ready::True
            } else if cstatus.is_some_and(|s| text_eq(buf, s, b"False")) {
                Ready::False
            } else {
                Ready::Other
            };
            0
        } else if text_eq(buf, t, b"MemoryPressure") {
            PRESSURE_MEMORY
        } else if text_eq(buf, t, b"DiskPressure") {
            PRESSURE_DISK
        } else if text_eq(buf, t, b"PIDPressure") {
            PRESSURE_PID
        } else if text_eq(buf, t, b"NetworkUnavailable") {
            PRESSURE_NETWORK_UNAVAILABLE
        } else if text_eq(buf, t, b"OutOfDisk") {
            PRESSURE_OUT_OF_DISK
        } else {
            0
        };
        if is_true {
            x.pressure |= bit;
        }
    }
    Ok(())
}

fn container_statuses(sc: &mut Scanner<'_>, x: &mut Extracted) -> Result<()> {
    let g = sc.array_start()?;
    if later(x, g, POD, "status.containerStatuses", JsonType::Array).is_none() {
        return Ok(());
    }
    let buf = sc.buf();
    let mut first = true;
    while sc.next_elem(&mut first)? {
        let g = sc.object_start()?;
        if later(x, g, POD, "status.containerStatuses[]", JsonType::Object).is_none() {
            continue;
        }
        let mut restarts = 0i64;
        let mut kfirst = true;
        while let Some(key) = sc.next_key(&mut kfirst)? {
            match key.bytes() {
                b"restartCount" => {
                    let g = sc.int_val()?;
                    restarts = later(
                        x,
                        g,
                        POD,
                        "status.containerStatuses[].restartCount",
                        JsonType::Integer,
                    )
                    .unwrap_or(0);
                }
                b"state" => container_state(sc, x, buf)?,
                _ => sc.skip_value()?,
            }
        }
        x.restarts_max = if x.containers == 0 {
            restarts
        } else {
            x.restarts_max.max(restarts)
        };
        x.restarts_total = x.restarts_total.saturating_add(restarts);
        x.containers += 1;
    }
    Ok(())
}

fn container_state(sc: &mut Scanner<'_>, x: &mut Extracted, buf: &[u8]) -> Result<()> {
    let g = sc.object_start()?;
    if later(
        x,
        g,
        POD,
        "status.containerStatuses[].state",
        JsonType::Object,
    )
    .is_none()
    {
        return Ok(());
    }
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        if key.bytes() != b"waiting" {
            sc.skip_value()?;
            continue;
        }
        let g = sc.object_start()?;
        if later(
            x,
            g,
            POD,
            "status.containerStatuses[].state.waiting",
            JsonType::Object,
        )
        .is_none()
        {
            continue;
        }
        let mut wfirst = true;
        while let Some(key) = sc.next_key(&mut wfirst)? {
            if key.bytes() != b"reason" {
                sc.skip_value()?;
                continue;
            }
            let g = sc.string_val()?;
            let field = "status.containerStatuses[].state.waiting.reason";
            if let Some(r) = later(x, g, POD, field, JsonType::String) {
                let rank = if r.escaped {
                    3
                } else {
                    waiting_rank(r.raw(buf))
                };
                if rank > x.waiting_rank {
                    x.waiting = Some(r);
                    x.waiting_rank = rank;
                }
            }
        }
    }
    Ok(())
}

fn series(sc: &mut Scanner<'_>, x: &mut Extracted) -> Result<()> {
    let g = sc.object_start()?;
    if later(x, g, EVENT, "series", JsonType::Object).is_none() {
        return Ok(());
    }
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        match key.bytes() {
            b"count" => {
                let g = sc.int_val()?;
                let c = later(x, g, EVENT, "series.count", JsonType::Integer);
                max_count(x, c);
            }
            b"lastObservedTime" => {
                let g = sc.string_val()?;
                x.series_last = later(x, g, EVENT, "series.lastObservedTime", JsonType::String);
            }
            _ => sc.skip_value()?,
        }
    }
    Ok(())
}

/// `regarding` (events.k8s.io/v1) or `involvedObject` (core/v1); when both
/// are present `regarding` wins.
fn object_ref(sc: &mut Scanner<'_>, x: &mut Extracted, new_api: bool) -> Result<()> {
    let field = if new_api {
        "regarding"
    } else {
        "involvedObject"
    };
    let g = sc.object_start()?;
    if later(x, g, EVENT, field, JsonType::Object).is_none() {
        return Ok(());
    }
    let keep = new_api || !x.regarding_is_new_api;
    if keep {
        x.regarding_is_new_api = new_api;
        x.regarding_kind = None;
        x.regarding_name = None;
        x.regarding_namespace = None;
    }
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        let slot = match key.bytes() {
            b"kind" => 0,
            b"name" => 1,
            b"namespace" => 2,
            _ => {
                sc.skip_value()?;
                continue;
            }
        };
        let g = sc.string_val()?;
        let v = later(x, g, EVENT, field, JsonType::String);
        if keep {
            match slot {
                0 => x.regarding_kind = v,
                1 => x.regarding_name = v,
                _ => x.regarding_namespace = v,
            }
        }
    }
    Ok(())
}

/// ConfigMap `data`/`binaryData`: whitespace-insensitive hash of the object,
/// and its key count added to `data_count`.
fn config_data(
    sc: &mut Scanner<'_>,
    x: &mut Extracted,
    field: &'static str,
) -> Result<Option<u64>> {
    sc.start_hash();
    match sc.object_start()? {
        Got::Val(()) => {
            let mut first = true;
            while sc.next_key(&mut first)?.is_some() {
                x.data_count += 1;
                sc.skip_value()?;
            }
            Ok(Some(sc.finish_hash()))
        }
        Got::Null => {
            sc.finish_hash();
            Ok(None)
        }
        Got::Wrong { found, offset } => {
            sc.finish_hash();
            x.defer(
                CONFIG_MAP,
                wrong_type(field, JsonType::Object, found, offset),
            );
            Ok(None)
        }
        Got::OutOfRange { offset } => {
            sc.finish_hash();
            x.defer(
                CONFIG_MAP,
                wrong_type(field, JsonType::Object, JsonType::Integer, offset),
            );
            Ok(None)
        }
    }
}
