//! Load test of `deepsent serve` (loopback only, a bounded number of requests):
//!
//!     deepsent serve --model MODEL --addr 127.0.0.1:8080 &
//!     cargo run --release --example serve_load -- http://127.0.0.1:8080 IMAGE 2000 16 [SERVER_PID]
//!
//! Sends REQUESTS posts of IMAGE from CONCURRENCY threads; prints requests/s,
//! p50/p99 latency, the errors, and (given the server's PID) its resident
//! memory before, after and at peak, from /proc.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn memory(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok());
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: serve_load URL IMAGE REQUESTS CONCURRENCY [SERVER_PID]");
        std::process::exit(2);
    }
    let url = format!("{}/v1/predict", args[1]);
    let image = Arc::new(std::fs::read(&args[2]).expect("reading the image"));
    let (requests, concurrency): (usize, usize) = (args[3].parse().unwrap(), args[4].parse().unwrap());
    let pid = args.get(5).cloned();
    let before = pid.as_deref().and_then(memory);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let (url, image, next, latencies, errors) = (url.clone(), image.clone(), next.clone(), latencies.clone(), errors.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(120)).build();
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let t = Instant::now();
                    match agent.post(&url).set("Content-Type", "image/jpeg").send_bytes(&image) {
                        Ok(r) => {
                            let _ = r.into_string();
                            latencies.lock().unwrap().push(t.elapsed());
                        }
                        Err(e) => errors.lock().unwrap().push(e.to_string()),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct = |p: f64| l.get(((l.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let errors = errors.lock().unwrap();
    println!("{} requests, concurrency {concurrency}: {:.1} requests/s, p50 {:.0} ms, p99 {:.0} ms, {} errors", l.len() + errors.len(), l.len() as f64 / wall, pct(0.5), pct(0.99), errors.len());
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    if let (Some(pid), Some((rss0, _))) = (pid.as_deref(), before) {
        if let Some((rss1, peak)) = memory(pid) {
            println!("server memory: RSS {} MB before, {} MB after, peak {} MB", rss0 / 1024, rss1 / 1024, peak / 1024);
        }
    }
}
