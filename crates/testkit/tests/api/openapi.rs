//! The committed OpenAPI document must be exactly what the code publishes.

use std::path::Path;

#[test]
fn committed_openapi_matches_the_code() {
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let generated = kuvert_web::openapi::document();
    if std::env::var_os("KUVERT_UPDATE_OPENAPI").is_some() {
        std::fs::write(&committed_path, format!("{generated}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&committed_path)
        .expect("docs/openapi.json is missing: run `KUVERT_UPDATE_OPENAPI=1 cargo test openapi`");
    assert_eq!(
        committed.trim_end(),
        generated.trim_end(),
        "docs/openapi.json drifted from the code: run `KUVERT_UPDATE_OPENAPI=1 cargo test openapi` and commit"
    );
}

#[tokio::test]
async fn the_running_instance_serves_the_same_document() {
    let mut app = kuvert_testkit::TestApp::spawn().await;
    let (status, served) = app.get("/openapi.json", None).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let generated: serde_json::Value =
        serde_json::from_str(&kuvert_web::openapi::document()).unwrap();
    assert_eq!(served, generated);
    app.stop().await;
}
