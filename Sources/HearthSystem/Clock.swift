#if canImport(Glibc)
import Glibc
#endif

/// Monotonic milliseconds for durations, and UTC timestamps for the log.
public enum Clock {
    public static func nowMs() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1_000_000
    }

    /// `2026-11-26T15:36:07.123Z`
    public static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let base = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let millis = Int(ts.tv_nsec / 1_000_000)
        return base + "." + String(repeating: "0", count: 3 - String(millis).count) + String(millis) + "Z"
    }

    /// A short id for one run: the time and the process id, in hexadecimal.
    public static func newRunID() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return String(ts.tv_sec, radix: 16) + "-" + String(getpid(), radix: 16)
    }
}
