//! The audit screen's rules: which events a filter keeps, and the CSV export.

use faceid_gallery::AuditEvent;

/// How far back the audit screen looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    /// The whole log.
    #[default]
    All,
    /// The last hour.
    Hour,
    /// The last 24 hours.
    Day,
    /// The last 7 days.
    Week,
}

impl Period {
    /// Every period, in menu order.
    pub const ALL: [Period; 4] = [Period::All, Period::Hour, Period::Day, Period::Week];

    /// Menu label.
    pub fn label(self) -> &'static str {
        match self {
            Period::All => "All time",
            Period::Hour => "Last hour",
            Period::Day => "Last 24 hours",
            Period::Week => "Last 7 days",
        }
    }

    fn span_ms(self) -> Option<u64> {
        match self {
            Period::All => None,
            Period::Hour => Some(3_600_000),
            Period::Day => Some(86_400_000),
            Period::Week => Some(7 * 86_400_000),
        }
    }
}

/// The audit screen's filters. Empty text matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Time window ending now.
    pub period: Period,
    /// Subject id (exact; also sent to the server).
    pub subject: String,
    /// Action or outcome containing this (`verify`, `rejected`, `match`...).
    pub decision: String,
    /// Actor containing this: a kiosk's device name, a key id.
    pub kiosk: String,
}

impl AuditFilter {
    /// Whether `event` passes, at time `now_ms`.
    pub fn keeps(&self, event: &AuditEvent, now_ms: u64) -> bool {
        let contains = |hay: &str, needle: &str| {
            needle.is_empty() || hay.to_lowercase().contains(&needle.trim().to_lowercase())
        };
        self.period
            .span_ms()
            .is_none_or(|span| event.at_ms + span >= now_ms)
            && (self.subject.trim().is_empty()
                || event.subject.as_deref() == Some(self.subject.trim()))
            && (contains(&event.action, &self.decision) || contains(&event.outcome, &self.decision))
            && contains(&event.actor, &self.kiosk)
    }
}

/// The events as CSV (RFC 4180), with a header row; hashes included so an auditor can
/// re-verify the chain from the file.
pub fn to_csv<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> String {
    let mut out =
        String::from("seq,at_ms,action,subject,outcome,actor,request_id,prev_hash,hash\r\n");
    for e in events {
        let fields = [
            e.seq.to_string(),
            e.at_ms.to_string(),
            e.action.clone(),
            e.subject.clone().unwrap_or_default(),
            e.outcome.clone(),
            e.actor.clone(),
            e.request_id.clone(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_field(field: &str) -> String {
    // A leading = + - @ would run as a formula in a spreadsheet: neutralise it.
    let field = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_string()
    };
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        seq: u64,
        at_ms: u64,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        actor: &str,
    ) -> AuditEvent {
        AuditEvent {
            seq,
            at_ms,
            action: action.into(),
            subject: subject.map(Into::into),
            outcome: outcome.into(),
            actor: actor.into(),
            request_id: "r".into(),
            prev_hash: "0".into(),
            hash: "h".into(),
        }
    }

    #[test]
    fn filters_combine() {
        let now = 10 * 86_400_000;
        let old = event(1, 0, "enroll", Some("ada"), "ok", "device:kiosk-paris");
        let recent = event(
            2,
            now - 1000,
            "verify",
            Some("ada"),
            "rejected:NO_MATCH",
            "device:kiosk-lyon",
        );
        let mut filter = AuditFilter::default();
        assert!(filter.keeps(&old, now) && filter.keeps(&recent, now));
        filter.period = Period::Day;
        assert!(!filter.keeps(&old, now) && filter.keeps(&recent, now));
        filter.period = Period::All;
        filter.decision = "REJECTED".into();
        assert!(!filter.keeps(&old, now) && filter.keeps(&recent, now));
        filter.decision.clear();
        filter.kiosk = "paris".into();
        assert!(filter.keeps(&old, now) && !filter.keeps(&recent, now));
        filter.kiosk.clear();
        filter.subject = "bob".into();
        assert!(!filter.keeps(&old, now));
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let e = event(3, 5, "enroll", Some("=HYPERLINK(\"x\")"), "ok, fine", "k");
        let csv = to_csv([&e]);
        let mut lines = csv.split("\r\n");
        assert_eq!(
            lines.next(),
            Some("seq,at_ms,action,subject,outcome,actor,request_id,prev_hash,hash")
        );
        assert_eq!(
            lines.next(),
            Some("3,5,enroll,\"'=HYPERLINK(\"\"x\"\")\",\"ok, fine\",k,r,0,h")
        );
    }
}
