//! Biometric performance figures (ISO/IEC 19795-1 vocabulary), pure functions over scores.
//! `faceid eval` feeds them; the operator console plots them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One scored comparison. `score: None` is a failure to acquire (no face on either side):
/// it counts as a non-match, never silently dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairScore {
    /// Whether both sides show the same person.
    pub genuine: bool,
    /// Similarity, bigger = more alike; `None` = failure to acquire.
    pub score: Option<f32>,
}

/// The false-accept rates at which TAR is reported.
pub const FAR_POINTS: [(&str, f64); 3] = [("1e-2", 1e-2), ("1e-3", 1e-3), ("1e-4", 1e-4)];

/// Verification figures over a set of pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationFigures {
    /// Number of pairs.
    pub pairs: usize,
    /// Genuine pairs.
    pub genuine: usize,
    /// Impostor pairs.
    pub impostor: usize,
    /// Pairs where a side had no face (counted as non-matches).
    pub failed_pairs: usize,
    /// Best accuracy over all thresholds (fraction).
    pub accuracy: Option<f64>,
    /// The threshold achieving it (raw score).
    pub accuracy_threshold: Option<f32>,
    /// Equal error rate.
    pub eer: Option<f64>,
    /// True-accept rate at each false-accept rate in [`FAR_POINTS`]. When fewer impostors
    /// exist than 1/FAR, the figure is the TAR with zero observed false accepts (an upper
    /// threshold, so a conservative figure).
    pub tar_at_far: BTreeMap<String, Option<f64>>,
}

/// Computes [`VerificationFigures`]. Figures that need both classes are `None` without them.
pub fn verification_figures(pairs: &[PairScore]) -> VerificationFigures {
    let value = |p: &PairScore| p.score.unwrap_or(f32::NEG_INFINITY);
    let mut genuine: Vec<f32> = pairs.iter().filter(|p| p.genuine).map(value).collect();
    let mut impostor: Vec<f32> = pairs.iter().filter(|p| !p.genuine).map(value).collect();
    genuine.sort_by(|a, b| b.total_cmp(a));
    impostor.sort_by(|a, b| b.total_cmp(a));
    let failed_pairs = pairs.iter().filter(|p| p.score.is_none()).count();
    let mut figures = VerificationFigures {
        pairs: pairs.len(),
        genuine: genuine.len(),
        impostor: impostor.len(),
        failed_pairs,
        accuracy: None,
        accuracy_threshold: None,
        eer: None,
        tar_at_far: FAR_POINTS
            .iter()
            .map(|(k, _)| (k.to_string(), None))
            .collect(),
    };
    if genuine.is_empty() || impostor.is_empty() {
        return figures;
    }
    let (ng, ni) = (genuine.len() as f64, impostor.len() as f64);
    // Candidate thresholds: every finite score, accept when score >= t.
    let mut thresholds: Vec<f32> = genuine
        .iter()
        .chain(&impostor)
        .copied()
        .filter(|s| s.is_finite())
        .collect();
    thresholds.sort_by(|a, b| a.total_cmp(b));
    thresholds.dedup();
    thresholds.push(f32::INFINITY);
    let mut best = (0.0f64, f32::INFINITY);
    let mut eer = (f64::MAX, 0.0f64);
    for &t in &thresholds {
        let accepted_genuine = genuine.partition_point(|&s| s >= t) as f64;
        let accepted_impostor = impostor.partition_point(|&s| s >= t) as f64;
        let accuracy = (accepted_genuine + (ni - accepted_impostor)) / (ng + ni);
        if accuracy > best.0 {
            best = (accuracy, t);
        }
        let far = accepted_impostor / ni;
        let frr = 1.0 - accepted_genuine / ng;
        if (far - frr).abs() < eer.0 {
            eer = ((far - frr).abs(), (far + frr) / 2.0);
        }
    }
    figures.accuracy = Some(best.0);
    figures.accuracy_threshold = best.1.is_finite().then_some(best.1);
    figures.eer = Some(eer.1);
    for (name, far) in FAR_POINTS {
        let allowed = (far * ni).floor() as usize;
        let tar = match impostor.get(allowed) {
            // Accept strictly above the (allowed+1)-th highest impostor score.
            Some(&bar) => genuine.partition_point(|&s| s > bar) as f64 / ng,
            None => genuine.iter().filter(|s| s.is_finite()).count() as f64 / ng,
        };
        figures.tar_at_far.insert(name.to_string(), Some(tar));
    }
    figures
}

/// Error rates of a verification threshold (accept when score >= `threshold`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetPoint {
    /// The threshold, in the unit of the scores given.
    pub threshold: f32,
    /// Impostor pairs accepted, as a fraction of impostor pairs.
    pub far: f64,
    /// Genuine pairs rejected (failures to acquire included), as a fraction.
    pub frr: f64,
}

/// FAR and FRR of `pairs` at `threshold`; `None` without both classes.
pub fn rates_at(pairs: &[PairScore], threshold: f32) -> Option<DetPoint> {
    let accepted = |p: &&PairScore| p.score.is_some_and(|s| s >= threshold);
    let genuine = pairs.iter().filter(|p| p.genuine).count();
    let impostor = pairs.len() - genuine;
    if genuine == 0 || impostor == 0 {
        return None;
    }
    let false_accepts = pairs.iter().filter(|p| !p.genuine).filter(accepted).count();
    let true_accepts = pairs.iter().filter(|p| p.genuine).filter(accepted).count();
    Some(DetPoint {
        threshold,
        far: false_accepts as f64 / impostor as f64,
        frr: 1.0 - true_accepts as f64 / genuine as f64,
    })
}

/// The detection error trade-off curve: FAR and FRR at every distinct score, thinned to at
/// most `max_points` (always keeping both ends), lowest threshold first. Empty without
/// both classes.
pub fn det_curve(pairs: &[PairScore], max_points: usize) -> Vec<DetPoint> {
    let mut genuine: Vec<f32> = pairs
        .iter()
        .filter(|p| p.genuine)
        .filter_map(|p| p.score)
        .collect();
    let mut impostor: Vec<f32> = pairs
        .iter()
        .filter(|p| !p.genuine)
        .filter_map(|p| p.score)
        .collect();
    let ng = pairs.iter().filter(|p| p.genuine).count();
    let ni = pairs.len() - ng;
    if ng == 0 || ni == 0 || max_points < 2 {
        return Vec::new();
    }
    genuine.sort_by(|a, b| b.total_cmp(a));
    impostor.sort_by(|a, b| b.total_cmp(a));
    let mut thresholds: Vec<f32> = genuine.iter().chain(&impostor).copied().collect();
    thresholds.sort_by(|a, b| a.total_cmp(b));
    thresholds.dedup();
    let step = (thresholds.len() as f64 / (max_points - 1) as f64).max(1.0);
    let mut picked: Vec<f32> = (0..max_points - 1)
        .map(|i| (i as f64 * step) as usize)
        .take_while(|&i| i < thresholds.len())
        .map(|i| thresholds[i])
        .collect();
    if let Some(&last) = thresholds.last()
        && picked.last() != Some(&last)
    {
        picked.push(last);
    }
    picked
        .into_iter()
        .map(|t| DetPoint {
            threshold: t,
            far: impostor.partition_point(|&s| s >= t) as f64 / ni as f64,
            frr: 1.0 - genuine.partition_point(|&s| s >= t) as f64 / ng as f64,
        })
        .collect()
}

/// Presentation-attack detection figures at one threshold (ISO/IEC 30107-3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PadFigures {
    /// Live presentations.
    pub bona_fide: usize,
    /// Attack presentations.
    pub attacks: usize,
    /// Live-probability threshold (live when >= threshold).
    pub threshold: f32,
    /// Attack presentation classification error rate: attacks accepted as live.
    pub apcer: Option<f64>,
    /// Bona fide presentation classification error rate: live people rejected.
    pub bpcer: Option<f64>,
}

/// Presentation-attack counts and rates of one group of sequences at one liveness preset
/// (ISO/IEC 30107-3), as `faceid eval` reports them per attack species and per bona fide
/// source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PadRates {
    /// Attack sequences.
    pub attacks: usize,
    /// Attack sequences accepted as live.
    pub attacks_accepted: usize,
    /// Attack sequences with no decision (no face).
    pub attacks_no_response: usize,
    /// Bona fide sequences.
    pub bona_fide: usize,
    /// Bona fide sequences refused.
    pub bona_fide_rejected: usize,
    /// Bona fide sequences with no decision.
    pub bona_fide_no_response: usize,
    /// Attacks accepted / attacks decided.
    pub apcer: Option<f64>,
    /// Bona fide refused / bona fide decided.
    pub bpcer: Option<f64>,
    /// Attacks without a decision / attacks.
    pub apnrr: Option<f64>,
    /// Bona fide without a decision / bona fide.
    pub bpnrr: Option<f64>,
}

/// APCER and BPCER of live probabilities at `threshold`. A `None` probability (no face)
/// counts as rejected: an error for a live person, a success against an attack.
pub fn pad_figures(
    bona_fide: &[Option<f32>],
    attacks: &[Option<f32>],
    threshold: f32,
) -> PadFigures {
    let live = |p: &Option<f32>| p.is_some_and(|p| p >= threshold);
    let rate = |n: usize, total: usize| (total > 0).then(|| n as f64 / total as f64);
    PadFigures {
        bona_fide: bona_fide.len(),
        attacks: attacks.len(),
        threshold,
        apcer: rate(attacks.iter().filter(|p| live(p)).count(), attacks.len()),
        bpcer: rate(
            bona_fide.iter().filter(|p| !live(p)).count(),
            bona_fide.len(),
        ),
    }
}

/// Where a simulated planar object (a print, a card, a screen held still) is, relative to
/// the camera: turned by `yaw` and `pitch`, rolled in the image, at `distance` (1 = the
/// picture's own scale), shifted by `shift` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanarPose {
    /// Turn about the vertical axis, radians.
    pub yaw: f64,
    /// Turn about the horizontal axis, radians.
    pub pitch: f64,
    /// Rotation in the image plane, radians.
    pub roll: f64,
    /// Distance relative to the picture's own scale (0.8 = closer, larger).
    pub distance: f64,
    /// Shift in pixels (x, y).
    pub shift: (f64, f64),
}

/// What a pinhole camera (focal length 1.2 x the width) sees of `picture` laid on a plane
/// at `pose`: every output pixel's ray is intersected with the plane and sampled
/// bilinearly; what falls outside the picture is black. The images of one plane from any
/// two poses are exactly related by a homography, so this simulates a print or a card moved
/// and tilted in front of a camera faithfully (short of lighting and paper texture).
pub fn planar_view(picture: &crate::Image, pose: PlanarPose) -> crate::Result<crate::Image> {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    let rgb = picture.rgb();
    let f = 1.2 * w as f64;
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (cyw, syw) = (pose.yaw.cos(), pose.yaw.sin());
    let (cp, sp) = (pose.pitch.cos(), pose.pitch.sin());
    let (cr, sr) = (pose.roll.cos(), pose.roll.sin());
    let ry = [[cyw, 0.0, syw], [0.0, 1.0, 0.0], [-syw, 0.0, cyw]];
    let rx = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
    let rz = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
    let mul = |a: [[f64; 3]; 3], b: [[f64; 3]; 3]| {
        let mut o = [[0.0; 3]; 3];
        for (i, row) in o.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
            }
        }
        o
    };
    let r = mul(rz, mul(rx, ry));
    let t = [pose.shift.0, pose.shift.1, f * pose.distance];
    let n = [r[0][2], r[1][2], r[2][2]];
    let nt = n[0] * t[0] + n[1] * t[1] + n[2] * t[2];
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let d = [(x as f64 - cx) / f, (y as f64 - cy) / f, 1.0];
            let nd = n[0] * d[0] + n[1] * d[1] + n[2] * d[2];
            if nd.abs() < 1e-9 {
                continue;
            }
            let along = nt / nd;
            let p = [
                along * d[0] - t[0],
                along * d[1] - t[1],
                along * d[2] - t[2],
            ];
            let u = r[0][0] * p[0] + r[1][0] * p[1] + r[2][0] * p[2] + cx;
            let v = r[0][1] * p[0] + r[1][1] * p[1] + r[2][1] * p[2] + cy;
            if u < 0.0 || v < 0.0 || u >= (w - 1) as f64 || v >= (h - 1) as f64 {
                continue;
            }
            let (u0, v0) = (u as usize, v as usize);
            let (fu, fv) = (u - u0 as f64, v - v0 as f64);
            for c in 0..3 {
                let at = |xx: usize, yy: usize| f64::from(rgb[(yy * w + xx) * 3 + c]);
                let value = at(u0, v0) * (1.0 - fu) * (1.0 - fv)
                    + at(u0 + 1, v0) * fu * (1.0 - fv)
                    + at(u0, v0 + 1) * (1.0 - fu) * fv
                    + at(u0 + 1, v0 + 1) * fu * fv;
                out[(y * w + x) * 3 + c] = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    crate::Image::from_rgb(w as u32, h as u32, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(genuine: &[f32], impostor: &[f32]) -> Vec<PairScore> {
        genuine
            .iter()
            .map(|&s| PairScore {
                genuine: true,
                score: Some(s),
            })
            .chain(impostor.iter().map(|&s| PairScore {
                genuine: false,
                score: Some(s),
            }))
            .collect()
    }

    #[test]
    fn separable_scores_give_perfect_figures() {
        let f = verification_figures(&pairs(&[0.8, 0.9, 0.7], &[0.1, 0.2, 0.3]));
        assert_eq!(f.accuracy, Some(1.0));
        assert_eq!(f.eer, Some(0.0));
        assert_eq!(f.tar_at_far["1e-2"], Some(1.0));
    }

    #[test]
    fn overlapping_scores() {
        // genuine 0.4 and impostor 0.5 overlap: one error either way at best.
        let f = verification_figures(&pairs(&[0.4, 0.8, 0.9, 0.7], &[0.1, 0.2, 0.5, 0.3]));
        assert_eq!(f.accuracy, Some(7.0 / 8.0));
        assert_eq!(f.eer, Some(0.25));
        // FAR 1e-2 with 4 impostors: zero false accepts allowed -> threshold above 0.5.
        assert_eq!(f.tar_at_far["1e-2"], Some(0.75));
    }

    #[test]
    fn failures_to_acquire_count_as_non_matches() {
        let mut p = pairs(&[0.8, 0.9], &[0.1, 0.2]);
        p.push(PairScore {
            genuine: true,
            score: None,
        });
        p.push(PairScore {
            genuine: false,
            score: None,
        });
        let f = verification_figures(&p);
        assert_eq!(f.failed_pairs, 2);
        assert_eq!(f.accuracy, Some(5.0 / 6.0));
        assert_eq!(f.tar_at_far["1e-2"], Some(2.0 / 3.0));
    }

    #[test]
    fn det_curve_runs_from_accept_all_to_reject_all() {
        let mut p = pairs(&[0.4, 0.8, 0.9, 0.7], &[0.1, 0.2, 0.5, 0.3]);
        p.push(PairScore {
            genuine: true,
            score: None,
        });
        let curve = det_curve(&p, 100);
        assert_eq!(curve.len(), 8);
        // Lowest threshold accepts every scored pair: FRR is the failure to acquire only.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(curve[0].far, 1.0) && close(curve[0].frr, 0.2));
        let last = curve[curve.len() - 1];
        assert!(last.threshold == 0.9 && close(last.far, 0.0) && close(last.frr, 0.8));
        assert!(
            curve
                .windows(2)
                .all(|w| w[0].far >= w[1].far && w[0].frr <= w[1].frr)
        );
        let at = rates_at(&p, 0.5).unwrap();
        assert!(close(at.far, 0.25) && close(at.frr, 0.4));
        // Thinned, both ends kept.
        let thin = det_curve(&p, 3);
        assert_eq!(thin.len(), 3);
        assert_eq!((thin[0].threshold, thin[2].threshold), (0.1, 0.9));
        assert!(det_curve(&pairs(&[0.8], &[]), 10).is_empty());
    }

    #[test]
    fn one_class_only_gives_nulls() {
        let f = verification_figures(&pairs(&[0.8], &[]));
        assert_eq!(f.accuracy, None);
        assert_eq!(f.tar_at_far["1e-3"], None);
    }

    #[test]
    fn pad_rates() {
        let f = pad_figures(&[Some(0.9), Some(0.4), None], &[Some(0.6), Some(0.1)], 0.5);
        assert_eq!(f.bpcer, Some(2.0 / 3.0));
        assert_eq!(f.apcer, Some(0.5));
        assert_eq!(pad_figures(&[], &[], 0.5).apcer, None);
    }
}
