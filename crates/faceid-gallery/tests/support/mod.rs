//! What the gallery's sync and contract tests share: axis templates, the engine's
//! same-person rule stand-in, an audit context and a bare new subject.
#![allow(dead_code)]

use faceid_core::Template;
use faceid_core::template::TEMPLATE_DIM;
use faceid_gallery::{AuditContext, NewSubject};

/// A template pointing along `axis` (templates of different axes are far apart).
pub fn template(axis: usize) -> Template {
    let mut v = vec![0.01; TEMPLATE_DIM];
    v[axis] = 1.0;
    Template::new("test-model", v).unwrap()
}

/// The engine's rule stand-in: the same person when some pair of templates is close.
pub fn same_person(a: &[Template], b: &[Template]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| x.cosine(y).unwrap_or(0.0) > 0.8))
}

pub fn ctx() -> AuditContext {
    AuditContext {
        actor: "test".into(),
        request_id: "r".into(),
    }
}

pub fn new(id: &str) -> NewSubject {
    NewSubject {
        id: id.into(),
        ..NewSubject::default()
    }
}
