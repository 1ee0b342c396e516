//! Nanoseconds per decision of the pure pipeline (decide over a policy, record, and the
//! numbers `RL.THROTTLE` replies), with no Redis around it: the floor under every `RL.ALLOW`,
//! whose server-side cost is mostly Redis's own key handling.
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

use rl_core::decide::{decide, numbers, record};
use rl_core::kinds::gcra::{Gcra, Tat};
use rl_core::kinds::sliding::Sliding;
use rl_core::kinds::{Limit, Usage};
use rl_core::policy::Policy;
use rl_core::state::Usages;

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

/// A client sending one request every `step_ms` under `policy`: ns per decision (recorded
/// when allowed; with `told`, also the numbers RL.THROTTLE replies), and the fraction allowed
/// (to show which path was measured). With `carry`, each call starts from the usage the
/// previous one left; without, every call starts from `start`.
fn case(
    policy: Policy,
    start: &Usages,
    step_ms: u64,
    carry: bool,
    told: bool,
    iters: u64,
) -> (f64, f64) {
    let mut usages = start.clone();
    let mut allowed = 0u64;
    let ns = time_ns(iters, |i| {
        let now = T0_MS + i * step_ms;
        let p = black_box(&policy);
        let d = decide(p, &usages, now, 1);
        if told {
            black_box(numbers(p, &usages, Some(&d), now, 1).remaining);
        }
        if d.allowed {
            allowed += 1;
            if carry {
                record(p, &mut usages, &d, now, 1);
            }
        }
    });
    (ns, allowed as f64 / (iters * ROUNDS as u64) as f64)
}

fn main() {
    let iters = std::env::var("DECIDE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000u64);
    let gcra = |limit, window_ms| match Gcra::new(limit, window_ms, 0) {
        Ok(g) => Limit::Gcra(g),
        Err(e) => panic!("bad benchmark limit: {e:?}"),
    };
    let sliding = |limit, window_ms| match Sliding::new(limit, window_ms) {
        Ok(s) => Limit::Sliding(s),
        Err(e) => panic!("bad benchmark limit: {e:?}"),
    };
    let policy = |limits: &[Limit]| match Policy::new(limits) {
        Ok(p) => p,
        Err(e) => panic!("bad benchmark policy: {e:?}"),
    };
    let per_minute = policy(&[gcra(100, 60_000)]);
    let thirds = policy(&[gcra(3, 1000)]);
    let sliding_100 = policy(&[sliding(100, 60_000)]);
    let two = policy(&[gcra(10, 1000), gcra(1000, 86_400_000)]);
    // A TAT written under limit 7: a stored fraction in another unit, the rounding path.
    let mut other_unit = Usages::new();
    other_unit.push(Usage::Gcra(match Tat::new(T0_MS, 3, 7) {
        Some(t) => t,
        None => panic!("bad benchmark TAT"),
    }));
    let empty = |p: &Policy| Usages::empty_for(p);
    let cases: [(&str, (f64, f64)); 8] = [
        (
            "one GCRA limit, 100 per 60000 ms, allowed (1 request / 600 ms)",
            case(per_minute, &empty(&per_minute), 600, true, false, iters),
        ),
        (
            "one GCRA limit, 100 per 60000 ms, hot client (denied)",
            case(per_minute, &empty(&per_minute), 0, true, false, iters),
        ),
        (
            "one GCRA limit, 3 per 1000 ms (T = 333.3.. ms), allowed",
            case(thirds, &empty(&thirds), 334, true, false, iters),
        ),
        (
            "one GCRA limit, TAT stored under another limit (rounding path)",
            case(per_minute, &other_unit, 0, false, false, iters),
        ),
        (
            "one GCRA limit with RL.THROTTLE's numbers, allowed",
            case(per_minute, &empty(&per_minute), 600, true, true, iters),
        ),
        (
            "one GCRA limit with RL.THROTTLE's numbers, hot client (denied)",
            case(per_minute, &empty(&per_minute), 0, true, true, iters),
        ),
        (
            "SLIDING 100 per 60000 ms, allowed (1 request / 600 ms: a full log)",
            case(sliding_100, &empty(&sliding_100), 600, true, false, iters),
        ),
        (
            "two GCRA limits (10/s AND 1000/day), allowed (1 request / 600 ms)",
            case(two, &empty(&two), 600, true, false, iters),
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
