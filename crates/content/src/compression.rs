//! Layer compression, detected from magic bytes as Docker does (`DetectCompression` in
//! moby's pkg/archive): gzip `1f 8b 08`, zstd `28 b5 2f fd` (RFC 8878 §3.1.1), bzip2 `BZh`,
//! xz `fd 37 7a 58 5a 00`. The media type of a layer is not trusted: the bytes decide.

use std::io::{self, Cursor, Read};

use crate::error::{ContentError, IoContext, Result};

/// A compression format of a layer stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/// Detects the compression from the first bytes of a stream (at least 6 if the stream has
/// them). bzip2 and xz are recognised and refused.
pub fn detect(prefix: &[u8]) -> Result<Compression> {
    if prefix.starts_with(GZIP_MAGIC) {
        Ok(Compression::Gzip)
    } else if prefix.starts_with(ZSTD_MAGIC) {
        Ok(Compression::Zstd)
    } else if prefix.starts_with(BZIP2_MAGIC) {
        Err(ContentError::UnsupportedCompression("bzip2"))
    } else if prefix.starts_with(XZ_MAGIC) {
        Err(ContentError::UnsupportedCompression("xz"))
    } else {
        Ok(Compression::None)
    }
}

/// Wraps `reader` in the decompressor its magic bytes call for. Returns the detected format
/// and a reader of the uncompressed stream.
pub fn decompress<'a, R: Read + 'a>(mut reader: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut prefix = [0u8; 6];
    let mut filled = 0;
    // A pipe may deliver fewer bytes per read than the magic needs.
    while filled < prefix.len() {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).ctx(|| "read layer stream".into()),
        }
    }
    let head = Cursor::new(prefix[..filled].to_vec());
    let whole = head.chain(reader);
    let compression = detect(&prefix[..filled])?;
    let out: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(whole),
        // MultiGzDecoder: a gzip file may hold several members (RFC 1952 §2.2), as pigz and
        // parallel compressors write.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(whole).ctx(|| "start zstd decoder".into())?)
        }
    };
    Ok((compression, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_and_round_trips() {
        let data = b"hello layer".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&data[..], 1).unwrap();
        for (input, want) in [
            (data.clone(), Compression::None),
            (gz, Compression::Gzip),
            (zst, Compression::Zstd),
        ] {
            let (c, mut r) = decompress(&input[..]).unwrap();
            assert_eq!(c, want);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
        // Streams shorter than the magic are plain.
        let (c, mut r) = decompress(&b"ab"[..]).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!((c, out), (Compression::None, b"ab".to_vec()));
    }

    #[test]
    fn refuses_bzip2_and_xz() {
        assert!(matches!(
            detect(b"BZh91AY"),
            Err(ContentError::UnsupportedCompression("bzip2"))
        ));
        assert!(matches!(
            detect(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
            Err(ContentError::UnsupportedCompression("xz"))
        ));
    }
}
