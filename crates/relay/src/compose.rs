//! Building and signing a delivery as a sender does: `kuvert send`, the
//! tests and benchmarks (through `kuvert::client`) and the web sender pages
//! all use these, so a delivery sent by hand is signed exactly like one sent
//! through the API.

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
