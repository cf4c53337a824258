//! Value decoding (`decodingStrategy`, ESO's `runtime/decoding`) and the NUL-byte check
//! (`nullBytePolicy`).
//!
//! Go's `base64.StdEncoding`/`URLEncoding` require padding, ignore `\r` and `\n`, and accept
//! non-zero trailing bits; the engines below are configured to match.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use esox_api::{DecodingStrategy, NullBytePolicy};

const GO_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_allow_trailing_bits(true)
    .with_decode_padding_mode(DecodePaddingMode::RequireCanonical);
const GO_STD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, GO_CONFIG);
const GO_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, GO_CONFIG);

fn go_decode(engine: &GeneralPurpose, input: &[u8]) -> Result<Vec<u8>, String> {
    let cleaned: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    engine
        .decode(&cleaned)
        .map_err(|e| decode_error_message(&e, input, cleaned.len()))
}

/// Go's `illegal base64 data at input byte N`, with `N` an offset into the value as stored
/// (line breaks included). The base64 crate's own message quotes the offending byte, and
/// errors end up in Events that people who may not read Secrets can see, so it is not used.
fn decode_error_message(e: &base64::DecodeError, input: &[u8], cleaned_len: usize) -> String {
    use base64::DecodeError;
    let cleaned_offset = match *e {
        DecodeError::InvalidByte(offset, _) | DecodeError::InvalidLastSymbol(offset, _) => offset,
        DecodeError::InvalidLength(_) | DecodeError::InvalidPadding => cleaned_len,
    };
    // Map the offset among non-line-break bytes back to the original value.
    let offset = input
        .iter()
        .enumerate()
        .filter(|(_, b)| **b != b'\r' && **b != b'\n')
        .nth(cleaned_offset)
        .map_or(input.len(), |(i, _)| i);
    match e {
        DecodeError::InvalidPadding => {
            format!("illegal base64 data at input byte {offset} (bad padding)")
        }
        DecodeError::InvalidLength(_) => {
            format!("illegal base64 data at input byte {offset} (truncated input)")
        }
        _ => format!("illegal base64 data at input byte {offset}"),
    }
}

/// The strategy's name as users write it.
pub fn strategy_name(strategy: DecodingStrategy) -> &'static str {
    match strategy {
        DecodingStrategy::Auto => "Auto",
        DecodingStrategy::Base64 => "Base64",
        DecodingStrategy::Base64Url => "Base64URL",
        DecodingStrategy::None => "None",
    }
}

/// Decodes one value. `Auto` tries Base64, then Base64URL, and otherwise keeps the value.
pub fn decode(strategy: DecodingStrategy, value: Vec<u8>) -> Result<Vec<u8>, String> {
    match strategy {
        DecodingStrategy::None => Ok(value),
        DecodingStrategy::Base64 => go_decode(&GO_STD, &value),
        DecodingStrategy::Base64Url => go_decode(&GO_URL, &value),
        DecodingStrategy::Auto => go_decode(&GO_STD, &value)
            .or_else(|_| go_decode(&GO_URL, &value))
            .or(Ok(value)),
    }
}

/// Whether a value breaks `nullBytePolicy: Fail`.
pub fn violates_null_byte_policy(policy: NullBytePolicy, value: &[u8]) -> bool {
    policy == NullBytePolicy::Fail && value.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_keeps_the_bytes() {
        assert_eq!(
            decode(DecodingStrategy::None, b"aGk=".to_vec()),
            Ok(b"aGk=".to_vec())
        );
    }

    #[test]
    fn base64_requires_padding_like_go() {
        assert_eq!(
            decode(DecodingStrategy::Base64, b"aGVsbG8=".to_vec()),
            Ok(b"hello".to_vec())
        );
        assert!(decode(DecodingStrategy::Base64, b"aGVsbG8".to_vec()).is_err());
        assert!(decode(DecodingStrategy::Base64, b"not base64!".to_vec()).is_err());
    }

    #[test]
    fn base64_ignores_line_breaks_like_go() {
        assert_eq!(
            decode(DecodingStrategy::Base64, b"aGVs\nbG8=\r\n".to_vec()),
            Ok(b"hello".to_vec())
        );
    }

    #[test]
    fn base64url_uses_the_url_alphabet() {
        // 0xfb 0xff -> "+/8=" standard, "-_8=" URL-safe.
        assert_eq!(
            decode(DecodingStrategy::Base64Url, b"-_8=".to_vec()),
            Ok(vec![0xfb, 0xff])
        );
        assert!(decode(DecodingStrategy::Base64Url, b"+/8=".to_vec()).is_err());
    }

    #[test]
    fn auto_tries_base64_then_base64url_then_keeps_the_value() {
        assert_eq!(
            decode(DecodingStrategy::Auto, b"+/8=".to_vec()),
            Ok(vec![0xfb, 0xff])
        );
        assert_eq!(
            decode(DecodingStrategy::Auto, b"-_8=".to_vec()),
            Ok(vec![0xfb, 0xff])
        );
        assert_eq!(
            decode(DecodingStrategy::Auto, b"plain text".to_vec()),
            Ok(b"plain text".to_vec())
        );
        // A plain word that happens to be valid Base64 is decoded: ESO's documented pitfall.
        assert_eq!(
            decode(DecodingStrategy::Auto, b"test".to_vec()),
            Ok(vec![0xb5, 0xeb, 0x2d])
        );
    }

    #[test]
    fn decode_errors_name_an_offset_never_a_byte() {
        let secret = b"hunter2-DISTINCTIVE";
        for strategy in [DecodingStrategy::Base64, DecodingStrategy::Base64Url] {
            let e = decode(strategy, secret.to_vec()).unwrap_err();
            assert!(e.starts_with("illegal base64 data at input byte "), "{e}");
            if strategy == DecodingStrategy::Base64 {
                assert_eq!(e, "illegal base64 data at input byte 7");
            }
            // The offending byte is '-' (45) for Base64; neither it nor the value appears.
            assert!(
                !e.contains("hunter2") && !e.contains("45") && !e.contains('-'),
                "{e}"
            );
        }
        // Offsets count the line breaks Go skips.
        let e = decode(DecodingStrategy::Base64, b"aGVs\r\nbG8*".to_vec()).unwrap_err();
        assert_eq!(e, "illegal base64 data at input byte 9");
        // Bad length and bad padding still say where.
        let e = decode(DecodingStrategy::Base64, b"aGVsbG8".to_vec()).unwrap_err();
        assert!(e.starts_with("illegal base64 data at input byte 7"), "{e}");
        let e = decode(DecodingStrategy::Base64, b"aGk==".to_vec()).unwrap_err();
        assert!(e.starts_with("illegal base64 data at input byte"), "{e}");
        assert!(!e.contains("aGk"), "{e}");
    }

    #[test]
    fn null_bytes_fail_only_under_fail_policy() {
        assert!(violates_null_byte_policy(NullBytePolicy::Fail, b"a\0b"));
        assert!(!violates_null_byte_policy(NullBytePolicy::Ignore, b"a\0b"));
        assert!(!violates_null_byte_policy(NullBytePolicy::Fail, b"ab"));
    }
}
