//! Confidentiality at rest: the database files hold no plaintext subject,
//! body or attachment, in the relay's store nor in the mailbox's.

use base64::Engine as _;
use kuvert_testkit::{TestApp, client};

const SUBJECT: &str = "Hemligt ämne QX7-subject-marker";
const BODY: &str = "Sekretessbelagd text QX7-body-marker om en skuld";
const ATTACHMENT_TEXT: &str = "QX7 attachment marker";

#[tokio::test]
async fn no_database_file_contains_plaintext_content() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let token = tenant.token.clone();
    let anna = app.recipient("registered").id.clone();
    let cecilia = app.recipient("not_registered").id.clone();
    let pdf = client::minimal_pdf(ATTACHMENT_TEXT);
    let mut ids = Vec::new();
    for (recipient, paper) in [(&anna, false), (&cecilia, true)] {
        let mut delivery = client::simple_delivery(
            &sender.id,
            &sender.name,
            recipient,
            Some(format!("privacy-{paper}")),
            SUBJECT,
            BODY,
            false,
            vec![client::attachment("skuld.pdf", "application/pdf", &pdf)],
        );
        delivery.paper_fallback = paper;
        let (status, body) = app.send(&token, &app.sign(sender, delivery)).await;
        assert!(status.is_success(), "{body}");
        ids.push(body["delivery_id"].as_str().unwrap().to_owned());
    }
    app.wait_delivered(&token, &ids[0]).await;
    // Read it once, so read-side code paths have written what they write.
    let reader = app.recipient_token(&anna);
    let page = app.messages(&reader, "").await;
    let (_, opened) = app.open_message(&reader, &page.messages[0].id).await;
    assert_eq!(
        opened["subject"], SUBJECT,
        "the recipient does see the content"
    );
    app.stop().await;

    let b64 = base64::engine::general_purpose::STANDARD;
    let needles: Vec<(String, Vec<u8>)> = vec![
        ("subject".into(), SUBJECT.as_bytes().to_vec()),
        ("subject marker".into(), b"QX7-subject-marker".to_vec()),
        ("body marker".into(), b"QX7-body-marker".to_vec()),
        (
            "attachment text".into(),
            ATTACHMENT_TEXT.as_bytes().to_vec(),
        ),
        (
            "attachment base64".into(),
            b64.encode(&pdf).as_bytes()[..40].to_vec(),
        ),
    ];
    // The last connections may still be closing after the stop, and SQLite
    // removes a -wal or -shm file when its last connection closes: read a
    // listing whose files all still exist (content moves from the WAL into
    // the database file before the WAL goes, so a later listing misses none).
    let mut attempts = 0;
    let (files, contents) = loop {
        attempts += 1;
        assert!(attempts <= 100, "database files keep disappearing");
        let files = app.database_files();
        let contents: Option<Vec<Vec<u8>>> = files
            .iter()
            .map(|f| match std::fs::read(f) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => panic!("{}: {e}", f.display()),
            })
            .collect();
        if let Some(contents) = contents {
            break (files, contents);
        }
    };
    assert!(files.len() >= 2, "expected both databases, found {files:?}");
    let mut scanned = 0;
    for (file, bytes) in files.iter().zip(&contents) {
        scanned += bytes.len();
        for (what, needle) in &needles {
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_slice());
            assert!(!found, "{} contains the plaintext {what}", file.display());
        }
    }
    assert!(scanned > 0);
}
