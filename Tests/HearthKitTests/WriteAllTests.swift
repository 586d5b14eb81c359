#if canImport(Glibc)
import Glibc
#endif
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

/// What a reader of a pipe received.
private final class Received: @unchecked Sendable {
    var bytes: [UInt8] = []
    var failure: Int32?
}

@Suite("writing whole: the log's, the console's and the owned files' writes (FileSystem.writeAll)")
struct WriteAllTests {
    @Test("a short write goes on with the rest: a non-blocking pipe that is full long before 1 MB is written gets every byte, in order")
    func shortWrites() {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        // Non-blocking: a write takes what fits (a short write), then EAGAIN until it is read.
        #expect(fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK) == 0)
        let bytes = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let received = Received()
        let (reader, writer) = (fds[0], fds[1])
        Workers.run(count: 2, width: 2) { i in
            if i == 0 {
                received.failure = FileSystem.writeAll(writer, bytes)
                close(writer)
                return true
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                usleep(200)  // slower than the writer: the pipe fills
                let n = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                received.bytes += buffer[0..<n]
            }
            close(reader)
            return true
        }
        #expect(received.failure == nil)
        #expect(received.bytes.count == bytes.count)
        #expect(received.bytes == bytes)
    }

    @Test("a descriptor that cannot be written is a failure with its errno, not a loop")
    func failure() {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        close(fds[1])
        #expect(FileSystem.writeAll(fds[1], Array("line\n".utf8)) == EBADF)
        #expect(FileSystem.writeAll(fds[1], []) == nil)
    }
}
