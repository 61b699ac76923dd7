//! `orchestrator-bench`: dispatch throughput, exit-to-event latency and memory of
//! the Kick orchestrator, run as a separate process so its RSS is its own.
//!
//! Usage: `orchestrator-bench [--nodes 1000] [--concurrency 100] [--held 10000]`
//! (run from a release build: `make bench`). The service binary is taken from
//! next to this one.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

mod exits;
use exits::Exits;

const TOKEN: &str = "bench-token";

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(dir: &Path, concurrency: usize) -> Result<Self, String> {
        let exe = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("kick-orchestrator");
        let mut child = Command::new(&exe)
            .args(["--plain", "--listen", "127.0.0.1:0", "--concurrency"])
            .arg(concurrency.to_string())
            .arg("--tokens-file")
            .arg(dir.join("tokens"))
            .arg("--inventory")
            .arg(dir.join("inventory.json"))
            .arg("--modulepath")
            .arg(dir.join("modules"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e} (build it first)", exe.display()))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let base = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("service-url="))
            .ok_or_else(|| format!("unexpected first line: {line}"))?
            .to_owned();
        Ok(Self { child, base })
    }

    fn status_kib(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn setup(dir: &Path, nodes: usize) -> std::io::Result<()> {
    let tasks = dir.join("modules/bench/tasks");
    std::fs::create_dir_all(&tasks)?;
    std::fs::write(dir.join("tokens"), format!("{TOKEN}\n"))?;
    let inv: Vec<Value> = (0..nodes)
        .map(|i| json!({"certname": format!("node-{i:05}.bench")}))
        .collect();
    std::fs::write(
        dir.join("inventory.json"),
        serde_json::to_vec(&json!({ "nodes": inv }))?,
    )?;
    let script = |name: &str, body: &str| -> std::io::Result<()> {
        let p = tasks.join(name);
        let mut f = std::fs::File::create(&p)?;
        f.write_all(body.as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
    };
    script("trivial.sh", "#!/bin/sh\necho '{\"ok\": true}'\n")?;
    // The stamp task is this binary under another name: it prints the time
    // and its pid and exits at once. The stamp is taken just before the exit;
    // the kernel's own exit time (see `exits`) is the exact one.
    std::os::unix::fs::symlink(std::env::current_exe()?, tasks.join("stamp"))?;
    Ok(())
}

async fn start_job(
    c: &reqwest::Client,
    s: &Service,
    task: &str,
    n: usize,
) -> Result<String, String> {
    let nodes: Vec<String> = (0..n).map(|i| format!("node-{i:05}.bench")).collect();
    let r = c
        .post(format!("{}/orchestrator/v1/command/task", s.base))
        .header("X-Authentication", TOKEN)
        .json(&json!({"task": task, "params": {}, "scope": {"nodes": nodes}}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let b: Value = r.json().await.map_err(|e| e.to_string())?;
    b["job"]["name"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("job not started: {b}"))
}

async fn wait_job(c: &reqwest::Client, s: &Service, job: &str) -> Result<Value, String> {
    loop {
        let j: Value = c
            .get(format!("{}/orchestrator/v1/jobs/{job}", s.base))
            .header("X-Authentication", TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if matches!(j["state"].as_str(), Some("finished" | "failed" | "stopped")) {
            return Ok(j);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Exit-to-readable latencies of one job, in ms, sorted.
#[derive(Default)]
struct Latencies {
    /// From the kernel's exit time.
    kernel: Vec<f64>,
    /// From the time the task printed just before exiting.
    stamp: Vec<f64>,
    /// Nodes whose exit the kernel did not report (events dropped).
    missed: usize,
}

/// Runs the stamp task on `n` nodes, following the events cursor, and
/// measures each node's exit-to-readable latency.
async fn latency(
    c: &reqwest::Client,
    svc: &Service,
    n: usize,
    exits: Option<&Exits>,
) -> Result<Latencies, String> {
    if let Some(x) = exits {
        x.clear();
    }
    let job = start_job(c, svc, "bench::stamp", n).await?;
    let mut start = 1u64;
    let mut lat = Latencies::default();
    let mut seen_at = Vec::new();
    'poll: loop {
        let b: Value = c
            .get(format!(
                "{}/orchestrator/v1/jobs/{job}/events?start={start}",
                svc.base
            ))
            .header("X-Authentication", TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let (seen, seen_mono) = (now_ns(), exits::monotonic_ns());
        for e in b["items"].as_array().into_iter().flatten() {
            let detail = &e["details"]["detail"];
            if e["type"] == "node_finished"
                && let Some(t) = detail["t"].as_u64()
            {
                lat.stamp
                    .push((seen.saturating_sub(t as u128)) as f64 / 1e6);
                match detail["pid"].as_u64().and_then(|p| u32::try_from(p).ok()) {
                    Some(pid) => seen_at.push((pid, seen_mono)),
                    None => lat.missed += 1,
                }
            }
            if e["type"] == "job_finished" {
                break 'poll;
            }
        }
        start = b["next-events"]["event"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(start);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The exits thread may not have read an exit yet when its event was
    // already readable: look the times up once it has caught up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (pid, seen_mono) in seen_at {
        match exits.and_then(|x| x.exit_time(pid)) {
            Some(t) => lat.kernel.push(seen_mono.saturating_sub(t) as f64 / 1e6),
            None => lat.missed += 1,
        }
    }
    lat.kernel.sort_by(f64::total_cmp);
    lat.stamp.sort_by(f64::total_cmp);
    Ok(lat)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() -> Result<(), String> {
    if std::env::args()
        .next()
        .is_some_and(|a| a.ends_with("/stamp"))
    {
        println!("{{\"t\": {}, \"pid\": {}}}", now_ns(), std::process::id());
        std::process::exit(0);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(bench())
}

async fn bench() -> Result<(), String> {
    let nodes = arg("--nodes", 1000);
    let concurrency = arg("--concurrency", 100);
    let held = arg("--held", 10_000);
    let latency_nodes = arg("--latency-nodes", 300);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    setup(dir.path(), nodes.max(held).max(latency_nodes)).map_err(|e| e.to_string())?;
    let c = reqwest::Client::new();

    // 1. Throughput.
    let svc = Service::start(dir.path(), concurrency)?;
    let t0 = Instant::now();
    let job = start_job(&c, &svc, "bench::trivial", nodes).await?;
    let j = wait_job(&c, &svc, &job).await?;
    let secs = t0.elapsed().as_secs_f64();
    if j["state"] != "finished" {
        return Err(format!(
            "throughput job ended {}: {}",
            j["state"], j["node_states"]
        ));
    }
    let rate = nodes as f64 / secs;
    let hwm_throughput = svc.status_kib("VmHWM:");

    // 2. Exit-to-event latency, under that load and under a light one.
    let exits = match Exits::listen() {
        Ok(x) => Some(x),
        Err(e) => {
            eprintln!(
                "note: kernel exit times unavailable ({e}); latencies start at the tasks' own stamps"
            );
            None
        }
    };
    let lat = latency(&c, &svc, latency_nodes, exits.as_ref()).await?;
    drop(svc);
    let light = 10;
    let _ = std::fs::remove_dir_all(dir.path().join("state"));
    let svc = Service::start(dir.path(), light)?;
    let lat_light = latency(&c, &svc, latency_nodes, exits.as_ref()).await?;
    drop(svc);
    // The kernel's figures when it gave them for every node.
    let pick = |l: &Latencies| {
        if l.missed == 0 && !l.kernel.is_empty() {
            (l.kernel.clone(), "the kernel's exit time")
        } else {
            (l.stamp.clone(), "the task's own stamp")
        }
    };
    let (lat_main, from) = pick(&lat);
    let (lat_light_main, from_light) = pick(&lat_light);

    // 3. Memory with many finished nodes held.
    let _ = std::fs::remove_dir_all(dir.path().join("state"));
    let svc = Service::start(dir.path(), concurrency)?;
    let t1 = Instant::now();
    let job = start_job(&c, &svc, "bench::trivial", held).await?;
    let j = wait_job(&c, &svc, &job).await?;
    let held_secs = t1.elapsed().as_secs_f64();
    // Read every page once, as a client collecting results would.
    for off in (0..held).step_by(1000) {
        let _ = c
            .get(format!(
                "{}/orchestrator/v1/jobs/{job}/nodes?limit=1000&offset={off}",
                svc.base
            ))
            .header("X-Authentication", TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .bytes()
            .await;
    }
    let rss_held = svc.status_kib("VmRSS:");
    let hwm_held = svc.status_kib("VmHWM:");

    let report = json!({
        "nodes": nodes, "concurrency": concurrency,
        "throughput_node_runs_per_s": (rate * 10.0).round() / 10.0,
        "throughput_wall_s": (secs * 1000.0).round() / 1000.0,
        "peak_rss_mib_throughput": hwm_throughput as f64 / 1024.0,
        "latency_nodes": latency_nodes,
        "latency_from": from,
        "latency_ms_median": percentile(&lat_main, 0.5),
        "latency_ms_p99": percentile(&lat_main, 0.99),
        "latency_ms_max": lat_main.last().copied().unwrap_or(f64::NAN),
        "latency_stamp_ms_median": percentile(&lat.stamp, 0.5),
        "latency_stamp_ms_p99": percentile(&lat.stamp, 0.99),
        "latency_exits_missed": lat.missed,
        "latency_light_concurrency": light,
        "latency_light_from": from_light,
        "latency_light_ms_median": percentile(&lat_light_main, 0.5),
        "latency_light_ms_p99": percentile(&lat_light_main, 0.99),
        "latency_light_stamp_ms_p99": percentile(&lat_light.stamp, 0.99),
        "held_nodes": held, "held_state": j["state"], "held_wall_s": held_secs,
        "rss_mib_held": rss_held as f64 / 1024.0,
        "peak_rss_mib_held": hwm_held as f64 / 1024.0,
    });
    println!("orchestrator-bench (2-core figures go in docs/benchmarks.md)");
    println!(
        "  dispatch: {nodes} nodes, concurrency {concurrency}: {rate:.0} node-runs/s ({secs:.2} s), service peak RSS {:.1} MiB",
        hwm_throughput as f64 / 1024.0
    );
    println!(
        "  exit -> node_finished readable ({latency_nodes} nodes, events polled every ~1 ms), from {from}: concurrency {concurrency}: median {:.2} ms, p99 {:.2} ms; concurrency {light}: median {:.2} ms, p99 {:.2} ms",
        percentile(&lat_main, 0.5),
        percentile(&lat_main, 0.99),
        percentile(&lat_light_main, 0.5),
        percentile(&lat_light_main, 0.99)
    );
    println!(
        "    (from the task's own stamp, taken before it exits: concurrency {concurrency}: median {:.2} ms, p99 {:.2} ms; concurrency {light}: p99 {:.2} ms)",
        percentile(&lat.stamp, 0.5),
        percentile(&lat.stamp, 0.99),
        percentile(&lat_light.stamp, 0.99)
    );
    if from != from_light || lat.missed + lat_light.missed > 0 {
        println!(
            "    kernel exit times missing for {} + {} nodes",
            lat.missed, lat_light.missed
        );
    }
    println!(
        "  {held} finished nodes held: RSS {:.1} MiB (peak {:.1} MiB); run took {held_secs:.1} s",
        rss_held as f64 / 1024.0,
        hwm_held as f64 / 1024.0
    );
    println!("{report}");
    Ok(())
}
