//! A checked process (or a lone item) to a [`CompiledFlow`]: a state machine the engine runs.
//!
//! States are the items' steps plus the structural states of the flow (start, end, fork and
//! join of a parallel block, the choice of a conditional). Transitions carry the event that
//! takes them, a guard, and the department, item and step they belong to. The flow's version
//! is a SHA-256 of its serialised content, so the same flow always has the same version and
//! reformatting or re-commenting the source does not change it.

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::*;

/// Version of the compiled format, part of the hash.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompiledFlow {
    pub format: u32,
    /// The content hash: the version id of this flow.
    pub version: String,
    pub name: String,
    pub title: String,
    /// The process, or for a lone item a process of that one item.
    pub process: Process,
    /// The items of the flow, in the order they are written.
    pub items: Vec<Item>,
    /// Every department the flow involves.
    pub departments: Vec<Department>,
    pub schemas: Vec<Schema>,
    /// Items outside the flow whose licences its materials take (电子证照 issued earlier, by
    /// another process): not run, kept for what they issue and who issues it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub producers: Vec<Item>,
    pub graph: StableDiGraph<State, Transition>,
    pub start: NodeIndex,
    pub end: NodeIndex,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum State {
    Start,
    End,
    /// A step of an item: a task for `department`.
    Step {
        item: String,
        step: String,
        department: String,
        label: Option<String>,
        cosign: Vec<String>,
        /// The step's own limit in working days.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// The split of a parallel block: every outgoing transition is taken.
    Fork,
    /// The join of a parallel block: waits for `branches` arrivals.
    Join {
        branches: usize,
    },
    /// A conditional: the first transition whose guard holds is taken, else the `otherwise` one.
    Choice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Taken at once when the state is entered.
    Auto,
    /// An officer completes the step.
    Complete,
    /// An officer returns the case to an earlier step (退回).
    Back,
    /// Taken from a choice when no guard holds.
    Otherwise,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub event: Event,
    /// A CEL rule over the case (conditional branches only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// Who takes it: the department acting on the step it leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl Transition {
    fn auto() -> Self {
        Transition { event: Event::Auto, guard: None, department: None, item: None, step: None }
    }
}

/// Compiles the process or item called `name`. `None` when there is no such flow.
pub fn compile(program: &Program, name: &str) -> Option<CompiledFlow> {
    if let Some(process) = program.process(name) {
        return Some(build(program, process.clone()));
    }
    let item = program.item(name)?;
    let process = Process {
        name: item.name.clone(),
        title: item.title.clone(),
        extends: None,
        code: item.code.clone(),
        window: item.department.clone(),
        sla: item.promised_limit,
        visits_at_most: None,
        eligibility: None,
        flow: Flow::Item(item.name.clone()),
        warnings: Vec::new(),
        guide: item.guide.clone(),
        location: item.location,
    };
    Some(build(program, process))
}

fn build(program: &Program, process: Process) -> CompiledFlow {
    let items: Vec<Item> = process.flow.items().iter().filter_map(|n| program.item(n).cloned()).collect();
    let mut department_names: Vec<&str> = vec![process.window.as_str()];
    for item in &items {
        department_names.push(&item.department);
        for step in &item.steps {
            department_names.push(&step.department);
            department_names.extend(step.cosign.iter().map(String::as_str));
        }
    }
    // The departments whose shared data or licences the materials take are involved too: a
    // guide names them (数据共享：公安局人口基础信息库).
    let mut producers: Vec<Item> = Vec::new();
    for item in &items {
        for material in &item.materials {
            match &material.source {
                MaterialSource::Shared { department, .. } => department_names.push(department),
                MaterialSource::Licence { item: producer, .. } => {
                    let outside =
                        !items.iter().any(|i| &i.name == producer) && !producers.iter().any(|p| &p.name == producer);
                    if let Some(producer) = program.item(producer).filter(|_| outside) {
                        producers.push(producer.clone());
                    }
                }
                MaterialSource::Applicant => {}
            }
        }
    }
    for producer in &producers {
        department_names.push(&producer.department);
    }
    let mut departments: Vec<Department> = Vec::new();
    for name in department_names {
        if let Some(d) = program.department(name) {
            if !departments.iter().any(|x| x.name == d.name) {
                departments.push(d.clone());
            }
        }
    }
    let mut builder = GraphBuilder { graph: StableDiGraph::new(), program };
    let start = builder.graph.add_node(State::Start);
    let end = builder.graph.add_node(State::End);
    let exits = builder.flow(&process.flow, vec![(start, Transition::auto())], end);
    builder.connect(exits, end);
    let mut flow = CompiledFlow {
        format: FORMAT_VERSION,
        version: String::new(),
        name: process.name.clone(),
        title: process.title.clone(),
        process,
        items,
        departments,
        schemas: program.schemas.clone(),
        producers,
        graph: builder.graph,
        start,
        end,
    };
    flow.version = content_hash(&flow);
    flow
}

impl CompiledFlow {
    /// The program this flow was compiled from, as far as the flow carries it: its items,
    /// departments and schemas, and its process (none for a lone item's flow). What reads a
    /// deployed flow as the checker's program does (`guide`, `analysis::report`) takes this.
    pub fn program(&self) -> Program {
        let mut program = Program {
            departments: self.departments.clone(),
            schemas: self.schemas.clone(),
            items: self.items.iter().chain(&self.producers).cloned().collect(),
            ..Program::default()
        };
        let lone_item =
            self.process.flow == Flow::Item(self.name.clone()) && self.items.iter().any(|i| i.name == self.name);
        if !lone_item {
            program.processes.push(self.process.clone());
        }
        for (index, department) in program.departments.iter().enumerate() {
            program.department_index.insert(department.name.clone(), index);
        }
        for (index, schema) in program.schemas.iter().enumerate() {
            program.schema_index.insert(schema.name.clone(), index);
        }
        for (index, item) in program.items.iter().enumerate() {
            program.item_index.insert(item.name.clone(), index);
        }
        for (index, process) in program.processes.iter().enumerate() {
            program.process_index.insert(process.name.clone(), index);
        }
        program
    }
}

/// SHA-256 over the serialised flow with an empty version, in hex.
fn content_hash(flow: &CompiledFlow) -> String {
    // Stream the JSON into the hasher instead of building it in memory.
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = std::io::BufWriter::with_capacity(16 * 1024, HashWriter(Sha256::new()));
    // Serialising these plain data types cannot fail; a failure would only weaken the hash.
    let _ = serde_json::to_writer(&mut writer, flow);
    let _ = std::io::Write::flush(&mut writer);
    let (HashWriter(hasher), _) = writer.into_parts();
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Transitions waiting for the state they lead to.
type Pending = Vec<(NodeIndex, Transition)>;

struct GraphBuilder<'p> {
    graph: StableDiGraph<State, Transition>,
    program: &'p Program,
}

impl GraphBuilder<'_> {
    fn connect(&mut self, pending: Pending, to: NodeIndex) {
        for (from, transition) in pending {
            self.graph.add_edge(from, to, transition);
        }
    }

    /// Adds the states of `flow`, entered by `pending`; returns the transitions that leave it.
    fn flow(&mut self, flow: &Flow, pending: Pending, end: NodeIndex) -> Pending {
        match flow {
            Flow::Item(name) => match self.program.item(name) {
                Some(item) => self.item(item, pending),
                None => pending,
            },
            Flow::End => {
                self.connect(pending, end);
                Vec::new()
            }
            Flow::Sequence(nodes) => nodes.iter().fold(pending, |pending, node| self.flow(node, pending, end)),
            Flow::Parallel(branches) => {
                let fork = self.graph.add_node(State::Fork);
                self.connect(pending, fork);
                let join = self.graph.add_node(State::Join { branches: branches.len() });
                for branch in branches {
                    let exits = self.flow(branch, vec![(fork, Transition::auto())], end);
                    self.connect(exits, join);
                }
                vec![(join, Transition::auto())]
            }
            Flow::Choice { branches, otherwise } => {
                let choice = self.graph.add_node(State::Choice);
                self.connect(pending, choice);
                let mut exits = Vec::new();
                for (rule, branch) in branches {
                    let guarded = Transition { guard: Some(rule.source.clone()), ..Transition::auto() };
                    exits.extend(self.flow(branch, vec![(choice, guarded)], end));
                }
                let fallback = vec![(choice, Transition { event: Event::Otherwise, ..Transition::auto() })];
                match otherwise {
                    Some(branch) => exits.extend(self.flow(branch, fallback, end)),
                    None => exits.extend(fallback),
                }
                exits
            }
        }
    }

    fn item(&mut self, item: &Item, pending: Pending) -> Pending {
        let nodes: Vec<NodeIndex> = item
            .steps
            .iter()
            .map(|step| {
                self.graph.add_node(State::Step {
                    item: item.name.clone(),
                    step: step.name.clone(),
                    department: step.department.clone(),
                    label: step.label.clone(),
                    cosign: step.cosign.clone(),
                    limit: step.limit,
                })
            })
            .collect();
        let Some(&first) = nodes.first() else { return pending };
        let entering =
            pending.into_iter().map(|(from, t)| (from, Transition { item: Some(item.name.clone()), ..t })).collect();
        self.connect(entering, first);
        let index_of = |name: &str| item.steps.iter().position(|s| s.name == name).map(|i| nodes[i]);
        let mut exits = Vec::new();
        for (step, &node) in item.steps.iter().zip(&nodes) {
            let transition = |event| Transition {
                event,
                guard: None,
                department: Some(step.department.clone()),
                item: Some(item.name.clone()),
                step: Some(step.name.clone()),
            };
            for target in &step.next {
                match target {
                    StepTarget::End => exits.push((node, transition(Event::Complete))),
                    StepTarget::Step(name) => {
                        if let Some(to) = index_of(name) {
                            self.graph.add_edge(node, to, transition(Event::Complete));
                        }
                    }
                }
            }
            for back in &step.back {
                if let Some(to) = index_of(back) {
                    self.graph.add_edge(node, to, transition(Event::Back));
                }
            }
        }
        exits
    }
}
