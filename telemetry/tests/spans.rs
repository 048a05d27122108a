//! The spans of a joint case, through the SDK's in-memory exporter: the tree, the times taken
//! from the events, the attributes, no personal data, and a restart that neither loses nor
//! repeats a span.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SpanData};
use opentelemetry_sdk::Resource;
use support::{at, first_part, second_part, setup, submit, ID_NUMBER, NAME};
use telemetry::spans::{case_span_id, item_span_id, step_span_id, trace_id};
use telemetry::Exporter;

fn exporter(memory: &InMemorySpanExporter) -> Exporter<InMemorySpanExporter> {
    let resource = Resource::builder_empty().with_service_name("onetrip-test").build();
    Exporter::new(memory.clone(), &resource, Sampler::AlwaysOn)
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn int(span: &SpanData, key: &str) -> Option<i64> {
    match attribute(span, key) {
        Some(Value::I64(v)) => Some(*v),
        _ => None,
    }
}

fn text(span: &SpanData, key: &str) -> Option<String> {
    attribute(span, key).map(|v| v.to_string())
}

/// Spans by id (as bytes: `SpanId` has no order).
fn by_id(spans: &[SpanData]) -> BTreeMap<[u8; 8], &SpanData> {
    spans.iter().map(|s| (s.span_context.span_id().to_bytes(), s)).collect()
}

/// The expected step spans: item, step, opening, start, end, outcome.
const STEPS: [(&str, &str, u32, &str, &str, &str); 14] = [
    ("registration", "accept", 1, "2026-09-30T01:00:00Z", "2026-09-30T01:20:00Z", "completed"),
    ("registration", "review", 1, "2026-09-30T01:20:00Z", "2026-09-30T01:30:00Z", "returned"),
    ("registration", "accept", 2, "2026-09-30T01:30:00Z", "2026-09-30T01:40:00Z", "completed"),
    ("registration", "review", 2, "2026-09-30T01:40:00Z", "2026-09-30T01:50:00Z", "completed"),
    ("registration", "decide", 1, "2026-09-30T01:50:00Z", "2026-09-30T01:55:00Z", "completed"),
    ("registration", "deliver", 1, "2026-09-30T01:55:00Z", "2026-09-30T02:00:00Z", "completed"),
    ("seal", "accept", 1, "2026-09-30T02:00:00Z", "2026-10-12T03:00:00Z", "completed"),
    ("seal", "review", 1, "2026-10-12T03:00:00Z", "2026-10-12T03:00:00Z", "completed"),
    ("seal", "decide", 1, "2026-10-12T03:00:00Z", "2026-10-12T03:00:00Z", "completed"),
    ("seal", "deliver", 1, "2026-10-12T03:00:00Z", "2026-10-12T03:00:00Z", "completed"),
    ("tax_setup", "accept", 1, "2026-09-30T02:00:00Z", "2026-10-08T03:00:00Z", "completed"),
    ("tax_setup", "review", 1, "2026-10-08T03:00:00Z", "2026-10-13T02:00:00Z", "completed"),
    ("tax_setup", "decide", 1, "2026-10-13T02:00:00Z", "2026-10-13T02:00:00Z", "completed"),
    ("tax_setup", "deliver", 1, "2026-10-13T02:00:00Z", "2026-10-13T02:00:00Z", "completed"),
];

fn time(rfc3339: &str) -> std::time::SystemTime {
    at(rfc3339).into()
}

#[tokio::test]
async fn a_joint_case_gives_its_span_tree_with_the_times_of_its_events() {
    let setup = setup("tree").await;
    let case = submit(&setup).await;
    first_part(&setup, &case).await;
    second_part(&setup, &case).await;
    let memory = InMemorySpanExporter::default();
    let mut exporter = exporter(&memory);
    let sent = exporter.catch_up(&setup.engine).await.expect("exports");
    let spans = memory.get_finished_spans().expect("spans");
    assert_eq!(sent, spans.len());
    assert_eq!(spans.len(), 1 + 3 + STEPS.len(), "{:#?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let trace = trace_id(&case);
    assert!(spans.iter().all(|s| s.span_context.trace_id() == trace), "one trace per case");
    assert!(spans.iter().all(|s| s.span_context.is_sampled()));
    let spans_by_id = by_id(&spans);
    assert_eq!(spans_by_id.len(), spans.len(), "span ids are unique");

    // The case.
    let root = spans_by_id[&case_span_id(&case).to_bytes()];
    assert_eq!(root.parent_span_id, SpanId::INVALID);
    assert_eq!(root.name, "开办企业一件事");
    assert_eq!((root.start_time, root.end_time), (time("2026-09-30T01:00:00Z"), time("2026-10-13T02:00:00Z")));
    assert_eq!(text(root, "onetrip.outcome").as_deref(), Some("completed"));
    assert_eq!(text(root, "onetrip.department").as_deref(), Some("samr"));
    assert_eq!(text(root, "onetrip.case.id").as_deref(), Some(case.as_str()));
    // Working days after 09-30 up to 10-13: 10-08, 10-09, Sat 10-10, 10-12, 10-13 = 5, of which
    // the 补正 stopped the process's clock for 3 (10-09, 10-10, 10-12).
    assert_eq!(int(root, "onetrip.workdays.promised"), Some(5));
    assert_eq!(int(root, "onetrip.workdays.paused"), Some(3));
    assert_eq!(int(root, "onetrip.workdays.used"), Some(2));
    assert_eq!(root.status, Status::Unset);

    // The items, children of the case.
    let items: [(&str, &str, &str, &str, i64, i64, i64); 3] = [
        ("registration", "企业设立登记", "2026-09-30T01:00:00Z", "2026-09-30T02:00:00Z", 1, 0, 0),
        // 4 working days (10-08 … 10-12), 3 of them waiting for the applicant.
        ("seal", "印章刻制备案", "2026-09-30T02:00:00Z", "2026-10-12T03:00:00Z", 2, 3, 1),
        // Its clock never stopped (`keeps_clock`): 5 working days against 2 promised.
        ("tax_setup", "新办纳税人套餐", "2026-09-30T02:00:00Z", "2026-10-13T02:00:00Z", 2, 0, 5),
    ];
    for (item, title, start, end, promised, paused, used) in items {
        let span = spans_by_id[&item_span_id(&case, item).to_bytes()];
        assert_eq!(span.parent_span_id, case_span_id(&case), "{item}");
        assert_eq!(span.name, title);
        assert_eq!((span.start_time, span.end_time), (time(start), time(end)), "{item}");
        assert_eq!(text(span, "onetrip.item.name").as_deref(), Some(title));
        assert_eq!(
            (
                int(span, "onetrip.workdays.promised"),
                int(span, "onetrip.workdays.paused"),
                int(span, "onetrip.workdays.used")
            ),
            (Some(promised), Some(paused), Some(used)),
            "{item}"
        );
        assert_eq!(text(span, "onetrip.outcome").as_deref(), Some("completed"));
    }
    let registration = spans_by_id[&item_span_id(&case, "registration").to_bytes()];
    assert_eq!(text(registration, "onetrip.item.code").as_deref(), Some("000120101000"));
    assert_eq!(text(registration, "onetrip.department.name").as_deref(), Some("市场监督管理局"));
    // The tax office went overdue: a red warning on Mon 10-12, an error status, a span event.
    let tax = spans_by_id[&item_span_id(&case, "tax_setup").to_bytes()];
    assert_eq!(text(tax, "onetrip.warnings").as_deref(), Some("[\"red\"]"));
    assert_eq!(tax.status, Status::error("overdue"));
    let warning = tax.events.iter().find(|e| e.name == "warning").expect("a warning event");
    assert_eq!(warning.timestamp, time("2026-10-12T01:00:00Z"));
    let seal = spans_by_id[&item_span_id(&case, "seal").to_bytes()];
    assert_eq!(text(seal, "onetrip.warnings").as_deref(), Some("[]"), "the seal's clock was stopped");

    // The steps, children of their items, with each opening its own span.
    for (item, step, opening, start, end, outcome) in STEPS {
        let span = spans_by_id
            .get(&step_span_id(&case, item, step, opening).to_bytes())
            .unwrap_or_else(|| panic!("no span for {item}/{step} #{opening}"));
        assert_eq!(span.parent_span_id, item_span_id(&case, item), "{item}/{step}");
        assert_eq!((span.start_time, span.end_time), (time(start), time(end)), "{item}/{step} #{opening}");
        assert_eq!(text(span, "onetrip.outcome").as_deref(), Some(outcome), "{item}/{step} #{opening}");
        assert_eq!(text(span, "onetrip.step").as_deref(), Some(step));
        assert_eq!(int(span, "onetrip.step.opening"), Some(i64::from(opening)));
    }
    let step = |item, step, opening| spans_by_id[&step_span_id(&case, item, step, opening).to_bytes()];
    let events = |span: &SpanData| span.events.iter().map(|e| (e.name.to_string(), e.timestamp)).collect::<Vec<_>>();
    // 转办 and 退回 as span events, at their times; the return names where it went.
    assert_eq!(events(step("registration", "accept", 1)), [("transfer".to_string(), time("2026-09-30T01:10:00Z"))]);
    let review = step("registration", "review", 1);
    assert_eq!(events(review), [("return".to_string(), time("2026-09-30T01:30:00Z"))]);
    assert!(review.events[0].attributes.contains(&KeyValue::new("onetrip.step.to", "accept")));
    assert!(review.events[0].attributes.contains(&KeyValue::new("onetrip.command.label", "退回")));
    assert_eq!(text(review, "onetrip.step.name").as_deref(), Some("审查"));
    // The 补正 on the seal's acceptance: asked Thu 10-08, answered Mon 10-12.
    let seal_accept = step("seal", "accept", 1);
    assert_eq!(
        events(seal_accept),
        [
            ("request_supplement".to_string(), time("2026-10-08T02:00:00Z")),
            ("supplement_received".to_string(), time("2026-10-12T02:00:00Z")),
        ]
    );
    assert_eq!(
        (int(seal_accept, "onetrip.workdays.paused"), int(seal_accept, "onetrip.workdays.used")),
        (Some(3), Some(1))
    );
    // The tax review lasted four working days: 10-09, Sat 10-10, 10-12, 10-13.
    let tax_review = step("tax_setup", "review", 1);
    assert_eq!(
        (int(tax_review, "onetrip.workdays.used"), int(tax_review, "onetrip.workdays.paused")),
        (Some(4), Some(0))
    );
    assert_eq!(text(tax_review, "onetrip.department").as_deref(), Some("tax"));
    assert_eq!(text(tax_review, "onetrip.department.name").as_deref(), Some("税务局"));

    // No personal data anywhere in what was exported: names, attributes, events.
    for span in &spans {
        let all = format!("{span:?}");
        assert!(!all.contains(NAME) && !all.contains(ID_NUMBER), "personal data in {all}");
        // Free text of the commands stays out too: the 转办's reason and officer.
        assert!(!all.contains("王科长") && !all.contains("wang"), "free text in {all}");
    }
}

#[tokio::test]
async fn a_second_exporter_resumes_from_the_stored_cursor_without_loss_or_repeat() {
    let setup = setup("restart").await;
    let case = submit(&setup).await;
    first_part(&setup, &case).await;
    let first = InMemorySpanExporter::default();
    exporter(&first).catch_up(&setup.engine).await.expect("exports");
    let before: Vec<SpanData> = first.get_finished_spans().expect("spans");
    // The registration's six steps and the item, and the tax office's acceptance.
    assert_eq!(before.len(), 8, "{:#?}", before.iter().map(|s| &s.name).collect::<Vec<_>>());

    // The first exporter is gone (a restart); the case goes on; a new one starts from the
    // stored cursor, knowing nothing of the case but what the store tells it.
    second_part(&setup, &case).await;
    let second = InMemorySpanExporter::default();
    exporter(&second).catch_up(&setup.engine).await.expect("exports");
    let after = second.get_finished_spans().expect("spans");

    // A third, from the beginning under a cursor of its own, is the reference.
    let reference = InMemorySpanExporter::default();
    exporter(&reference).with_cursor("reference").catch_up(&setup.engine).await.expect("exports");
    let whole = reference.get_finished_spans().expect("spans");
    assert_eq!(whole.len(), 1 + 3 + STEPS.len());

    let ids = |spans: &[SpanData]| spans.iter().map(|s| s.span_context.span_id().to_bytes()).collect::<BTreeSet<_>>();
    assert!(ids(&before).is_disjoint(&ids(&after)), "a span sent twice");
    let mut resumed: Vec<SpanData> = before.into_iter().chain(after).collect();
    let mut whole = whole;
    resumed.sort_by_key(|s| s.span_context.span_id().to_bytes());
    whole.sort_by_key(|s| s.span_context.span_id().to_bytes());
    // Equal in every field: spans begun before the restart keep their real start times.
    assert_eq!(resumed, whole);

    // Caught up: nothing more to send.
    let again = InMemorySpanExporter::default();
    assert_eq!(exporter(&again).catch_up(&setup.engine).await.expect("exports"), 0);
}

#[tokio::test]
async fn a_sampler_that_drops_the_trace_drops_every_span_of_it_and_moves_on() {
    let setup = setup("sampler").await;
    let case = submit(&setup).await;
    first_part(&setup, &case).await;
    let memory = InMemorySpanExporter::default();
    let resource = Resource::builder_empty().build();
    let mut off = Exporter::new(memory.clone(), &resource, Sampler::AlwaysOff);
    assert_eq!(off.catch_up(&setup.engine).await.expect("exports"), 0);
    assert!(memory.get_finished_spans().expect("spans").is_empty());
    // The cursor moved all the same: a later exporter does not send what was dropped.
    let later = InMemorySpanExporter::default();
    assert_eq!(exporter(&later).catch_up(&setup.engine).await.expect("exports"), 0);
}
