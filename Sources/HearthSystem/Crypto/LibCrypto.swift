import CCrypto

/// SHA-256, HMAC-SHA-256 and PBKDF2-HMAC-SHA-256 from OpenSSL's libcrypto (CCrypto). The binaries
/// already load it: libpq5 links it (libssl3), so it costs the host nothing new, and it is the
/// same code libpq uses for its own SCRAM exchange. (Checksums of migration files are made here,
/// not with PostgreSQL's sha256(), because `check`, `history` and `--sql` need them before any
/// connection exists.)
public enum SHA256 {
    public static let digestLength = 32

    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        let input = Array(bytes)
        var digest = [UInt8](repeating: 0, count: digestLength)
        input.withUnsafeBufferPointer { buffer in
            digest.withUnsafeMutableBufferPointer { out in
                withUnsafePointer(to: UInt8(0)) { empty in
                    _ = CCrypto.SHA256(buffer.baseAddress ?? empty, buffer.count, out.baseAddress)
                }
            }
        }
        return digest
    }

    /// The digest of a text's UTF-8 bytes, in lower-case hexadecimal (migration checksums).
    public static func hex(_ text: String) -> String {
        hex(Array(text.utf8))
    }

    public static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Hex.encode(hash(bytes))
    }

    public static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: digestLength)
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                out.withUnsafeMutableBufferPointer { o in
                    // An empty key or message still needs a valid pointer.
                    withUnsafePointer(to: UInt8(0)) { empty in
                        _ = HMAC(
                            EVP_sha256(), UnsafeRawPointer(k.baseAddress ?? empty), Int32(k.count),
                            m.baseAddress ?? empty, m.count, o.baseAddress, &length)
                    }
                }
            }
        }
        return out
    }

    /// PBKDF2-HMAC-SHA-256 for one 32-byte block (what SCRAM-SHA-256 needs); nil when
    /// libcrypto refuses (an iteration count beyond Int32).
    public static func pbkdf2(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8]? {
        guard iterations > 0, iterations <= Int(Int32.max) else { return nil }
        var out = [UInt8](repeating: 0, count: digestLength)
        let ok = password.withUnsafeBufferPointer { p in
            salt.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    withUnsafePointer(to: UInt8(0)) { empty in
                        PKCS5_PBKDF2_HMAC(
                            UnsafeRawPointer(p.baseAddress ?? empty).assumingMemoryBound(to: CChar.self), Int32(p.count),
                            s.baseAddress ?? empty, Int32(s.count), Int32(iterations), EVP_sha256(),
                            Int32(digestLength), o.baseAddress)
                    }
                }
            }
        }
        return ok == 1 ? out : nil
    }
}

/// Standard base64 (RFC 4648), as SCRAM verifiers use it: libcrypto's EVP_EncodeBlock and
/// EVP_DecodeBlock. Decoding is strict (the alphabet, whole quanta, `=` only as the last one or
/// two characters), which EVP_DecodeBlock alone is not.
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String {
        guard !bytes.isEmpty else { return "" }
        var out = [UInt8](repeating: 0, count: 4 * ((bytes.count + 2) / 3) + 1)
        let n = bytes.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { o in EVP_EncodeBlock(o.baseAddress, b.baseAddress, Int32(b.count)) }
        }
        return String(decoding: out.prefix(Int(max(n, 0))), as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        if input.isEmpty { return [] }
        var padding = 0
        for (i, c) in input.enumerated() {
            if c == UInt8(ascii: "=") {
                guard i >= input.count - 2 else { return nil }
                padding += 1
            } else {
                let letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
                    || c == UInt8(ascii: "+") || c == UInt8(ascii: "/")
                guard letter, padding == 0 else { return nil }
            }
        }
        var out = [UInt8](repeating: 0, count: input.count / 4 * 3)
        let n = input.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in EVP_DecodeBlock(o.baseAddress, i.baseAddress, Int32(i.count)) }
        }
        guard Int(n) == out.count else { return nil }
        return Array(out.prefix(out.count - padding))
    }
}

/// Lower-case hexadecimal of bytes (digests).
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
