//! Request rates and latencies from two samples of the server's Prometheus `/metrics`.

use std::collections::BTreeMap;

/// Counters of one `/metrics` sample, per route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSample {
    /// Counters per route template.
    pub routes: BTreeMap<String, RouteCounters>,
    /// `faceid_gallery_subjects`.
    pub gallery_subjects: Option<u64>,
    /// `faceid_inference_queue_depth`.
    pub queue_depth: Option<u64>,
}

/// Cumulative counters of one route.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RouteCounters {
    /// Requests answered.
    pub requests: u64,
    /// Of which with a 4xx or 5xx status.
    pub errors: u64,
    /// Seconds spent answering, summed.
    pub seconds: f64,
}

/// One route's activity between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRate {
    /// Route template (`/v1/identify`).
    pub route: String,
    /// Requests per second.
    pub per_second: f64,
    /// Mean time to answer, milliseconds (`None` without requests).
    pub mean_ms: Option<f64>,
    /// Error answers per second.
    pub errors_per_second: f64,
    /// Requests since the server started.
    pub total: u64,
}

impl MetricsSample {
    /// Parses the exposition text; unknown lines are ignored.
    pub fn parse(text: &str) -> MetricsSample {
        let mut sample = MetricsSample::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let label = |key: &str| {
                labels.split(',').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
                })
            };
            match name {
                "faceid_requests_total" => {
                    let (Some(route), Some(status)) = (label("route"), label("status")) else {
                        continue;
                    };
                    let counters = sample.routes.entry(route).or_default();
                    counters.requests += value as u64;
                    if status.parse::<u16>().is_ok_and(|s| s >= 400) {
                        counters.errors += value as u64;
                    }
                }
                "faceid_request_seconds_sum" => {
                    if let Some(route) = label("route") {
                        sample.routes.entry(route).or_default().seconds += value;
                    }
                }
                "faceid_gallery_subjects" => sample.gallery_subjects = Some(value as u64),
                "faceid_inference_queue_depth" => sample.queue_depth = Some(value as u64),
                _ => {}
            }
        }
        sample
    }

    /// Per-route rates from `earlier` to `self`, `elapsed_secs` apart, busiest first. A
    /// counter that went down (the server restarted) counts from zero.
    pub fn rates_since(&self, earlier: &MetricsSample, elapsed_secs: f64) -> Vec<RouteRate> {
        let elapsed = elapsed_secs.max(1e-3);
        let mut rates: Vec<RouteRate> = self
            .routes
            .iter()
            .map(|(route, now)| {
                let before = earlier
                    .routes
                    .get(route)
                    .filter(|b| b.requests <= now.requests)
                    .copied()
                    .unwrap_or_default();
                let requests = now.requests - before.requests;
                RouteRate {
                    route: route.clone(),
                    per_second: requests as f64 / elapsed,
                    mean_ms: (requests > 0).then(|| {
                        (now.seconds - before.seconds).max(0.0) * 1000.0 / requests as f64
                    }),
                    errors_per_second: now.errors.saturating_sub(before.errors) as f64 / elapsed,
                    total: now.requests,
                }
            })
            .collect();
        rates.sort_by(|a, b| {
            b.per_second
                .total_cmp(&a.per_second)
                .then(b.total.cmp(&a.total))
        });
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EARLIER: &str = "# HELP faceid_requests_total x\n\
        faceid_requests_total{route=\"/v1/identify\",status=\"200\"} 10\n\
        faceid_requests_total{route=\"/v1/identify\",status=\"422\"} 2\n\
        faceid_request_seconds_sum{route=\"/v1/identify\"} 1.200000\n\
        faceid_gallery_subjects 3\n";
    const LATER: &str = "faceid_requests_total{route=\"/v1/identify\",status=\"200\"} 28\n\
        faceid_requests_total{route=\"/v1/identify\",status=\"422\"} 4\n\
        faceid_requests_total{route=\"/v1/subjects\",status=\"200\"} 1\n\
        faceid_request_seconds_sum{route=\"/v1/identify\"} 3.200000\n\
        faceid_request_seconds_sum{route=\"/v1/subjects\"} 0.004000\n\
        faceid_gallery_subjects 5\nfaceid_inference_queue_depth 1\n";

    #[test]
    fn rates_and_mean_latency_between_samples() {
        let (a, b) = (MetricsSample::parse(EARLIER), MetricsSample::parse(LATER));
        assert_eq!(b.gallery_subjects, Some(5));
        assert_eq!(b.queue_depth, Some(1));
        assert_eq!(a.routes["/v1/identify"].errors, 2);
        let rates = b.rates_since(&a, 2.0);
        assert_eq!(rates[0].route, "/v1/identify");
        assert_eq!(rates[0].per_second, 10.0);
        assert_eq!(rates[0].errors_per_second, 1.0);
        assert!((rates[0].mean_ms.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(rates[1].route, "/v1/subjects");
        assert_eq!(rates[1].total, 1);
    }

    #[test]
    fn a_restarted_server_counts_from_zero() {
        let (a, b) = (MetricsSample::parse(LATER), MetricsSample::parse(EARLIER));
        let rates = b.rates_since(&a, 1.0);
        assert_eq!(rates[0].per_second, 12.0);
    }
}
