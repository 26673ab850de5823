//! A small sender-side client: build, sign and send deliveries. `kuvert send`
//! uses it, and so do the tests and benchmarks — the same code a small
//! municipality's script would run.

// Building and signing live in the relay crate, so that the web sender
// pages sign exactly what `kuvert send` does (decision 0020).
pub use kuvert_relay::compose::{attachment, sign, simple_delivery};

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

/// The canonical 12-digit form of an identity number written any way
/// (10 digits, hyphen, `+`): what a signed delivery must name. The century
/// of a 10-digit number is chosen here, once, by the sender, never again by
/// relay or mailbox.
pub fn canonical_recipient(
    written: &str,
    today: time::Date,
) -> Result<String, kuvert_domain::identity::IdentityError> {
    kuvert_domain::identity::RecipientId::parse(written, today).map(|id| id.as_str().to_owned())
}

/// A small but valid one-page PDF 1.4 showing `text` in Helvetica, for tests
/// and demos: what kuvert's attachment check accepts (a `%PDF-1.4` header,
/// objects, a cross-reference table with the right byte offsets, a trailer).
/// Pure: the same text always gives the same bytes. Each line of `text` is a
/// line on the page; characters of Latin-1 (åäö, é, ...) are written in
/// WinAnsiEncoding, anything else as '?'.
pub fn minimal_pdf(text: &str) -> Vec<u8> {
    let lines: Vec<String> = text.lines().map(pdf_string).collect();
    let content = format!(
        "BT /F1 18 Tf 24 TL 72 770 Td {} ET",
        lines
            .iter()
            .map(|line| format!("({line}) Tj T*"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    // The second line marks the file as binary for transfer programs.
    let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    // Each entry is exactly 20 bytes: 10-digit offset, 5-digit generation,
    // 'n' or 'f', and a two-byte end of line.
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

/// A PDF literal string's inside: '(', ')' and '\' escaped, Latin-1 beyond
/// ASCII as octal escapes (WinAnsiEncoding agrees with Latin-1 there), other
/// characters and controls as '?'.
fn pdf_string(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            '\u{A0}'..='\u{FF}' => out.push_str(&format!("\\{:03o}", u32::from(c))),
            _ => out.push('?'),
        }
    }
    out
}

/// The text of `docs/examples/beslut.pdf`, the README's example attachment.
pub const EXAMPLE_PDF_TEXT: &str = "Beslut om bostadsbidrag\n\
     Exempel från kuvert: en giltig PDF på en sida.";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use kuvert_domain::content::AttachmentType;
    use std::path::Path;

    /// The cross-reference table, read independently: every entry's offset
    /// points at "N 0 obj", and startxref at "xref".
    fn assert_offsets_right(pdf: &[u8]) {
        let text = String::from_utf8_lossy(pdf);
        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|rest| rest.lines().next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(pdf[startxref..].starts_with(b"xref\n"));
        let table = &text[text.find("xref\n").unwrap()..];
        let mut lines = table.lines().skip(1);
        let count: usize = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(lines.next(), Some("0000000000 65535 f "));
        for n in 1..count {
            let entry = lines.next().unwrap();
            assert_eq!(entry.len(), 19, "{entry:?}"); // + '\n' = 20 bytes
            let offset: usize = entry[..10].parse().unwrap();
            assert!(
                pdf[offset..].starts_with(format!("{n} 0 obj\n").as_bytes()),
                "object {n} is not at {offset}"
            );
        }
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
    }

    #[test]
    fn minimal_pdf_is_a_valid_pdf() {
        let pdf_type = AttachmentType::find("application/pdf").unwrap();
        for text in [
            "",
            "Beslut",
            "Beslut om bostadsbidrag\nåäö ÅÄÖ é (parentes) \\ snedstreck",
            "emoji \u{1F600} och kontroll \u{7}",
            EXAMPLE_PDF_TEXT,
            &"kuvert ".repeat(14_600),
        ] {
            let pdf = minimal_pdf(text);
            assert_offsets_right(&pdf);
            assert_eq!(pdf_type.check_content(&pdf), Ok(()), "{text:?}");
            assert_eq!(minimal_pdf(text), pdf, "not deterministic");
        }
        let pdf = minimal_pdf("QX7 attachment marker");
        assert!(pdf.windows(21).any(|w| w == b"QX7 attachment marker"));
        assert!(minimal_pdf("å").windows(6).any(|w| w == b"(\\345)"));
    }

    /// The README's example attachment is `minimal_pdf(EXAMPLE_PDF_TEXT)`;
    /// `KUVERT_UPDATE_EXAMPLES=1 cargo test -p kuvert example` writes it anew.
    #[test]
    fn committed_example_pdf_matches() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/beslut.pdf");
        let pdf = minimal_pdf(EXAMPLE_PDF_TEXT);
        if std::env::var_os("KUVERT_UPDATE_EXAMPLES").is_some() {
            std::fs::write(&path, &pdf).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `KUVERT_UPDATE_EXAMPLES=1 cargo test -p kuvert example`",
                path.display()
            )
        });
        assert!(
            committed == pdf,
            "docs/examples/beslut.pdf drifted from minimal_pdf: run \
             `KUVERT_UPDATE_EXAMPLES=1 cargo test -p kuvert example` and commit"
        );
    }
}
