//! A small sender-side client: build, sign and send deliveries. `kuvert send`
//! uses it, and so do the tests and benchmarks — the same code a small
//! municipality's script would run.

use base64::Engine as _;
use kuvert_crypto::digest::sha256_hex;
use kuvert_crypto::signing::SigningKey;
use kuvert_domain::delivery::{
    Attachment, BodyContentType, DeliveryHeader, DeliverySignature, MessageBody, MessageHeader,
    SIGNED_DELIVERY_DOMAIN, SecureDelivery, SecureMessage, SenderInfo, SignatureAlgorithm,
    SignedDelivery, SupportInfo,
};

/// Signs a delivery: Ed25519 over `"kuvert/v1/signed-delivery" || 0x00 || canonical JSON`.
pub fn sign(delivery: SecureDelivery, key: &SigningKey) -> SignedDelivery {
    let signature = key.sign(SIGNED_DELIVERY_DOMAIN, &delivery.canonical_bytes());
    SignedDelivery {
        delivery,
        signature: DeliverySignature {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: key.public_key().key_id(),
            value: signature.to_base64(),
        },
    }
}

/// An attachment with its checksum computed.
pub fn attachment(filename: &str, content_type: &str, bytes: &[u8]) -> Attachment {
    Attachment {
        content_type: content_type.to_owned(),
        filename: filename.to_owned(),
        checksum: sha256_hex(bytes),
        body: base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

/// A content type from a file name, for `kuvert send --attach`.
pub fn content_type_for(filename: &str) -> &'static str {
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".pdf") {
        "application/pdf"
    } else if lower.ends_with(".txt") {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// A one-message delivery; callers adjust fields as needed.
#[allow(clippy::too_many_arguments)]
pub fn simple_delivery(
    sender_id: &str,
    sender_name: &str,
    recipient: &str,
    reference: Option<String>,
    subject: &str,
    body: &str,
    html: bool,
    attachments: Vec<Attachment>,
) -> SecureDelivery {
    SecureDelivery {
        header: DeliveryHeader {
            sender: SenderInfo {
                id: sender_id.to_owned(),
                name: sender_name.to_owned(),
                attention: None,
            },
            recipient: recipient.to_owned(),
            reference,
            correlation_id: None,
            attention: None,
        },
        messages: vec![SecureMessage {
            header: MessageHeader {
                id: "1".to_owned(),
                subject: subject.to_owned(),
                support_info: SupportInfo {
                    text: format!("Frågor? Kontakta {sender_name}."),
                    url: None,
                    phone_number: None,
                    email_address: None,
                },
                official_matter: None,
                metadata: Vec::new(),
                language: "sv".to_owned(),
            },
            body: MessageBody {
                content_type: if html {
                    BodyContentType::TextHtml
                } else {
                    BodyContentType::TextPlain
                },
                body: body.to_owned(),
            },
            attachments,
        }],
        paper_fallback: false,
    }
}

/// A tiny but real PDF (one page, "kuvert" text), for demos and tests.
pub fn sample_pdf(text: &str) -> Vec<u8> {
    let safe: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .collect();
    let content = format!("BT /F1 18 Tf 72 720 Td ({safe}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}
