import HearthSystem
#if canImport(Glibc)
import Glibc
#endif

/// Every run bounded in time (STEP_TIMEOUT): a step that has not ended when its deadline
/// passes ends false there, saying which actions it was in — what it waited for (a login a
/// tenant holds, a lock, a server that does not answer, apt). The record goes to the log and
/// the line to standard error, then the process exits 1: its connections close with it, and
/// the run lock, held on install.sh's descriptor or the step's own, is released by the exit.
/// The commands it started (apt-get and dpkg, their maintainer scripts, postgresql-common's
/// tools) are killed with it (ProcessTree): a dpkg cut in the middle is what the next run
/// finishes (Apt.finishInterrupted). A server it started (pg_ctl's postmaster, in a session of
/// its own) is not.
public enum StepDeadline {
    /// The actions being evaluated now (a group runs several side by side).
    private static let mutex = Mutex()
    nonisolated(unsafe) private static var current: [String] = []

    static func started(_ action: String) {
        mutex.locked { current.append(action) }
    }

    static func finished(_ action: String) {
        mutex.locked {
            if let i = current.firstIndex(of: action) { current.remove(at: i) }
        }
    }

    /// What the step is in now, for the message.
    static func inProgress() -> [String] {
        mutex.locked { current }
    }

    /// The message and the log record of a step whose deadline passed.
    static func expired(step: String, seconds: Int, actions: [String], runID: String) -> (String, LogRecord) {
        let at = actions.isEmpty ? "between actions" : "in " + actions.map { "'\($0)'" }.joined(separator: ", ")
        let message =
            "hm-\(step): deadline of \(seconds) s passed (STEP_TIMEOUT) \(at); the step ends false here "
            + "(raise STEP_TIMEOUT if the work is real, or remove what holds it)"
        let record = LogRecord(
            time: Clock.timestamp(), run: runID, step: step, action: actions.first ?? "(step)", result: false,
            changed: false, ms: Double(seconds) * 1000, detail: message, dryRun: false)
        return (message, record)
    }

    /// Starts the watchdog of this process's step: a thread that sleeps until the deadline,
    /// then logs, says it and exits 1.
    public static func arm(step: String, seconds: Int, runID: String, log: JSONLog?, console: Console) {
        let watchdog = Watchdog(step: step, seconds: seconds, runID: runID, log: log, console: console)
        let box = Unmanaged.passRetained(watchdog).toOpaque()
        var thread = pthread_t()
        let made = pthread_create(
            &thread, nil,
            { box in
                let watchdog = Unmanaged<Watchdog>.fromOpaque(box!).takeRetainedValue()
                watchdog.wait()
                return nil
            }, box)
        if made == 0 { pthread_detach(thread) } else { Unmanaged<Watchdog>.fromOpaque(box).release() }
    }

    private final class Watchdog: @unchecked Sendable {
        let step: String
        let seconds: Int
        let runID: String
        let log: JSONLog?
        let console: Console

        init(step: String, seconds: Int, runID: String, log: JSONLog?, console: Console) {
            (self.step, self.seconds, self.runID, self.log, self.console) = (step, seconds, runID, log, console)
        }

        func wait() {
            var left = timespec(tv_sec: seconds, tv_nsec: 0)
            var rest = timespec()
            while nanosleep(&left, &rest) != 0 && errno == EINTR { left = rest }
            let (message, record) = StepDeadline.expired(
                step: step, seconds: seconds, actions: StepDeadline.inProgress(), runID: runID)
            // (what the step started goes with it: a tool or a maintainer script held past the
            // deadline would keep its locks, dpkg's among them, as root)
            ProcessTree.killDescendants()
            log?.write(record)
            console.err(console.paint(message, .failed))
            _exit(ExitStatus.failed)
        }
    }
}
