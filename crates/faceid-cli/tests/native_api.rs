//! The native `/v1` API: roles, decisions, analysis, audit, OpenAPI, on the real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_v1_api_with_roles_audit_and_openapi() {
    let server = start();
    let base = format!("{}/v1", server.base);
    let client = faceid_e2e::http();
    let enroll_frame = faceid_e2e::kiosk_frame(3, 1050.0..1300.0);
    let stranger = faceid_e2e::kiosk_frame(5, 0.0..2000.0);
    let call = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("x-api-key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    use reqwest::Method;
    let (client_key, admin) = (server.key.as_str(), server.admin.as_str());

    // Keys and roles.
    assert_eq!(call(Method::GET, "/subjects", "wrong", None).await.0, 401);
    assert_eq!(
        call(Method::GET, "/subjects", client_key, None).await.0,
        403,
        "listing needs operator"
    );
    let (status, operator) = call(
        Method::POST,
        "/admin/keys",
        admin,
        Some(json!({"role": "operator"})),
    )
    .await;
    assert_eq!(status, 201, "{operator}");
    let operator = operator["key"].as_str().unwrap().to_string();
    assert_eq!(
        call(Method::GET, "/subjects", &operator, None).await,
        (200, json!([]))
    );
    assert_eq!(
        call(
            Method::POST,
            "/admin/keys",
            &operator,
            Some(json!({"role": "admin"}))
        )
        .await
        .0,
        403
    );

    // Enrollment.
    let enroll = json!({"id": "alice", "display_name": "Alice A.", "image": b64(&enroll_frame), "retain_image": true});
    let (status, subject) = call(Method::POST, "/subjects", client_key, Some(enroll.clone())).await;
    assert_eq!(status, 201, "{subject}");
    assert_eq!(
        (
            subject["id"].clone(),
            subject["templates"].clone(),
            subject["has_image"].clone()
        ),
        (json!("alice"), json!(1), json!(true))
    );
    let (status, dup) = call(Method::POST, "/subjects", client_key, Some(enroll)).await;
    assert_eq!(
        (status, dup["errors"].clone()),
        (409, json!(["DUPLICATE_SUBJECT"]))
    );
    let (status, none) = call(
        Method::POST,
        "/subjects",
        client_key,
        Some(json!({"id": "blank", "image": b64(&blank_png())})),
    )
    .await;
    assert_eq!((status, none["errors"].clone()), (422, json!(["NO_FACE"])));
    let (status, bad) = call(
        Method::POST,
        "/subjects",
        client_key,
        Some(json!({"id": "x", "image": "***"})),
    )
    .await;
    assert_eq!(
        (status, bad["errors"].clone()),
        (400, json!(["INVALID_BASE64"]))
    );
    let (status, _) = call(
        Method::POST,
        "/subjects",
        client_key,
        Some(json!({"id": "x"})),
    )
    .await;
    assert_eq!(status, 400, "missing image");
    let (status, list) = call(Method::GET, "/subjects?search=ALI", &operator, None).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    let r = client
        .get(format!("{base}/subjects/alice/image"))
        .header("x-api-key", &operator)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        enroll_frame.as_slice(),
        "retained image round trip"
    );

    // Decisions. The kiosk frame is cut from a group photo and is not live: same face,
    // refused on liveness.
    let (status, verdict) = call(
        Method::POST,
        "/verify",
        client_key,
        Some(json!({"subject_id": "alice", "media": b64(&enroll_frame)})),
    )
    .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(
        (verdict["accepted"].clone(), verdict["reason"].clone()),
        (json!(false), json!("LIVENESS_FAILED")),
        "{verdict}"
    );
    assert!(
        verdict["score"].is_null(),
        "refused on liveness before any comparison: {verdict}"
    );
    assert_eq!(verdict["liveness"]["live"], false);
    let (_, verdict) = call(
        Method::POST,
        "/verify",
        client_key,
        Some(json!({"subject_id": "alice", "media": b64(&stranger)})),
    )
    .await;
    assert_eq!(
        (verdict["accepted"].clone(), verdict["reason"].clone()),
        (json!(false), json!("NO_MATCH")),
        "{verdict}"
    );
    assert!(verdict["score"].as_f64().unwrap() < 0.6);
    assert_eq!(
        call(
            Method::POST,
            "/verify",
            client_key,
            Some(json!({"subject_id": "nobody", "media": b64(&stranger)}))
        )
        .await
        .0,
        404
    );
    let (_, nobody) = call(
        Method::POST,
        "/identify",
        client_key,
        Some(json!({"media": b64(&stranger)})),
    )
    .await;
    assert_eq!(
        (
            nobody["matched"].clone(),
            nobody["subject_id"].clone(),
            nobody["gallery_size"].clone()
        ),
        (json!(false), Value::Null, json!(1)),
        "{nobody}"
    );
    assert_eq!(nobody["reason"], "NO_MATCH", "{nobody}");
    let (status, multi) = call(
        Method::POST,
        "/identify",
        client_key,
        Some(json!({"media": b64(&faceid_e2e::sample_bytes(1))})),
    )
    .await;
    assert_eq!(
        (status, multi["errors"].clone()),
        (422, json!(["MULTIPLE_FACES"]))
    );
    // A live person: the card holder, enrolled from the selfie, found from a selfie video.
    if let Some(eval) =
        faceid_e2e::shared_eval("native_v1_api live verification and identification")
    {
        let holder = card_holder(&eval);
        let (status, _) = call(
            Method::POST,
            "/subjects",
            client_key,
            Some(json!({"id": "holder", "image": b64(&holder.selfie)})),
        )
        .await;
        assert_eq!(status, 201);
        let (_, verdict) = call(
            Method::POST,
            "/verify",
            client_key,
            Some(json!({"subject_id": "holder", "media": b64(&holder.video)})),
        )
        .await;
        assert_eq!(
            (verdict["accepted"].clone(), verdict["reason"].clone()),
            (json!(true), json!("MATCH")),
            "{verdict}"
        );
        assert_eq!(
            verdict["liveness"]["frames"], 8,
            "frames of the video accumulated"
        );
        let (_, found) = call(
            Method::POST,
            "/identify",
            client_key,
            Some(json!({"media": b64(&holder.video)})),
        )
        .await;
        assert_eq!(
            (found["matched"].clone(), found["subject_id"].clone()),
            (json!(true), json!("holder")),
            "{found}"
        );
        let (_, replay) = call(
            Method::POST,
            "/verify",
            client_key,
            Some(json!({"subject_id": "holder", "media": b64(&holder.replay)})),
        )
        .await;
        assert_eq!(replay["reason"], "LIVENESS_FAILED");
        assert_eq!(
            call(Method::DELETE, "/subjects/holder", &operator, None)
                .await
                .0,
            204
        );

        // Enrollment with an identity document: a synthetic CNIE with the holder's
        // portrait on its front and its zone on the back (scanned a quarter turn off).
        let cnie = |expiry_year: u32| {
            use faceid_e2e::document::{
                Capture, CardFields, Fonts, capture, render_back, render_front,
            };
            let fonts = Fonts::load();
            let mut rng = fastrand::Rng::with_seed(u64::from(expiry_year));
            let fields = CardFields::random(&mut rng, expiry_year);
            let portrait = image::load_from_memory(&holder.selfie).unwrap().to_rgb8();
            let front = render_front(&fonts, &fields, &portrait, &mut rng);
            let back = render_back(&fonts, &fields, &mut rng);
            (
                b64(&capture(&front, Capture::Scan, 0, &mut rng)),
                b64(&capture(&back, Capture::Scan, 1, &mut rng)),
            )
        };
        let enroll_with = |id: &str, card: &(String, String)| json!({"id": id, "image": b64(&holder.selfie), "card": card.0, "card_back": card.1});
        let valid = cnie(2031);
        let (status, subject) = call(
            Method::POST,
            "/subjects",
            client_key,
            Some(enroll_with("cnie-holder", &valid)),
        )
        .await;
        assert_eq!(status, 201, "{subject}");
        assert_eq!(
            (subject["document"].clone(), subject["templates"].clone()),
            (json!(true), json!(2)),
            "selfie and card templates, the document kept as a keyed hash: {subject}"
        );
        assert_eq!(subject["document_number"], Value::Null, "off by default");
        assert_eq!(
            subject["card_mismatch"],
            Value::Null,
            "front and back agree"
        );
        // The front of one card with the back of another: enrolled from the back's zone,
        // the disagreement answered and audited, not resolved.
        let other = cnie(2032);
        let (status, mixed) = call(
            Method::POST,
            "/subjects",
            client_key,
            Some(json!({"id": "mixed-sides", "image": b64(&holder.selfie), "card": valid.0, "card_back": other.1})),
        )
        .await;
        assert_eq!(status, 201, "{mixed}");
        let fields = mixed["card_mismatch"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(fields.contains(&json!("number")), "{mixed}");
        assert_eq!(
            call(Method::DELETE, "/subjects/mixed-sides", &operator, None)
                .await
                .0,
            204
        );
        let refusals = [
            (
                enroll_with("someone-else", &valid),
                409,
                "DUPLICATE_DOCUMENT",
            ),
            (enroll_with("expired", &cnie(2019)), 422, "DOCUMENT_EXPIRED"),
            (
                json!({"id": "x", "image": b64(&holder.selfie), "card_back": valid.1}),
                400,
                "CARD_BACK_WITHOUT_CARD",
            ),
        ];
        for (body, status, code) in refusals {
            let (got, problem) = call(Method::POST, "/subjects", client_key, Some(body)).await;
            assert_eq!((got, problem["errors"].clone()), (status, json!([code])));
        }
        // Each refused document is audited (the malformed request is not an attempt).
        let (_, audit) = call(Method::GET, "/audit?limit=1000", &operator, None).await;
        let outcomes: Vec<&str> = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "enroll")
            .filter_map(|e| e["outcome"].as_str())
            .collect();
        for code in ["DUPLICATE_DOCUMENT", "DOCUMENT_EXPIRED"] {
            assert!(
                outcomes.contains(&format!("rejected:{code}").as_str()),
                "{code}: {outcomes:?}"
            );
        }
        let mismatches = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "card_front")
            .filter_map(|e| e["outcome"].as_str())
            .collect::<Vec<_>>();
        assert!(
            mismatches.len() == 1 && mismatches[0].starts_with("mismatch:number"),
            "{mismatches:?}"
        );
        assert_eq!(
            call(Method::DELETE, "/subjects/cnie-holder", &operator, None)
                .await
                .0,
            204
        );
    }

    // Analysis.
    let (status, live) = call(
        Method::POST,
        "/liveness",
        client_key,
        Some(json!({"media": b64(&enroll_frame)})),
    )
    .await;
    assert_eq!(
        (status, live["frames"].clone(), live["preset"].clone()),
        (200, json!(1), json!("REGULAR"))
    );
    let (status, quality) = call(
        Method::POST,
        "/quality",
        client_key,
        Some(json!({"media": b64(&enroll_frame)})),
    )
    .await;
    assert_eq!(
        (
            status,
            quality["passed"].clone(),
            quality["failure"].clone()
        ),
        (200, json!(true), Value::Null),
        "{quality}"
    );
    assert!(
        quality["measures"]["inter_eye_px"]["value"]
            .as_f64()
            .unwrap()
            > 28.0
    );
    let (status, card) = call(
        Method::POST,
        "/card",
        client_key,
        Some(json!({"media": b64(&enroll_frame)})),
    )
    .await;
    assert_eq!(
        (status, card["portrait"]["rotation_degrees"].clone()),
        (200, json!(0)),
        "{card}"
    );
    assert!(card["portrait"]["portrait_jpeg"].as_str().unwrap().len() > 100);
    assert_eq!(card["mrz"], Value::Null, "a selfie has no zone");
    // The back of a synthetic CNIE, scanned upside down: no portrait, the zone read with
    // every check digit.
    let back = {
        use faceid_e2e::document::{Capture, CardFields, Fonts, capture, render_back};
        let mut rng = fastrand::Rng::with_seed(11);
        let fields = CardFields::random(&mut rng, 2031);
        let side = render_back(&Fonts::load(), &fields, &mut rng);
        (fields.number, capture(&side, Capture::Scan, 2, &mut rng))
    };
    let (status, card) = call(
        Method::POST,
        "/card",
        client_key,
        Some(json!({"media": b64(&back.1)})),
    )
    .await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["portrait"], Value::Null, "{card}");
    assert_eq!(card["mrz"]["format"], "TD1", "{card}");
    assert_eq!(card["mrz"]["valid"], true, "{card}");
    assert_eq!(card["mrz"]["fields"]["document_number"], back.0, "{card}");

    // Audit, status, erasure, key revocation.
    let (_, audit) = call(Method::GET, "/audit?subject=alice", &operator, None).await;
    assert_eq!(audit["chain_valid"], true);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..3],
        &["enroll", "verify", "verify"],
        "{actions:?}"
    );
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["request_id"].as_str().unwrap().is_empty())
    );
    let (_, status) = call(Method::GET, "/admin/status", &operator, None).await;
    assert_eq!(status["gallery_size"], 1);
    assert_eq!(
        call(Method::DELETE, "/subjects/alice", client_key, None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(Method::DELETE, "/subjects/alice", &operator, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(Method::GET, "/subjects/alice", &operator, None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(Method::DELETE, "/subjects/alice", &operator, None)
            .await
            .0,
        404
    );
    let (_, keys) = call(Method::GET, "/admin/keys", admin, None).await;
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter()
            .all(|k| k.get("sha256").is_none() && k.get("key").is_none())
    );
    let operator_id = keys.iter().find(|k| k["role"] == "operator").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        call(
            Method::DELETE,
            &format!("/admin/keys/{operator_id}"),
            admin,
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(Method::GET, "/subjects", &operator, None).await.0,
        401,
        "revoked at once"
    );
    assert_eq!(call(Method::POST, "/admin/reset", admin, None).await.0, 204);

    // The OpenAPI document and Swagger UI.
    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/subjects",
        "/v1/subjects/{id}",
        "/v1/verify",
        "/v1/identify",
        "/v1/liveness",
        "/v1/quality",
        "/v1/card",
        "/v1/audit",
        "/v1/admin/keys",
        "/v1/admin/reset",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    let ui = client
        .get(format!("{}/swagger-ui/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
}
