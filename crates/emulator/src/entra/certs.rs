//! Certificate credentials: reading an X.509 certificate (PEM or DER) registered on an app,
//! its thumbprints (`x5t`, `x5t#S256`), validity end and RSA public key. A minimal DER reader
//! walks `Certificate -> tbsCertificate -> subjectPublicKeyInfo` (RFC 5280, section 4.1).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::model::AppCertificate;

/// One DER element: its tag, its content and what follows it.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    rest: &'a [u8],
}

fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, input) = input.split_first()?;
    let (&first, input) = input.split_first()?;
    let (len, input) = if first < 0x80 {
        (usize::from(first), input)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let len = input[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &input[n..])
    };
    if input.len() < len {
        return None;
    }
    Some(Tlv {
        tag,
        content: &input[..len],
        rest: &input[len..],
    })
}

const SEQUENCE: u8 = 0x30;

/// What the emulator needs from a certificate.
#[derive(Debug, Clone)]
pub(crate) struct ParsedCertificate {
    /// PKCS#1 `RSAPublicKey` DER, as ring verifies with it.
    pub(crate) rsa_public_key: Vec<u8>,
    /// `notAfter`: when the credential stops working.
    pub(crate) not_after: DateTime<Utc>,
}

/// Reads the RSA public key and `notAfter` from a certificate's DER.
pub(crate) fn parse_der(der: &[u8]) -> Result<ParsedCertificate, String> {
    let bad = |what: &str| format!("not an X.509 certificate: {what}");
    let cert = tlv(der)
        .filter(|t| t.tag == SEQUENCE)
        .ok_or_else(|| bad("outer SEQUENCE"))?;
    let tbs = tlv(cert.content)
        .filter(|t| t.tag == SEQUENCE)
        .ok_or_else(|| bad("tbsCertificate"))?;
    let mut field = tlv(tbs.content).ok_or_else(|| bad("serial number"))?;
    if field.tag == 0xa0 {
        // [0] EXPLICIT version
        field = tlv(field.rest).ok_or_else(|| bad("serial number"))?;
    }
    let signature = tlv(field.rest).ok_or_else(|| bad("signature algorithm"))?;
    let issuer = tlv(signature.rest).ok_or_else(|| bad("issuer"))?;
    let validity = tlv(issuer.rest)
        .filter(|t| t.tag == SEQUENCE)
        .ok_or_else(|| bad("validity"))?;
    let not_before = tlv(validity.content).ok_or_else(|| bad("notBefore"))?;
    let not_after_tlv = tlv(not_before.rest).ok_or_else(|| bad("notAfter"))?;
    let not_after =
        parse_time(not_after_tlv.tag, not_after_tlv.content).ok_or_else(|| bad("notAfter time"))?;
    let subject = tlv(validity.rest).ok_or_else(|| bad("subject"))?;
    let spki = tlv(subject.rest)
        .filter(|t| t.tag == SEQUENCE)
        .ok_or_else(|| bad("subjectPublicKeyInfo"))?;
    let algorithm = tlv(spki.content)
        .filter(|t| t.tag == SEQUENCE)
        .ok_or_else(|| bad("public key algorithm"))?;
    // rsaEncryption, 1.2.840.113549.1.1.1
    const RSA_OID: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    if !algorithm.content.starts_with(RSA_OID) {
        return Err("the certificate's key is not RSA (client assertions are RS256)".into());
    }
    let bits = tlv(algorithm.rest)
        .filter(|t| t.tag == 0x03 && t.content.first() == Some(&0))
        .ok_or_else(|| bad("subjectPublicKey"))?;
    Ok(ParsedCertificate {
        rsa_public_key: bits.content[1..].to_vec(),
        not_after,
    })
}

fn parse_time(tag: u8, content: &[u8]) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(content).ok()?;
    let full = match tag {
        // UTCTime: YYMMDDHHMMSSZ, years 50-99 are 19xx (RFC 5280, 4.1.2.5.1)
        0x17 => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 => text.to_owned(),
        _ => return None,
    };
    NaiveDateTime::parse_from_str(full.trim_end_matches('Z'), "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem
        .find(BEGIN)
        .ok_or("the PEM has no BEGIN CERTIFICATE block")?
        + BEGIN.len();
    let end = pem[start..]
        .find(END)
        .ok_or("the PEM's certificate block is not closed")?
        + start;
    let body: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|e| format!("the PEM's base64 is invalid: {e}"))
}

/// Builds the credential for a certificate (PEM), checking it parses.
pub(crate) fn credential_from_pem(pem: &str) -> Result<AppCertificate, String> {
    let der = pem_to_der(pem)?;
    let parsed = parse_der(&der)?;
    Ok(AppCertificate {
        thumbprint_sha256: B64.encode(ring::digest::digest(&ring::digest::SHA256, &der)),
        thumbprint_sha1: B64.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &der,
        )),
        expires: parsed.not_after,
        der,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_garbage() {
        let t = parse_time(0x17, b"491231235959Z").unwrap();
        assert_eq!(t.format("%Y").to_string(), "2049");
        let t = parse_time(0x18, b"21001231235959Z").unwrap();
        assert_eq!(t.format("%Y").to_string(), "2100");
        assert!(parse_der(&[0x30, 0x03, 0x02, 0x01]).is_err());
        assert!(pem_to_der("nothing").is_err());
    }

    #[test]
    fn reads_a_certificate_and_rejects_non_rsa_keys() {
        let ec = rcgen::generate_simple_self_signed(vec!["ec.example".into()]).unwrap();
        let der = pem_to_der(&ec.cert.pem()).unwrap();
        assert_eq!(der, ec.cert.der().to_vec());
        let err = parse_der(&der).unwrap_err();
        assert!(err.contains("not RSA"), "{err}");
        assert!(credential_from_pem(&ec.cert.pem()).is_err());
    }
}
