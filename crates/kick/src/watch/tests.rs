//! The watcher driven by a scripted orchestrator.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use orchestrator_client::Error as ClientError;
use orchestrator_types::{ApiError, EventList, Job, NodeList, StopResponse};
use serde_json::json;

use super::*;
use crate::render::notice;
use orchestrator_types::NodeState;
use serde_json::Value;

/// A scripted orchestrator: events and job answers are popped in order
/// (the last one repeats), calls are recorded.
#[derive(Default)]
struct Fake {
    events: Mutex<VecDeque<Result<EventList, ClientError>>>,
    jobs: Mutex<VecDeque<Result<Job, ClientError>>>,
    nodes: Vec<Value>,
    calls: Mutex<Vec<String>>,
}

fn job(state: &str, n: u64) -> Job {
    serde_json::from_value(
        json!({"id": "u", "name": "7", "state": state, "type": "task",
        "options": {"task": "t::x", "noop": false}, "node_count": n,
        "node_states": {"finished": n}}),
    )
    .unwrap()
}

/// A job read `states.len()` times, in these states.
fn job_reads(states: &[&str], n: u64) -> Mutex<VecDeque<Result<Job, ClientError>>> {
    Mutex::new(states.iter().map(|s| Ok(job(s, n))).collect())
}

fn events(items: Value) -> EventList {
    serde_json::from_value(json!({"items": items})).unwrap()
}

fn ev(id: u64, ty: &str, node: &str, detail: Value) -> Value {
    json!({"id": id.to_string(), "type": ty, "timestamp": "2026-01-01T00:00:00Z",
           "details": {"node": node, "detail": detail}, "message": ""})
}

fn api_err(status: u16, kind: &str) -> ClientError {
    ClientError::Api {
        status,
        error: ApiError::new(kind, "nope", None),
        hint: None,
    }
}

fn pop<T: Clone>(q: &Mutex<VecDeque<Result<T, ClientError>>>) -> Result<T, ClientError> {
    let mut q = q.lock().unwrap();
    if q.len() > 1 {
        q.pop_front().unwrap()
    } else {
        match q.front().unwrap() {
            Ok(v) => Ok(v.clone()),
            Err(ClientError::Api { status, error, .. }) => Err(ClientError::Api {
                status: *status,
                error: error.clone(),
                hint: None,
            }),
            Err(_) => Err(ClientError::Timeout {
                url: "u".into(),
                after: Duration::from_millis(1),
            }),
        }
    }
}

impl Api for Arc<Fake> {
    async fn job(&self, _job: &str) -> Result<Job, ClientError> {
        self.calls.lock().unwrap().push("job".into());
        pop(&self.jobs)
    }
    async fn events(&self, _job: &str, start: Option<u64>) -> Result<EventList, ClientError> {
        self.calls.lock().unwrap().push(format!("events {start:?}"));
        pop(&self.events)
    }
    async fn nodes_page(
        &self,
        _job: &str,
        offset: u64,
        limit: u64,
    ) -> Result<NodeList, ClientError> {
        self.calls.lock().unwrap().push(format!("nodes {offset}"));
        let items: Vec<Value> = self
            .nodes
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect();
        Ok(serde_json::from_value(json!({"items": items})).unwrap())
    }
    async fn recent_nodes(
        &self,
        _job: &str,
        state: NodeState,
        limit: u64,
    ) -> Result<NodeList, ClientError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("recent {} {limit}", state.as_str()));
        // Newest first: the fake's nodes ended in list order.
        let items: Vec<Value> = self
            .nodes
            .iter()
            .rev()
            .filter(|n| n["state"] == state.as_str())
            .take(limit as usize)
            .cloned()
            .collect();
        Ok(serde_json::from_value(json!({"items": items})).unwrap())
    }
    async fn stop(&self, _job: &str, force: bool) -> Result<StopResponse, ClientError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("stop force={force}"));
        Ok(serde_json::from_value(json!({"job": {"id": "u", "name": "7", "nodes": {}}})).unwrap())
    }
}

#[derive(Default)]
struct Record(Vec<String>);

impl Reporter for Record {
    fn report(&mut self, event: WatchEvent<'_>) -> std::io::Result<()> {
        match event {
            WatchEvent::Started(job) => self.0.push(format!("started {}", job.name)),
            WatchEvent::Progress(_) => {}
            WatchEvent::NodeDone(node) => {
                self.0
                    .push(format!("live {} {}", node.name, node.outcome.as_str()))
            }
            WatchEvent::Notice(n) => self.0.push(format!("notice {}", notice::text(n))),
            WatchEvent::ResultsBegin(_) => self.0.push("results".into()),
            WatchEvent::Result { node, seen_live } => self.0.push(format!(
                "result {} {} live={seen_live}",
                node.name,
                node.outcome.as_str()
            )),
            WatchEvent::Finished {
                summary, exit_code, ..
            } => self.0.push(format!("finish {} {exit_code}", summary.total)),
        }
        Ok(())
    }
}

/// Follows `job` as `kick job watch` does; the exit code.
async fn watch(
    api: &Arc<Fake>,
    job: &str,
    rec: &mut Record,
    ints: &mut Interrupts,
    cfg: &WatchConfig,
) -> Result<u8, Error> {
    let mut f = Follower::new(api, rec, ints, cfg, ResultMode::parsed(|_, _| true));
    Ok(f.follow(job).await?.exit_code)
}

/// Shows `job` as `kick job show` does; the exit code.
async fn show(
    api: &Arc<Fake>,
    job: &str,
    rec: &mut Record,
    ints: &mut Interrupts,
    cfg: &WatchConfig,
) -> Result<u8, Error> {
    let mut f = Follower::new(api, rec, ints, cfg, ResultMode::parsed(|_, _| true));
    Ok(f.show(job).await?.exit_code)
}

fn fast() -> WatchConfig {
    WatchConfig {
        poll_min: Duration::from_millis(1),
        poll_busy: Duration::from_millis(2),
        poll_max: Duration::from_millis(5),
        page_size: 2,
        give_up: Duration::from_millis(200),
        job_check: Duration::from_secs(60),
    }
}

fn node(name: &str, state: &str, result: Value) -> Value {
    json!({"name": name, "state": state, "result": result, "details": {}})
}

fn three_nodes() -> Vec<Value> {
    vec![
        node("a", "finished", json!({"status": "changed"})),
        node("b", "finished", json!({"status": "unchanged"})),
        node("c", "failed", json!({"_error": {"kind": "k", "msg": "m"}})),
    ]
}

#[test]
fn polls_are_quick_at_first_back_off_when_quiet_and_stay_calm_when_busy() {
    let cfg = WatchConfig::default();
    let ms = Duration::from_millis;
    assert_eq!(poll_interval(&cfg, ms(0), ms(0)), ms(20));
    // A job quiet for 2 s is looked at every 50 ms: seen ~25 ms late.
    assert_eq!(poll_interval(&cfg, ms(2000), ms(2000)), ms(50));
    assert_eq!(poll_interval(&cfg, ms(600_000), ms(600_000)), ms(1000));
    // Events just came, early on and an hour into a busy job.
    assert_eq!(poll_interval(&cfg, ms(2000), ms(0)), ms(50));
    assert_eq!(poll_interval(&cfg, ms(3_600_000), ms(0)), ms(250));
    let mut last = Duration::ZERO;
    for q in (0..120_000).step_by(500) {
        let i = poll_interval(&cfg, ms(120_000), ms(q));
        assert!(i >= last && i <= cfg.poll_max, "{q}: {i:?}");
        last = i;
    }
    // Knobs set against each other do not panic; poll_max wins.
    let odd = WatchConfig {
        poll_min: ms(500),
        poll_busy: ms(10),
        poll_max: ms(100),
        ..WatchConfig::default()
    };
    assert_eq!(poll_interval(&odd, ms(0), ms(0)), ms(100));
}

#[tokio::test]
async fn nodes_are_reported_as_their_events_arrive_with_a_moving_cursor() {
    let fake = Arc::new(Fake {
        jobs: job_reads(&["running", "failed"], 3),
        events: Mutex::new(VecDeque::from([
            Ok(events(json!([
                ev(1, "node_running", "a", json!({})),
                ev(2, "node_finished", "a", json!({"status": "changed"}))
            ]))),
            Ok(events(json!([]))),
            Ok(events(json!([
                ev(3, "node_finished", "b", json!({"status": "unchanged"})),
                ev(
                    4,
                    "node_failed",
                    "c",
                    json!({"_error": {"kind": "k", "msg": "m"}})
                ),
                ev(5, "job_finished", "", json!({}))
            ]))),
        ])),
        nodes: three_nodes(),
        ..Fake::default()
    });
    let mut rec = Record::default();
    let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
        .await
        .unwrap();
    assert_eq!(code, 6);
    assert_eq!(
        rec.0,
        vec![
            "started 7",
            "live a changed",
            "live b unchanged",
            "live c failed",
            "results",
            "result a changed live=true",
            "result b unchanged live=true",
            "result c failed live=true",
            "finish 3 6",
        ]
    );
    let calls = fake.calls.lock().unwrap();
    let ev_calls: Vec<&String> = calls.iter().filter(|c| c.starts_with("events")).collect();
    assert_eq!(
        ev_calls,
        ["events None", "events Some(3)", "events Some(3)"]
    );
    assert!(calls.contains(&"nodes 2".to_string()), "paged: {calls:?}");
}

#[tokio::test]
async fn nodes_whose_events_carry_no_result_are_read_from_their_records_live() {
    let fake = Arc::new(Fake {
        jobs: job_reads(&["running", "failed"], 3),
        events: Mutex::new(VecDeque::from([
            Ok(events(json!([
                ev(1, "node_finished", "a", json!({})),
                ev(2, "node_failed", "c", json!({}))
            ]))),
            Ok(events(json!([ev(3, "node_finished", "b", json!({}))]))),
            Ok(events(json!([ev(4, "job_finished", "", json!({}))]))),
        ])),
        nodes: three_nodes(),
        ..Fake::default()
    });
    let mut rec = Record::default();
    let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
        .await
        .unwrap();
    assert_eq!(code, 6);
    assert_eq!(
        rec.0,
        vec![
            "started 7",
            // Finished nodes are looked up before failed ones.
            "live a changed",
            "live c failed",
            "live b unchanged",
            "results",
            "result a changed live=true",
            "result b unchanged live=true",
            "result c failed live=true",
            "finish 3 6",
        ]
    );
    let calls = fake.calls.lock().unwrap();
    let recent: Vec<&String> = calls.iter().filter(|c| c.starts_with("recent")).collect();
    assert_eq!(
        recent,
        [
            "recent finished 10",
            "recent failed 10",
            "recent finished 10"
        ]
    );
}

#[tokio::test]
async fn once_every_node_has_ended_the_job_is_checked_at_each_poll() {
    // No job_finished event ever comes; with job_check at 60 s only the
    // nodes having all ended makes the watcher read the job.
    let fake = Arc::new(Fake {
        jobs: job_reads(&["running", "running", "finished"], 2),
        events: Mutex::new(VecDeque::from([
            Ok(events(json!([ev(
                1,
                "node_finished",
                "a",
                json!({"status": "unchanged"})
            )]))),
            Ok(events(json!([ev(
                2,
                "node_finished",
                "b",
                json!({"status": "unchanged"})
            )]))),
            Ok(events(json!([]))),
        ])),
        nodes: vec![
            node("a", "finished", json!({"status": "unchanged"})),
            node("b", "finished", json!({"status": "unchanged"})),
        ],
        ..Fake::default()
    });
    let mut rec = Record::default();
    let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
        .await
        .unwrap();
    assert_eq!(code, 0);
    let calls = fake.calls.lock().unwrap();
    let polls: Vec<&str> = calls.iter().map(String::as_str).take(6).collect();
    assert_eq!(
        polls,
        [
            "job",
            "events None",
            "events Some(2)",
            "job",
            "events Some(3)",
            "job"
        ],
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_record_that_never_comes_is_looked_up_twice_then_left_to_the_results() {
    // The job runs on after its node ended (its end is checked at each poll then).
    let fake = Arc::new(Fake {
        jobs: job_reads(
            &[
                "running", "running", "running", "running", "running", "running", "finished",
            ],
            1,
        ),
        events: Mutex::new(VecDeque::from([
            Ok(events(json!([ev(1, "node_finished", "a", json!({}))]))),
            Ok(events(json!([]))),
            Ok(events(json!([]))),
            Ok(events(json!([]))),
            Ok(events(json!([]))),
            Ok(events(json!([ev(2, "job_finished", "", json!({}))]))),
        ])),
        nodes: vec![node("a", "finished", Value::Null)],
        ..Fake::default()
    });
    let mut rec = Record::default();
    watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
        .await
        .unwrap();
    let calls = fake.calls.lock().unwrap();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("recent")).count(),
        2,
        "{calls:?}"
    );
    assert!(rec.0.iter().all(|l| !l.starts_with("live")), "{:?}", rec.0);
    assert!(
        rec.0.contains(&"result a unchanged live=false".to_owned()),
        "{:?}",
        rec.0
    );
}

#[tokio::test]
async fn without_events_the_job_is_followed_and_nodes_reported_at_the_end() {
    let fake = Arc::new(Fake {
        jobs: job_reads(&["running", "running", "finished"], 3),
        events: Mutex::new(VecDeque::from([
            Err(api_err(404, "puppetlabs.orchestrator/unknown-job")),
            Ok(events(json!([]))),
        ])),
        nodes: three_nodes(),
        ..Fake::default()
    });
    let mut rec = Record::default();
    let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
        .await
        .unwrap();
    assert_eq!(code, 6);
    assert!(
        rec.0[1].starts_with("notice Events of job 7 are unavailable"),
        "{:?}",
        rec.0
    );
    assert!(rec.0.contains(&"result a changed live=false".to_string()));
    assert_eq!(rec.0.last().unwrap(), "finish 3 6");
}

#[tokio::test]
async fn ctrl_c_stops_then_forces_then_detaches() {
    let fake = Arc::new(Fake {
        jobs: Mutex::new(VecDeque::from([Ok(job("running", 3))])),
        events: Mutex::new(VecDeque::from([Ok(events(json!([])))])),
        nodes: three_nodes(),
        ..Fake::default()
    });
    let (tx, mut ints) = Interrupts::channel();
    let mut rec = Record::default();
    let presser = async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(()).unwrap();
        }
    };
    let cfg = fast();
    let (code, ()) = tokio::join!(watch(&fake, "7", &mut rec, &mut ints, &cfg), presser);
    assert_eq!(code.unwrap(), EXIT_DETACHED);
    let calls = fake.calls.lock().unwrap();
    let stops: Vec<&String> = calls.iter().filter(|c| c.starts_with("stop")).collect();
    assert_eq!(stops, ["stop force=false", "stop force=true"]);
    let notices: Vec<&String> = rec.0.iter().filter(|l| l.starts_with("notice")).collect();
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(notices[0].contains("asked the orchestrator to stop job 7"));
    assert!(notices[1].contains("force-stopping job 7"));
    assert!(notices[2].contains("kick job watch 7"));
}

#[tokio::test]
async fn ctrl_c_while_results_are_listed_ends_the_listing() {
    let fake = Arc::new(Fake {
        jobs: Mutex::new(VecDeque::from([Ok(job("failed", 3))])),
        nodes: three_nodes(),
        ..Fake::default()
    });
    let (tx, mut ints) = Interrupts::channel();
    tx.send(()).unwrap();
    let mut rec = Record::default();
    let code = show(&fake, "7", &mut rec, &mut ints, &fast())
        .await
        .unwrap();
    assert_eq!(code, EXIT_DETACHED);
    assert_eq!(rec.0[..2], ["started 7", "results"]);
    assert_eq!(rec.0.len(), 3, "{:?}", rec.0);
    assert!(rec.0[2].contains("kick job show 7"), "{:?}", rec.0);
    assert!(
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .all(|c| !c.starts_with("stop"))
    );
}

#[tokio::test]
async fn a_ctrl_c_pressed_as_the_job_ends_does_not_cut_the_results_short() {
    let fake = Arc::new(Fake {
        jobs: Mutex::new(VecDeque::from([Ok(job("failed", 3))])),
        nodes: three_nodes(),
        ..Fake::default()
    });
    let (tx, mut ints) = Interrupts::channel();
    tx.send(()).unwrap();
    let mut rec = Record::default();
    let code = watch(&fake, "7", &mut rec, &mut ints, &fast())
        .await
        .unwrap();
    assert_eq!(code, 6);
    assert_eq!(rec.0.last().map(String::as_str), Some("finish 3 6"));
}

#[tokio::test]
async fn an_expired_token_mid_watch_ends_with_a_clear_error() {
    let fake = Arc::new(Fake {
        jobs: Mutex::new(VecDeque::from([Ok(job("running", 3))])),
        events: Mutex::new(VecDeque::from([
            Ok(events(json!([]))),
            Err(api_err(401, "puppetlabs.rbac/token-expired")),
        ])),
        ..Fake::default()
    });
    let err = watch(
        &fake,
        "7",
        &mut Record::default(),
        &mut Interrupts::none(),
        &fast(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("token-expired") && msg.contains("kick job watch 7"),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn an_orchestrator_that_stops_answering_is_given_up_on() {
    let fake = Arc::new(Fake {
        jobs: Mutex::new(VecDeque::from([
            Ok(job("running", 3)),
            Err(ClientError::Timeout {
                url: "u".into(),
                after: Duration::from_millis(1),
            }),
        ])),
        events: Mutex::new(VecDeque::from([
            Ok(events(json!([]))),
            Err(ClientError::Timeout {
                url: "u".into(),
                after: Duration::from_millis(1),
            }),
        ])),
        ..Fake::default()
    });
    let err = watch(
        &fake,
        "7",
        &mut Record::default(),
        &mut Interrupts::none(),
        &fast(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::LostContact { .. }), "{err}");
    assert!(err.to_string().contains("kick job watch 7"));
}

#[tokio::test]
async fn a_server_that_ignores_the_cursor_does_not_duplicate_nodes() {
    let batch = json!([ev(1, "node_finished", "a", json!({"status": "unchanged"}))]);
    let fake = Arc::new(Fake {
        jobs: job_reads(&["running", "finished"], 1),
        events: Mutex::new(VecDeque::from([
            Ok(events(batch.clone())),
            Ok(events(batch)),
            Ok(events(json!([ev(2, "job_finished", "", json!({}))]))),
        ])),
        nodes: vec![node("a", "finished", json!({"status": "unchanged"}))],
        ..Fake::default()
    });
    let mut rec = Record::default();
    let code = watch(&fake, "7", &mut rec, &mut Interrupts::none(), &fast())
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert_eq!(rec.0.iter().filter(|l| l.starts_with("live a")).count(), 1);
}
