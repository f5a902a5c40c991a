//! The schema registry wire format's header: magic byte 0 and the schema id (4 bytes, big
//! endian), as Confluent's, Redpanda's, Apicurio's (in its Confluent-compatible mode) and
//! Karapace's serializers write it. Protobuf's message indexes that follow the id are read by
//! [`super::proto`].

use crate::mapping::doc::DecodeError;

/// The schema id and the encoded value after the header.
pub fn split(payload: Option<&[u8]>) -> Result<(u32, &[u8]), DecodeError> {
    let bytes = payload.ok_or(DecodeError::Tombstone)?;
    match bytes {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [m, ..] if *m != 0 => Err(DecodeError::BadMagicByte(*m)),
        short => Err(DecodeError::Truncated(short.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_id_and_refuses_what_is_not_framed() {
        assert_eq!(
            split(Some(&[0, 0, 0, 1, 2, 9, 9])),
            Ok((258, &[9u8, 9][..]))
        );
        assert_eq!(split(Some(&[0, 0, 0, 0, 7])), Ok((7, &[][..])));
        assert_eq!(
            split(Some(b"{\"a\":1}")),
            Err(DecodeError::BadMagicByte(b'{'))
        );
        assert_eq!(split(Some(&[0, 0, 1])), Err(DecodeError::Truncated(3)));
        assert_eq!(split(Some(&[])), Err(DecodeError::Truncated(0)));
        assert_eq!(split(None), Err(DecodeError::Tombstone));
    }
}
