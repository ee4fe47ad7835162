//! Prometheus metrics: requests and latency per route and status, decisions, gallery size
//! and queue depth, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

/// Counters shared by the handlers.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), (u64, f64)>>,
    decisions: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        let mut map = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry((route.to_string(), status)).or_default();
        entry.0 += 1;
        entry.1 += seconds;
    }

    /// Records a decision (`kind` such as `enroll`, `identify`; `outcome` such as `match`).
    pub fn decision(&self, kind: &str, outcome: &str) {
        *self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((kind.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    /// The exposition text, with the current gauges.
    pub fn render(&self, gallery_size: usize, queue_depth: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP faceid_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE faceid_requests_total counter");
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((route, status), (count, _)) in &requests {
            let _ = writeln!(
                out,
                "faceid_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP faceid_request_seconds_sum Time spent answering, by route."
        );
        let _ = writeln!(out, "# TYPE faceid_request_seconds_sum counter");
        let mut per_route: BTreeMap<&str, f64> = BTreeMap::new();
        for ((route, _), (_, seconds)) in &requests {
            *per_route.entry(route).or_default() += seconds;
        }
        for (route, seconds) in per_route {
            let _ = writeln!(
                out,
                "faceid_request_seconds_sum{{route=\"{route}\"}} {seconds:.6}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP faceid_decisions_total Decisions by kind and outcome."
        );
        let _ = writeln!(out, "# TYPE faceid_decisions_total counter");
        for ((kind, outcome), count) in self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "faceid_decisions_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP faceid_gallery_subjects Subjects in the gallery."
        );
        let _ = writeln!(out, "# TYPE faceid_gallery_subjects gauge");
        let _ = writeln!(out, "faceid_gallery_subjects {gallery_size}");
        let _ = writeln!(
            out,
            "# HELP faceid_inference_queue_depth Engine jobs running or waiting."
        );
        let _ = writeln!(out, "# TYPE faceid_inference_queue_depth gauge");
        let _ = writeln!(out, "faceid_inference_queue_depth {queue_depth}");
        out
    }
}
