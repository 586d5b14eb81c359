import Testing
@testable import HearthCommands
@testable import HearthKit
@testable import HearthPgvector
@testable import HearthPostgres
@testable import HearthClient
@testable import HearthMigrations
@testable import HearthMonitoring
@testable import HearthBackup
@testable import HearthPG
@testable import HearthRunner
@testable import HearthConfiguration
@testable import HearthSystem

@Suite("SHA-256, HMAC, PBKDF2, base64 (libcrypto), SCRAM verifiers")
struct CryptoTests {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    @Test("SHA-256 test vectors (FIPS 180-4 examples)")
    func sha256() {
        #expect(SHA256.hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000))
            == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test("HMAC-SHA-256 (RFC 4231 test case 2)")
    func hmac() {
        #expect(hex(SHA256.hmac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("HMAC-SHA-256 (RFC 4231 test cases 1, 6: a key longer than the block), empty key and message")
    func hmacMore() {
        #expect(hex(SHA256.hmac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(hex(SHA256.hmac(
            key: [UInt8](repeating: 0xaa, count: 131),
            message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(hex(SHA256.hmac(key: [], message: []))
            == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    @Test("PBKDF2-HMAC-SHA-256 (RFC 7914 section 11, first block; 4096 iterations as SCRAM uses)")
    func pbkdf2() {
        #expect(SHA256.pbkdf2(password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1).map(hex)
            == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")
        // RFC 7677's SCRAM-SHA-256 example: password "pencil", its salt, 4096 iterations.
        let salt = Base64.decode("W22ZaJ0SNY7soEsUEjb6gQ==") ?? []
        #expect(SHA256.pbkdf2(password: Array("pencil".utf8), salt: salt, iterations: 4096).map(hex)
            == "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d")
        #expect(SHA256.pbkdf2(password: [], salt: salt, iterations: 1) != nil)
        #expect(SHA256.pbkdf2(password: [1], salt: salt, iterations: 0) == nil)
        #expect(SHA256.pbkdf2(password: [1], salt: salt, iterations: Int(Int32.max) + 1) == nil)
    }

    @Test("a SCRAM-SHA-256 verifier is matched by its password only (RFC 7677's example)")
    func scramMatch() throws {
        let verifier = try #require(SCRAMVerifier(
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
                + "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="))
        #expect(verifier.iterations == 4096)
        #expect(verifier.matches(Secret("pencil")))
        #expect(!verifier.matches(Secret("pencil ")))
        #expect(!verifier.matches(Secret("")))
    }

    @Test("base64 round trip")
    func base64() {
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let encoded = Base64.encode(Array(text.utf8))
            #expect(Base64.decode(encoded) == Array(text.utf8))
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.decode("Zm9v!") == nil)
        for bad in ["Zm9", "Zm=v", "Z===", "Zm9v\n", " Zm9v", "Zg=a", "Zm9vYmFy===="] {
            #expect(Base64.decode(bad) == nil, "\(bad)")
        }
        #expect(Base64.decode("Zg==") == Array("f".utf8))
        #expect(Base64.decode("") == [])
        let all = (0...255).map { UInt8($0) }
        #expect(Base64.decode(Base64.encode(all)) == all)
    }

    @Test("a SCRAM verifier from PostgreSQL's documentation format is parsed; garbage is not")
    func parse() {
        #expect(SCRAMVerifier("md5abc") == nil)
        #expect(SCRAMVerifier("SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB") == nil)
    }
}
