//! The engine [`Stage`]s of the reverse flow that wrap the stage engines built in their
//! own modules: [`ReactorStage`], [`BitActorStage`], [`SchemaStage`], [`TurtleStage`] and
//! [`TyperStage`]. (Resources, distribution and notify are stages in their own modules.)

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::engine::{Clock, Emitter, InPlace, Stage};
use crate::flow::bitactor::BitActor;
use crate::flow::item::{ChangeKind, Item, What};
use crate::flow::notify::Shared;
use crate::flow::reactor::{Reactor, MAX_OUTPUTS_PER_RUN};
use crate::flow::schema::{turtle, typer, Schema, SchemaInferer};

/// Reactor runs released per `end_of_batch` (each emits at most
/// [`MAX_OUTPUTS_PER_RUN`] items).
pub const REACTOR_POLL_RUNS: usize = 4;

/// The reactor stage: routes each record through its kind's step chain; releases due
/// retries after every batch.
pub struct ReactorStage {
    reactor: Reactor,
    clock: &'static Clock,
    /// Where the count of parked records is published, if anywhere.
    shared: Option<Arc<Shared>>,
}

impl ReactorStage {
    /// Wraps a configured reactor.
    pub fn new(reactor: Reactor) -> ReactorStage {
        ReactorStage {
            reactor,
            clock: Clock::get(),
            shared: None,
        }
    }

    /// Publishes the number of records the reactor holds to
    /// [`Shared::reactor_parked`] after every batch (one relaxed store).
    pub fn publishing_to(mut self, shared: Arc<Shared>) -> ReactorStage {
        self.shared = Some(shared);
        self
    }

    /// Stores the parked count where the host can read it.
    #[inline]
    fn publish_parked(&self) {
        if let Some(s) = &self.shared {
            s.reactor_parked
                .store(self.reactor.parked() as u64, Ordering::Relaxed);
        }
    }
}

impl Stage for ReactorStage {
    type In = Item;
    type Out = Item;
    const MAX_FANOUT: usize = MAX_OUTPUTS_PER_RUN * REACTOR_POLL_RUNS;

    #[inline]
    fn process(&mut self, item: Item, out: &mut Emitter<Item>) {
        let now = self.clock.ticks();
        self.reactor.process(item, now, &mut |i| out.emit(i));
    }

    #[inline]
    fn process_batch(&mut self, inputs: &[Item], out: &mut Emitter<Item>) {
        let now = self.clock.ticks();
        for &item in inputs {
            self.reactor.process(item, now, &mut |i| out.emit(i));
        }
    }

    const IN_PLACE: bool = true;

    /// Runs the chains where the items lie. From the first item the reactor takes (a
    /// retry, a failure, a record queued behind its key), that item's lifecycle events
    /// and every later item go to `after` instead, so the order is the copying path's.
    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        after: &mut Emitter<Item>,
    ) -> bool {
        let now = self.clock.ticks();
        let items = batch.as_mut_slice();
        let n = items.len();
        let mut emit = |i: Item| after.emit(i);
        for i in 0..n {
            if !self.reactor.process_in_place(&mut items[i], now, &mut emit) {
                for &item in &items[i + 1..] {
                    self.reactor.process(item, now, &mut emit);
                }
                batch.truncate(i);
                return true;
            }
        }
        true
    }

    #[inline]
    fn end_of_batch(&mut self, out: &mut Emitter<Item>) {
        if self.reactor.parked() > 0 {
            let now = self.clock.ticks();
            self.reactor
                .poll(now, REACTOR_POLL_RUNS, &mut |i| out.emit(i));
        }
        self.publish_parked();
    }

    /// Retries whose backoff has passed run while no record arrives too.
    #[inline]
    fn on_idle(&mut self, out: &mut Emitter<Item>) {
        if self.reactor.parked() > 0 {
            self.end_of_batch(out);
        }
    }

    /// At shutdown, parked retries run at once (their backoff is cut short) so that no
    /// accepted record is left behind: each completes, retries again or fails with its
    /// compensations, and its outcome is published.
    fn on_close(&mut self, out: &mut Emitter<Item>) -> bool {
        self.reactor
            .poll(u64::MAX, REACTOR_POLL_RUNS, &mut |i| out.emit(i));
        self.publish_parked();
        self.reactor.parked() > 0
    }
}

/// The bitactor stage: evaluates the compiled rules over each batch in place and applies
/// rule commands in stream order.
pub struct BitActorStage {
    actor: BitActor,
}

impl BitActorStage {
    /// Wraps a compiled bitactor.
    pub fn new(actor: BitActor) -> BitActorStage {
        BitActorStage { actor }
    }

    /// The bitactor.
    pub fn actor(&self) -> &BitActor {
        &self.actor
    }
}

impl Stage for BitActorStage {
    type In = Item;
    type Out = Item;

    #[inline]
    fn process(&mut self, item: Item, out: &mut Emitter<Item>) {
        self.process_batch(core::slice::from_ref(&item), out);
    }

    #[inline]
    fn process_batch(&mut self, inputs: &[Item], out: &mut Emitter<Item>) {
        // One copy into the emitter, then rules and commands in place, in stream order
        // (records after a command are evaluated under the changed rules).
        let batch = out.emit_slice(inputs);
        self.actor.process(batch);
    }

    const IN_PLACE: bool = true;

    /// Rules and commands where the items lie (no copy at all).
    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        _out: &mut Emitter<Item>,
    ) -> bool {
        self.actor.process(batch.as_mut_slice());
        true
    }
}

/// The schema stage: folds every change into the inferred schema and stamps the schema
/// version on each item. When the schema grows it publishes the new [`Schema`] (a
/// heap-free value) to the turtle and typer stages through [`Shared`].
pub struct SchemaStage {
    inferer: SchemaInferer,
    shared: Arc<Shared>,
}

impl SchemaStage {
    /// A schema stage starting from the empty schema.
    pub fn new(shared: Arc<Shared>) -> SchemaStage {
        SchemaStage {
            inferer: SchemaInferer::new(),
            shared,
        }
    }
}

/// A schema version as carried in [`ItemHeader::schema_version`](crate::flow::ItemHeader).
#[inline]
fn short_version(v: u64) -> u32 {
    v.min(u64::from(u32::MAX)) as u32
}

impl SchemaStage {
    /// Folds `item` into the schema (publishing a grown schema) and stamps the version.
    #[inline]
    fn observe(&mut self, item: &mut Item) {
        if item.header.what == What::Record
            && item.header.change != ChangeKind::Deleted
            && self.inferer.observe(&item.record).is_some()
        {
            let schema = self.inferer.schema().clone();
            let mut slot = self
                .shared
                .schema_model
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let previous = slot.replace(schema);
            drop(slot);
            let mut prev_slot = self
                .shared
                .schema_previous
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(p) = previous {
                *prev_slot = p;
            }
        }
        item.header.schema_version = short_version(self.inferer.version());
    }
}

impl Stage for SchemaStage {
    type In = Item;
    type Out = Item;
    const IN_PLACE: bool = true;

    #[inline]
    fn process(&mut self, mut item: Item, out: &mut Emitter<Item>) {
        self.observe(&mut item);
        out.emit(item);
    }

    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        _out: &mut Emitter<Item>,
    ) -> bool {
        batch
            .as_mut_slice()
            .iter_mut()
            .for_each(|i| self.observe(i));
        true
    }
}

/// What a stage does when an item carries a schema version it has not seen.
pub trait OnSchemaGrowth: Send + 'static {
    /// Regenerates this stage's artifacts for `schema` (`previous` is the version before).
    fn regenerate(&mut self, schema: &Schema, previous: &Schema, shared: &Shared);
}

/// A stage that passes items on and, when one carries a newer schema version, hands the
/// new schema to its [`OnSchemaGrowth`] part (the turtle and typer stages). Between
/// schema changes it costs one comparison per item.
pub struct SchemaArtifactStage<G> {
    seen: u32,
    shared: Arc<Shared>,
    part: G,
}

impl<G: OnSchemaGrowth> SchemaArtifactStage<G> {
    /// Regenerates the artifacts when `item` carries a newer schema version.
    #[inline]
    fn observe(&mut self, item: &Item) {
        if item.header.schema_version > self.seen {
            self.seen = item.header.schema_version;
            if let Some(schema) = current_schema(&self.shared) {
                let previous = self
                    .shared
                    .schema_previous
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                self.part.regenerate(&schema, &previous, &self.shared);
            }
        }
    }
}

impl<G: OnSchemaGrowth> Stage for SchemaArtifactStage<G> {
    type In = Item;
    type Out = Item;
    const IN_PLACE: bool = true;

    #[inline]
    fn process(&mut self, item: Item, out: &mut Emitter<Item>) {
        self.observe(&item);
        out.emit(item);
    }

    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        _out: &mut Emitter<Item>,
    ) -> bool {
        batch.as_slice().iter().for_each(|i| self.observe(i));
        true
    }
}

/// The turtle part: the schema as Turtle, and the diff against the previous version.
pub struct Turtle;

impl OnSchemaGrowth for Turtle {
    fn regenerate(&mut self, schema: &Schema, previous: &Schema, shared: &Shared) {
        let mut text = String::new();
        turtle::write_schema(schema, &mut text);
        let diff = schema.diff(previous);
        let mut art = shared.schema.lock().unwrap_or_else(|p| p.into_inner());
        art.version = short_version(schema.version());
        art.classes = schema.classes().count();
        art.properties = schema.classes().map(|(_, c)| c.properties().count()).sum();
        art.diff = diff.deltas.iter().map(|d| d.to_string()).collect();
        art.turtle = text;
    }
}

/// The typer part: the Python module and the JSON Schema document.
pub struct Typer;

impl OnSchemaGrowth for Typer {
    fn regenerate(&mut self, schema: &Schema, _previous: &Schema, shared: &Shared) {
        let python = typer::python_module(schema);
        let json_schema = typer::json_schema(schema);
        let mut art = shared.schema.lock().unwrap_or_else(|p| p.into_inner());
        art.python = python;
        art.json_schema = json_schema;
    }
}

/// The turtle stage: serialises the schema as Turtle into the shared artifacts when it
/// grows.
pub type TurtleStage = SchemaArtifactStage<Turtle>;

/// The typer stage: regenerates the Python module and the JSON Schema when the schema
/// grows.
pub type TyperStage = SchemaArtifactStage<Typer>;

impl TurtleStage {
    /// A turtle stage that has seen no schema yet.
    pub fn new(shared: Arc<Shared>) -> TurtleStage {
        SchemaArtifactStage {
            seen: 0,
            shared,
            part: Turtle,
        }
    }
}

impl TyperStage {
    /// A typer stage that has seen no schema yet.
    pub fn new(shared: Arc<Shared>) -> TyperStage {
        SchemaArtifactStage {
            seen: 0,
            shared,
            part: Typer,
        }
    }
}

fn current_schema(shared: &Shared) -> Option<Schema> {
    shared
        .schema_model
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}
