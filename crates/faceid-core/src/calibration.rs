//! What a similarity means. Raw cosine similarities are mapped to a **calibrated score**
//! whose value states the false-accept rate (FAR) of a threshold placed there, on the scale
//! customers already know:
//!
//! | score | FAR        |
//! |-------|------------|
//! | 0.4   | 1/10       |
//! | 0.5   | 1/100      |
//! | 0.6   | 1/1,000    |
//! | 0.7   | 1/10,000   |
//! | 0.8   | 1/100,000  |
//! | 0.9   | 1/1,000,000|
//!
//! i.e. `score = (3 - log10 FAR) / 10` for FAR <= 1/10, and below that a linear ramp from
//! the impostor mean (score 0) to the 1/10 point (score 0.4).
//!
//! FAR as a function of cosine comes from a Gaussian model of the impostor score tail,
//! fitted on impostor pairs by matching the empirical 1/10 and 1/100 quantiles (where
//! 1,680 pairs give 168 and 17 exceedances). Below 1/1,000 the model extrapolates: the fit
//! report (`faceid eval`) prints predicted against observed FAR at each anchor.

use serde::Serialize;

/// Gaussian model of the impostor cosine distribution's upper tail.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Calibration {
    /// Mean of the fitted impostor distribution (cosine).
    pub impostor_mean: f32,
    /// Standard deviation of the fitted impostor distribution (cosine).
    pub impostor_sd: f32,
}

/// Standard normal quantiles at upper-tail probabilities 1e-1 and 1e-2.
const Z_1E1: f64 = 1.281_551_565_544_6;
const Z_1E2: f64 = 2.326_347_874_040_8;

impl Calibration {
    /// The calibration of the default model `fr_feature`, fitted by `faceid eval` on
    /// `../shared/eval` (the 1,670 impostor pairs with a face on both sides; the report's
    /// `calibration.fitted`). Refit whenever the embedding or its pre-processing changes.
    pub const FR_FEATURE: Calibration = Calibration {
        impostor_mean: -0.0442,
        impostor_sd: 0.1577,
    };

    /// Fits the tail model on impostor cosines. `None` with fewer than 100 scores or a
    /// degenerate spread.
    pub fn fit(impostor_cosines: &[f32]) -> Option<Calibration> {
        if impostor_cosines.len() < 100 {
            return None;
        }
        let mut sorted: Vec<f32> = impostor_cosines
            .iter()
            .copied()
            .filter(|s| s.is_finite())
            .collect();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let at = |far: f64| {
            f64::from(sorted[((far * sorted.len() as f64).ceil() as usize).saturating_sub(1)])
        };
        let (q1, q2) = (at(1e-1), at(1e-2));
        let sd = (q2 - q1) / (Z_1E2 - Z_1E1);
        if sd <= 1e-6 {
            return None;
        }
        let mean = q1 - sd * Z_1E1;
        Some(Calibration {
            impostor_mean: mean as f32,
            impostor_sd: sd as f32,
        })
    }

    /// Predicted false-accept rate of a threshold at `cosine`.
    pub fn far(&self, cosine: f32) -> f64 {
        let z = (f64::from(cosine) - f64::from(self.impostor_mean)) / f64::from(self.impostor_sd);
        upper_tail(z)
    }

    /// The cosine threshold whose predicted FAR is `far`.
    pub fn cosine_for_far(&self, far: f64) -> f32 {
        let z = upper_tail_quantile(far.clamp(1e-300, 0.5));
        (f64::from(self.impostor_mean) + z * f64::from(self.impostor_sd)) as f32
    }

    /// The calibrated score 0..1 of a cosine similarity.
    pub fn score(&self, cosine: f32) -> f32 {
        let t1 = self.cosine_for_far(0.1);
        if cosine < t1 {
            let span = (t1 - self.impostor_mean).max(1e-6);
            return (0.4 * (cosine - self.impostor_mean) / span).clamp(0.0, 0.4);
        }
        score_for_far(self.far(cosine))
    }

    /// The cosine at which the calibrated score equals `score`.
    pub fn cosine_for_score(&self, score: f32) -> f32 {
        if score < 0.4 {
            let t1 = self.cosine_for_far(0.1);
            return self.impostor_mean + score / 0.4 * (t1 - self.impostor_mean);
        }
        self.cosine_for_far(far_for_score(score))
    }
}

/// The calibrated score whose threshold has false-accept rate `far` (capped to 0..1).
pub fn score_for_far(far: f64) -> f32 {
    ((3.0 - far.max(1e-300).log10()) / 10.0).clamp(0.0, 1.0) as f32
}

/// The false-accept rate a threshold at calibrated `score` (>= 0.4) stands for.
pub fn far_for_score(score: f32) -> f64 {
    10f64.powf(3.0 - 10.0 * f64::from(score))
}

/// P(Z > z) for a standard normal Z, accurate to ~1e-15 relative (erfc by continued
/// fraction in the tail, series near zero).
fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        // erf series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0f64;
        let mut term = x;
        let mut n = 0.0f64;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 3.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
            if n > 200.0 {
                break;
            }
        }
        return 1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum;
    }
    // Continued fraction (Lentz) for the tail.
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..300 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = x + a / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (f * std::f64::consts::PI.sqrt())
}

/// z with P(Z > z) = p, by bisection on the monotone tail (p in (0, 0.5]).
fn upper_tail_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if upper_tail(mid) > p {
            lo = mid
        } else {
            hi = mid
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_matches_known_values() {
        assert!((upper_tail(0.0) - 0.5).abs() < 1e-12);
        assert!((upper_tail(Z_1E1) - 0.1).abs() < 1e-9);
        assert!((upper_tail(Z_1E2) - 0.01).abs() < 1e-9);
        assert!((upper_tail(4.753_424_308_8) / 1e-6 - 1.0).abs() < 1e-6);
        assert!((upper_tail_quantile(1e-3) - 3.090_232_306_2).abs() < 1e-8);
    }

    #[test]
    fn score_scale_matches_the_customer_table() {
        for (score, far) in [
            (0.4, 1e-1),
            (0.5, 1e-2),
            (0.6, 1e-3),
            (0.7, 1e-4),
            (0.8, 1e-5),
            (0.9, 1e-6),
        ] {
            assert!((score_for_far(far) - score).abs() < 1e-6);
            assert!((far_for_score(score) / far - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn calibrated_scores_state_their_false_accept_rate() {
        let cal = Calibration {
            impostor_mean: 0.02,
            impostor_sd: 0.08,
        };
        for far in [1e-1, 1e-2, 1e-3, 1e-4, 1e-6] {
            let cosine = cal.cosine_for_far(far);
            assert!(
                (cal.score(cosine) - score_for_far(far)).abs() < 1e-4,
                "far {far}"
            );
            assert!((cal.cosine_for_score(score_for_far(far)) - cosine).abs() < 1e-4);
        }
        // Monotone and continuous at the 1/10 point, 0 at the impostor mean.
        assert!(cal.score(0.02).abs() < 1e-6);
        let t1 = cal.cosine_for_far(0.1);
        assert!((cal.score(t1 - 1e-5) - cal.score(t1 + 1e-5)).abs() < 1e-3);
        let mut last = -1.0;
        for i in -100..=100 {
            let s = cal.score(i as f32 / 100.0);
            assert!(s >= last && (0.0..=1.0).contains(&s));
            last = s;
        }
    }

    #[test]
    fn fit_recovers_a_gaussian() {
        // Deterministic normal sample by inverse CDF on a regular grid.
        let n = 5000;
        let scores: Vec<f32> = (0..n)
            .map(|i| {
                let p = (i as f64 + 0.5) / n as f64;
                let z = if p < 0.5 {
                    -upper_tail_quantile(p)
                } else {
                    upper_tail_quantile(1.0 - p)
                };
                (0.05 + 0.1 * z) as f32
            })
            .collect();
        let cal = Calibration::fit(&scores).unwrap();
        assert!((cal.impostor_mean - 0.05).abs() < 0.01, "{cal:?}");
        assert!((cal.impostor_sd - 0.1).abs() < 0.01, "{cal:?}");
        assert!(Calibration::fit(&scores[..50]).is_none());
    }
}
