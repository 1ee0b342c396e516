//! Nanoseconds per decision of the pure GCRA functions, with no Redis around them: the floor
//! under every `RL.ALLOW`, whose server-side cost is mostly Redis's own key handling.
//!
//! ```text
//! cargo bench -p rl-core --bench decide                   (make bench runs it)
//! DECIDE_ITERS=100000 cargo bench ...                     (a quick run; default 10^7)
//! ```
//!
//! Each case runs its loop 5 times and prints the median, in ns per call; the state is carried
//! from call to call (as a client's TAT is) so the compiler cannot hoist the work out of the
//! loop.

use std::hint::black_box;
use std::time::Instant;

use rl_core::gcra::{decide, Decision, Tat};
use rl_core::policy::Policy;
use rl_core::verdict::evaluate;

const ROUNDS: usize = 5;
/// 2023-11-14, in Unix ms: an instant of the right magnitude.
const T0_MS: u64 = 1_700_000_000_000;

/// Median ns per call of `body(n)` over `iters` calls per round; `n` counts every call of
/// every round, so a clock derived from it never goes back between rounds.
fn time_ns(iters: u64, mut body: impl FnMut(u64)) -> f64 {
    let mut n = 0u64;
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                body(n);
                n += 1;
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

/// A client sending one request every `step_ms` under `policy`: ns per `decide`, and the
/// fraction of requests allowed (to show which path was measured). With `carry`, each call
/// starts from the TAT the previous one left; without, every call starts from `start`.
fn decide_case(policy: Policy, start: Tat, step_ms: u64, carry: bool, iters: u64) -> (f64, f64) {
    let mut tat = start;
    let mut allowed = 0u64;
    let ns = time_ns(iters, |i| {
        let now = T0_MS + i * step_ms;
        if let Decision::Allowed(t) = decide(black_box(&policy), black_box(tat), now, 1) {
            if carry {
                tat = t;
            }
            allowed += 1;
        }
    });
    (ns, allowed as f64 / (iters * ROUNDS as u64) as f64)
}

fn evaluate_case(policy: Policy, step_ms: u64, iters: u64) -> (f64, f64) {
    let mut tat = Tat::EMPTY;
    let mut allowed = 0u64;
    let ns = time_ns(iters, |i| {
        let v = evaluate(black_box(&policy), black_box(tat), T0_MS + i * step_ms, 1);
        if let Decision::Allowed(t) = v.decision {
            tat = t;
            allowed += 1;
        }
        black_box(v.remaining);
    });
    (ns, allowed as f64 / (iters * ROUNDS as u64) as f64)
}

fn main() {
    let iters = std::env::var("DECIDE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000u64);
    let policy = |limit, window_ms, burst| match Policy::new(limit, window_ms, burst) {
        Ok(p) => p,
        Err(e) => panic!("bad benchmark policy: {e:?}"),
    };
    let per_minute = policy(100, 60_000, 0);
    let thirds = policy(3, 1000, 0);
    // A TAT written under limit 7: a stored fraction in another unit, the rounding path.
    let other_unit = match Tat::new(T0_MS, 3, 7) {
        Some(t) => t,
        None => panic!("bad benchmark TAT"),
    };
    let cases: [(&str, (f64, f64)); 6] = [
        (
            "decide: 100 per 60000 ms, allowed (1 request / 600 ms)",
            decide_case(per_minute, Tat::EMPTY, 600, true, iters),
        ),
        (
            "decide: 100 per 60000 ms, hot client (denied)",
            decide_case(per_minute, Tat::EMPTY, 0, true, iters),
        ),
        (
            "decide: 3 per 1000 ms (T = 333.3.. ms), allowed",
            decide_case(thirds, Tat::EMPTY, 334, true, iters),
        ),
        (
            "decide: TAT stored under another limit (rounding path)",
            decide_case(per_minute, other_unit, 0, false, iters),
        ),
        (
            "verdict::evaluate: 100 per 60000 ms, allowed",
            evaluate_case(per_minute, 600, iters),
        ),
        (
            "verdict::evaluate: 100 per 60000 ms, hot client (denied)",
            evaluate_case(per_minute, 0, iters),
        ),
    ];
    println!("decide micro-benchmark: median of {ROUNDS} rounds of {iters} calls");
    for (name, (ns, allowed)) in cases {
        println!(
            "{ns:8.2} ns/decision  {:5.1}% allowed  {name}",
            allowed * 100.0
        );
    }
}
