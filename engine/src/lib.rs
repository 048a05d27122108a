//! The onetrip case engine: deploy compiled flows, submit cases (eligibility checked and
//! explained), act on tasks with commands, and read a case, its history and the task queues.
//!
//! It consumes `dsl::CompiledFlow` only, never a syntax tree. State lives behind the
//! [`Store`] trait ([`SqliteStore`] on one machine, [`PgStore`] for several nodes on one
//! PostgreSQL database, [`AnyStore`] either, chosen by URL); the engine itself keeps only caches, so
//! any number of engines may share a store. Every command is decided by the pure
//! [`case`] module and written with its events in one transaction, at the case version it was
//! decided on; a command with an idempotency key that was already carried out returns the
//! first answer and writes nothing.
//!
//! HTTP is not here: the `server` crate (`onetrip-server`) serves this API over HTTP, so that
//! a platform embedding the engine compiles no web framework.

pub mod any;
pub mod case;
pub mod postgres;
pub mod scenario;
mod sql;
pub mod sqlite;
pub mod stalls;
pub mod store;
pub mod timeline;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use calendar::Calendar;
use chrono::{DateTime, Utc};
use dsl::model::Flow;
use dsl::CompiledFlow;
use rules::{Explanation, Facts, RuleKey, RuleSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use any::AnyStore;
pub use case::{Actor, CaseState, Command, CommandError, Event, EventKind, Status};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no flow `{0}` is deployed")]
    UnknownFlow(String),
    #[error("no case `{0}`")]
    UnknownCase(String),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("the applicant data does not fit the schema: {0}")]
    Facts(#[from] rules::FactError),
    #[error("the flow's rules cannot be compiled: {0}")]
    Rules(#[from] rules::RuleError),
    #[error("the case is at version {actual}, not {expected}")]
    VersionMismatch { expected: u64, actual: u64 },
    #[error("this idempotency key was used for a different request")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The time source: the system clock, or one a test controls.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock shifted to start at a given instant: time runs, from there. For tests
/// and demonstrations of what happens days later.
pub struct ShiftedClock {
    offset: chrono::Duration,
}

impl ShiftedClock {
    pub fn starting_at(at: DateTime<Utc>) -> ShiftedClock {
        ShiftedClock { offset: at - Utc::now() }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// A clock that moves only when told to.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What an applicant submits.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Submission {
    /// The process (or item) to apply for.
    pub flow: String,
    /// The value of each schema by name, e.g. `{"applicant": {...}}`: its fields are the
    /// flow's schemas', checked by them at submission.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub materials: Vec<String>,
    #[serde(default)]
    pub licences: Vec<String>,
}

/// The answer to a submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Submitted {
    Accepted {
        case: Box<CaseState>,
    },
    /// Not eligible: every rule that failed, explained.
    Refused {
        reasons: Vec<Explanation>,
    },
}

pub struct Engine<S: Store> {
    store: S,
    calendar: Arc<Calendar>,
    clock: Arc<dyn Clock>,
    /// Compiled rules per flow version: flows never change under a version.
    rules: Mutex<HashMap<String, Arc<RuleSet>>>,
    /// Compiled flows by version, for the same reason.
    flows: Mutex<HashMap<String, Arc<CompiledFlow>>>,
    /// The cases this engine wrote last, so that a command needs no read.
    cases: CaseCache,
}

/// A case's state and its parsed facts.
#[derive(Clone)]
struct CachedCase {
    state: CaseState,
    facts: Arc<Submission>,
}

/// The most recently written cases, bounded: memory stays flat however many cases the store
/// holds. Only a cache: the store's version check decides every write.
struct CaseCache {
    entries: Mutex<HashMap<String, CachedCase>>,
}

impl CaseCache {
    const CAPACITY: usize = 8192;

    fn get(&self, id: &str) -> Option<CachedCase> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    fn put(&self, case: CachedCase) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::CAPACITY && !entries.contains_key(&case.state.id) {
            // Any one goes (no scan on the hot path): a miss costs one read.
            let victim = entries.keys().next().cloned();
            if let Some(victim) = victim {
                entries.remove(&victim);
            }
        }
        entries.insert(case.state.id.clone(), case);
    }

    fn remove(&self, id: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

impl<S: Store> Engine<S> {
    pub fn new(store: S, calendar: Arc<Calendar>, clock: Arc<dyn Clock>) -> Engine<S> {
        Engine {
            store,
            calendar,
            clock,
            rules: Mutex::new(HashMap::new()),
            flows: Mutex::new(HashMap::new()),
            cases: CaseCache { entries: Mutex::new(HashMap::new()) },
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Deploys a compiled flow; `false` when that version was deployed already.
    pub async fn deploy(&self, flow: &CompiledFlow) -> Result<bool, EngineError> {
        // Rules that do not compile are refused at deploy time, not at a citizen's submission.
        self.rule_set(flow)?;
        Ok(self.store.deploy(flow).await?)
    }

    /// A deployed flow by version, read once and then kept.
    async fn flow(&self, version: &str) -> Result<Arc<CompiledFlow>, EngineError> {
        if let Some(flow) = self.flows.lock().unwrap_or_else(|e| e.into_inner()).get(version) {
            return Ok(Arc::clone(flow));
        }
        let flow =
            Arc::new(self.store.flow(version).await?.ok_or_else(|| EngineError::UnknownFlow(version.to_string()))?);
        self.flows.lock().unwrap_or_else(|e| e.into_inner()).insert(version.to_string(), Arc::clone(&flow));
        Ok(flow)
    }

    fn rule_set(&self, flow: &CompiledFlow) -> Result<Arc<RuleSet>, EngineError> {
        let mut cache = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = cache.get(&flow.version) {
            return Ok(Arc::clone(set));
        }
        let set = Arc::new(RuleSet::new(flow, Arc::clone(&self.calendar))?);
        cache.insert(flow.version.clone(), Arc::clone(&set));
        Ok(set)
    }

    fn now(&self) -> (String, calendar::Date) {
        let now = self.clock.now();
        // Government service days are Beijing days.
        let china = now + chrono::Duration::hours(8);
        (now.to_rfc3339(), china.date_naive())
    }

    /// Submits a case: eligibility first (the process's rule and those of the items every
    /// applicant goes through), then the first tasks open.
    pub async fn submit(&self, submission: &Submission, key: Option<&str>) -> Result<Submitted, EngineError> {
        let request_hash = hash(&("submit", submission));
        if let Some(answer) = self.remembered(key, &request_hash).await? {
            return Ok(answer);
        }
        let version = self
            .store
            .latest_version(&submission.flow)
            .await?
            .ok_or_else(|| EngineError::UnknownFlow(submission.flow.clone()))?;
        let flow = self.flow(&version).await?;
        let set = self.rule_set(&flow)?;
        let (at, today) = self.now();
        let bound = set.bind(&facts_of(submission, today))?;
        let guards = BoundGuards { set: &set, bound: &bound };
        let mut reasons = Vec::new();
        for key in eligibility_rules(&flow, &guards).map_err(CommandError::Rule)? {
            if let Some(id) = set.id(&key) {
                let explanation = bound.explain(id).map_err(|e| CommandError::Rule(e.to_string()))?;
                if !explanation.holds {
                    reasons.push(explanation);
                }
            }
        }
        if !reasons.is_empty() {
            return Ok(Submitted::Refused { reasons });
        }
        let id = new_case_id(&at, &request_hash);
        let initial = CaseState::new(&id, &flow, &at);
        let now = case::Now { at: at.clone(), calendar: &self.calendar };
        let events = case::start(&flow, &initial, &now, &guards)?;
        let mut state = initial.clone();
        events.iter().for_each(|e| state.apply(e));
        let answer = Submitted::Accepted { case: Box::new(state.clone()) };
        let stored_facts = serde_json::to_value(submission).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let supervision = stalls::supervise(&flow, &initial, &events, &state, &self.calendar);
        let answer =
            self.write(&state, &events, 0, Some(&stored_facts), &supervision, key, &request_hash, answer).await?;
        if let Submitted::Accepted { case } = &answer {
            if case.id == state.id {
                self.cases.put(CachedCase { state, facts: Arc::new(submission.clone()) });
            }
        }
        Ok(answer)
    }

    /// Carries out a command on a case. With `expected_version`, it is refused when the case
    /// has moved on since the caller read it.
    ///
    /// The case is taken from the engine's cache when it is there (the state this engine last
    /// wrote): the store's version check still guards the write, and a cached state that
    /// another engine has overtaken is read again from the store and the command decided anew.
    /// So is a command without an expected version whose write lost a race.
    pub async fn act(
        &self,
        case_id: &str,
        command: &Command,
        actor: &Actor,
        key: Option<&str>,
        expected_version: Option<u64>,
    ) -> Result<CaseState, EngineError> {
        let request_hash = hash(&("act", case_id, command, actor));
        if let Some(answer) = self.remembered::<CaseState>(key, &request_hash).await? {
            return Ok(answer);
        }
        /// Times a command is decided again after losing a race to another write of its case.
        const MAX_RACES: usize = 4;
        let mut cached = self.cases.get(case_id);
        let mut raced = 0;
        loop {
            let from_cache = cached.is_some();
            let case = match cached.take() {
                Some(case) => case,
                None => self.load_case(case_id).await?,
            };
            if let Some(expected) = expected_version {
                if expected != case.state.version {
                    if from_cache {
                        continue;
                    }
                    return Err(EngineError::VersionMismatch { expected, actual: case.state.version });
                }
            }
            let flow = self.flow(&case.state.version_id).await?;
            let set = self.rule_set(&flow)?;
            let (at, today) = self.now();
            let bound = set.bind(&facts_of(&case.facts, today))?;
            let guards = BoundGuards { set: &set, bound: &bound };
            let now = case::Now { at: at.clone(), calendar: &self.calendar };
            let decided = case::decide(&flow, &case.state, command, actor, &now, &guards);
            let events = match decided {
                Ok(events) => events,
                // The refusal may come from a stale state: decide again on the stored one.
                Err(_) if from_cache => {
                    self.cases.remove(case_id);
                    continue;
                }
                Err(refused) => return Err(refused.into()),
            };
            let mut state = case.state.clone();
            events.iter().for_each(|e| state.apply(e));
            let supervision = stalls::supervise(&flow, &case.state, &events, &state, &self.calendar);
            let written = self
                .write(&state, &events, case.state.version, None, &supervision, key, &request_hash, state.clone())
                .await;
            match written {
                Ok(answer) => {
                    self.cases.put(CachedCase { state: answer.clone(), facts: Arc::clone(&case.facts) });
                    return Ok(answer);
                }
                // Another node (or this one's timer tick) wrote the case meanwhile. Without an
                // expected version the caller asked for the command on the case as it is: so it
                // is decided again on the stored state, a few times before the race is reported.
                Err(EngineError::Store(StoreError::Conflict { .. }))
                    if from_cache || (expected_version.is_none() && raced < MAX_RACES) =>
                {
                    raced += usize::from(!from_cache);
                    self.cases.remove(case_id);
                }
                Err(other) => {
                    self.cases.remove(case_id);
                    return Err(other);
                }
            }
        }
    }

    /// A case as stored, with its facts parsed.
    async fn load_case(&self, case_id: &str) -> Result<CachedCase, EngineError> {
        let stored = self.store.case(case_id).await?.ok_or_else(|| EngineError::UnknownCase(case_id.to_string()))?;
        let facts: Submission = serde_json::from_value(stored.facts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(CachedCase { state: stored.state, facts: Arc::new(facts) })
    }

    /// Fires every timer due now, and goes on until none is due: after an outage or a long
    /// weekend thousands fall due at once. Cases are fired `TICK_BATCH` at a time, concurrently,
    /// so that the store commits their writes together as it does commands'. Returns the events
    /// written. Each timer fires once: its event removes it from the case's state, in the same
    /// transaction; a case another engine (or a command) moved first is left to the next tick.
    pub async fn tick(&self) -> Result<usize, EngineError> {
        /// Cases read and fired at once: about what one group commit takes.
        const TICK_BATCH: u32 = 256;
        let now = self.clock.now().to_rfc3339();
        let mut fired = 0;
        // A case is tried once per tick, so one that stays due (moved meanwhile, or nothing to
        // fire) cannot keep the loop going.
        let mut tried = std::collections::HashSet::new();
        loop {
            let due: Vec<String> = self
                .store
                .due_timers(&now, TICK_BATCH)
                .await?
                .into_iter()
                .filter(|id| tried.insert(id.clone()))
                .collect();
            if due.is_empty() {
                return Ok(fired);
            }
            let results = futures_util::future::join_all(due.iter().map(|id| self.fire(id, &now))).await;
            for result in results {
                fired += result?;
            }
        }
    }

    /// Fires a case's due timers: the number of events written.
    async fn fire(&self, case_id: &str, now: &str) -> Result<usize, EngineError> {
        let Some(stored) = self.store.case(case_id).await? else { return Ok(0) };
        let events = case::fire_timers(&stored.state, now);
        if events.is_empty() {
            return Ok(0);
        }
        let mut state = stored.state.clone();
        events.iter().for_each(|e| state.apply(e));
        let flow = self.flow(&stored.state.version_id).await?;
        let supervision = stalls::supervise(&flow, &stored.state, &events, &state, &self.calendar);
        let written = self
            .store
            .append(store::Append {
                state: &state,
                events: &events,
                expected_version: stored.state.version,
                facts: None,
                idempotency: None,
                supervision: &supervision,
            })
            .await;
        self.cases.remove(case_id);
        match written {
            Ok(()) => Ok(events.len()),
            // Another engine (or a command) moved the case first: the next tick sees it.
            Err(StoreError::Conflict { .. }) => Ok(0),
            Err(other) => Err(other.into()),
        }
    }

    /// Follows every case's events from a position (0: the beginning). Keep the position of
    /// the last event handled and subscribe from it again after a restart: nothing is missed.
    pub fn subscribe(&self, after: i64) -> Subscription<&Engine<S>> {
        Subscription::new(self, after)
    }

    pub async fn case(&self, id: &str) -> Result<CaseState, EngineError> {
        Ok(self.store.case(id).await?.ok_or_else(|| EngineError::UnknownCase(id.to_string()))?.state)
    }

    pub async fn history(&self, id: &str) -> Result<Vec<Event>, EngineError> {
        self.case(id).await?;
        Ok(self.store.history(id).await?)
    }

    pub async fn tasks(&self, department: &str) -> Result<Vec<store::QueuedTask>, EngineError> {
        Ok(self.store.tasks(department).await?)
    }

    /// Stall analysis (电子监察) as of now: where cases wait and for how many working days,
    /// the longest waits, each department's handling times, the warnings, and each process's
    /// figures. Reads only the tables every write keeps, never the event log.
    pub async fn stalls(&self, filter: &stalls::StallFilter) -> Result<stalls::Stalls, EngineError> {
        let (_, today) = self.now();
        let today = today.to_string();
        let waiting = self.store.waiting(filter).await?;
        let mut oldest = Vec::new();
        for task in self.store.oldest_tasks(filter).await? {
            let case = self.store.case(&task.case_id).await?.map(|c| c.state);
            oldest.push((task, case));
        }
        let handled = self.store.handled(filter).await?;
        let (latest, counts) = self.store.warnings(filter).await?;
        let processes = self.store.process_counts(filter).await?;
        Ok(stalls::Stalls {
            states: stalls::states(&waiting, &self.calendar, &today),
            longest: stalls::longest(&oldest, &self.calendar, &today),
            departments: stalls::departments(&handled, &waiting, &today),
            warnings: stalls::warnings(&latest, &counts),
            processes: stalls::processes(&processes),
            today,
        })
    }

    /// The yellow and red warnings alone: counts, and the latest `filter.limit()`.
    pub async fn warnings(&self, filter: &stalls::StallFilter) -> Result<stalls::Warnings, EngineError> {
        let (latest, counts) = self.store.warnings(filter).await?;
        Ok(stalls::warnings(&latest, &counts))
    }

    /// Each department's figures alone: handling times, open and overdue tasks.
    pub async fn departments(
        &self,
        filter: &stalls::StallFilter,
    ) -> Result<Vec<stalls::DepartmentFigures>, EngineError> {
        let (_, today) = self.now();
        let waiting = self.store.waiting(filter).await?;
        let handled = self.store.handled(filter).await?;
        Ok(stalls::departments(&handled, &waiting, &today.to_string()))
    }

    /// Today (Beijing), as the stall figures count it.
    pub fn today(&self) -> String {
        self.now().1.to_string()
    }

    /// Today (Beijing), as the rules see it.
    pub fn date(&self) -> calendar::Date {
        self.now().1
    }

    /// The working-day calendar this engine counts on.
    pub fn calendar(&self) -> &Arc<Calendar> {
        &self.calendar
    }

    /// Every process (or item) deployed, the latest version of each, ordered by name.
    pub async fn processes(&self) -> Result<Vec<Arc<CompiledFlow>>, EngineError> {
        let mut flows = Vec::new();
        for (_, version) in self.store.deployed().await? {
            flows.push(self.flow(&version).await?);
        }
        Ok(flows)
    }

    /// The latest deployed version of a process (or item).
    pub async fn process(&self, name: &str) -> Result<Arc<CompiledFlow>, EngineError> {
        let version =
            self.store.latest_version(name).await?.ok_or_else(|| EngineError::UnknownFlow(name.to_string()))?;
        self.flow(&version).await
    }

    /// One case on a working-day axis, as of now: its steps, pauses, warnings and limit.
    pub async fn timeline(&self, id: &str) -> Result<timeline::CaseTimeline, EngineError> {
        let case = self.case(id).await?;
        let events = self.store.history(id).await?;
        let (now, _) = self.now();
        Ok(timeline::timeline(&case, &events, &self.calendar, &now))
    }

    /// The personal data of a case, masked (`张**`, `110105********002X`): each field its
    /// flow's schemas mark `pii`, labelled `schema.field`. For pages that must say whose case
    /// it is without showing who.
    pub async fn masked_applicant(&self, id: &str) -> Result<Vec<(String, dsl::model::Pii, String)>, EngineError> {
        let stored = self.store.case(id).await?.ok_or_else(|| EngineError::UnknownCase(id.to_string()))?;
        let flow = self.flow(&stored.state.version_id).await?;
        Ok(timeline::masked(&flow, &stored.facts))
    }

    /// The per-state summary only: the cheapest question, for dashboards and benchmarks.
    pub async fn stalled_states(&self, filter: &stalls::StallFilter) -> Result<Vec<stalls::StateFigures>, EngineError> {
        let (_, today) = self.now();
        let waiting = self.store.waiting(filter).await?;
        Ok(stalls::states(&waiting, &self.calendar, &today.to_string()))
    }

    /// The answer remembered for an idempotency key, if the same request was made with it.
    async fn remembered<T: serde::de::DeserializeOwned>(
        &self,
        key: Option<&str>,
        request_hash: &str,
    ) -> Result<Option<T>, EngineError> {
        let Some(key) = key else { return Ok(None) };
        match self.store.idempotent(key).await? {
            None => Ok(None),
            Some((hash, _)) if hash != request_hash => Err(EngineError::KeyReused),
            Some((_, response)) => {
                Ok(Some(serde_json::from_str(&response).map_err(|e| StoreError::Corrupt(e.to_string()))?))
            }
        }
    }

    /// Writes a command's events with the state they give and, under an idempotency key, the
    /// answer to give a retry. A key already taken by the same request meanwhile (a retry
    /// racing the first try) gets the first answer.
    #[allow(clippy::too_many_arguments)]
    async fn write<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        state: &CaseState,
        events: &[Event],
        expected_version: u64,
        facts: Option<&serde_json::Value>,
        supervision: &stalls::Supervision,
        key: Option<&str>,
        request_hash: &str,
        answer: T,
    ) -> Result<T, EngineError> {
        // The answer is kept only for a retry: no serialising on the hot path without a key.
        let response = match key {
            Some(_) => serde_json::to_string(&answer).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => String::new(),
        };
        let idempotency = key.map(|key| store::Idempotency { key, request_hash, response: &response });
        let written =
            self.store.append(store::Append { state, events, expected_version, facts, idempotency, supervision }).await;
        match written {
            Ok(()) => Ok(answer),
            Err(StoreError::KeyReused) => self.remembered(key, request_hash).await?.ok_or(EngineError::KeyReused),
            Err(other) => Err(other.into()),
        }
    }
}

/// An event of the feed: its global position, its case and the event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedItem {
    pub position: i64,
    pub case_id: String,
    pub event: Event,
}

/// A subscription to every case's events, in the order they were written, through any handle
/// on an engine (`&Engine`, or `Arc<Engine>` for a subscription that outlives the caller, as
/// the HTTP event stream's does).
pub struct Subscription<E> {
    engine: E,
    after: i64,
    buffer: std::collections::VecDeque<FeedItem>,
}

impl<S: Store, E: std::ops::Deref<Target = Engine<S>>> Subscription<E> {
    /// Follows the feed from a position (0: the beginning).
    pub fn new(engine: E, after: i64) -> Subscription<E> {
        Subscription { engine, after, buffer: std::collections::VecDeque::new() }
    }

    /// The next event, waiting for one to be written.
    pub async fn next(&mut self) -> Result<FeedItem, EngineError> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                self.after = item.position;
                return Ok(item);
            }
            let events = self.engine.store.events_after(self.after, 500).await?;
            if events.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            self.buffer.extend(events.into_iter().map(|(position, case_id, event)| FeedItem {
                position,
                case_id,
                event,
            }));
        }
    }

    /// The position of the last event returned.
    pub fn position(&self) -> i64 {
        self.after
    }

    /// The feed as a [`futures_util::Stream`], for stream combinators; it never ends on its own.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<FeedItem, EngineError>> {
        futures_util::stream::unfold(self, |mut subscription| async move {
            let item = subscription.next().await;
            Some((item, subscription))
        })
    }
}

/// What the rules read of a case: its submission, on the day given.
fn facts_of(submission: &Submission, today: calendar::Date) -> Facts {
    Facts {
        data: submission.data.clone(),
        materials: submission.materials.clone(),
        licences: submission.licences.clone(),
        today: Some(today),
    }
}

/// The eligibility rules checked at submission: the process's, and those of every item the
/// case will run. A branch's guard reads only the facts, which a case keeps from its
/// submission on, so the branch it takes is known now and its items are checked now too.
fn eligibility_rules(flow: &CompiledFlow, guards: &dyn case::Guards) -> Result<Vec<RuleKey>, String> {
    fn reached<'f>(flow: &'f Flow, guards: &dyn case::Guards, out: &mut Vec<&'f str>) -> Result<(), String> {
        match flow {
            Flow::Item(name) => out.push(name),
            Flow::End => {}
            Flow::Sequence(nodes) | Flow::Parallel(nodes) => {
                for node in nodes {
                    reached(node, guards, out)?;
                }
            }
            Flow::Choice { branches, otherwise } => {
                for (guard, branch) in branches {
                    if guards.holds(&guard.source)? {
                        return reached(branch, guards, out);
                    }
                }
                if let Some(branch) = otherwise {
                    reached(branch, guards, out)?;
                }
            }
        }
        Ok(())
    }
    let mut items = Vec::new();
    reached(&flow.process.flow, guards, &mut items)?;
    Ok(std::iter::once(RuleKey::ProcessEligibility)
        .chain(items.into_iter().map(|i| RuleKey::ItemEligibility(i.to_string())))
        .collect())
}

/// Guards evaluated on a case's bound facts.
struct BoundGuards<'a> {
    set: &'a RuleSet,
    bound: &'a rules::Bound<'a>,
}

impl case::Guards for BoundGuards<'_> {
    fn holds(&self, guard: &str) -> Result<bool, String> {
        let id = self.set.guard(guard).ok_or_else(|| format!("unknown guard `{guard}`"))?;
        self.bound.evaluate(id).map_err(|e| e.to_string())
    }
}

fn hash<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    Sha256::digest(&json).iter().map(|b| format!("{b:02x}")).collect()
}

/// A case id: its submission time and a digest, unique without coordination between engines.
fn new_case_id(at: &str, request_hash: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = COUNTER.fetch_add(1, Ordering::Relaxed);
    let digest = hash(&(at, request_hash, nonce, std::process::id()));
    let stamp: String = at.chars().filter(char::is_ascii_digit).take(14).collect();
    format!("C{stamp}-{}", &digest[..12])
}
