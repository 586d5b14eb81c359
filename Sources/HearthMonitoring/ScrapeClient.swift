import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// A scrape, as Prometheus makes it: `GET /metrics` over HTTP/1.0 to an address of this host,
/// the body read whole (at most 64 MiB), within `timeout` seconds. For the monitoring step's
/// proof that the exporter answers, and the tests.
public enum ScrapeClient {
    public static func get(host: String, port: Int, path: String = "/metrics", timeout: Int = 10) throws -> String {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let info = found else {
            throw Failure("cannot resolve \(host)")
        }
        defer { freeaddrinfo(found) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure("socket: \(FileSystem.errnoText())") }
        defer { close(fd) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw Failure("cannot connect to \(host):\(port): \(FileSystem.errnoText())")
        }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\nAccept: text/plain\r\n\r\n".utf8)
        if let code = FileSystem.writeAll(fd, request) { throw Failure("cannot send to \(host):\(port): \(FileSystem.errnoText(code))") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while response.count < 64 << 20 {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 { throw Failure("cannot read from \(host):\(port): \(FileSystem.errnoText())") }
            if n == 0 { break }
            response += buffer[0..<n]
        }
        // The head ends at the first empty line.
        var split: Int? = nil
        if response.count >= 4 {
            for i in 0...(response.count - 4)
            where response[i] == 13 && response[i + 1] == 10 && response[i + 2] == 13 && response[i + 3] == 10 {
                split = i
                break
            }
        }
        guard let split else { throw Failure("\(host):\(port) did not answer HTTP") }
        let head = String(decoding: response[0..<split], as: UTF8.self)
        let status = head.prefix(while: { $0 != "\r" })
        guard status.hasPrefix("HTTP/1."), status.split(separator: " ").dropFirst().first == "200" else {
            throw Failure("\(host):\(port)\(path): \(status)")
        }
        return String(decoding: response[(split + 4)...], as: UTF8.self)
    }
}
