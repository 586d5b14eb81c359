#if canImport(Glibc)
import Glibc
#endif

/// A task executor of one thread of its own, for a test that runs a step (or a migration) in the
/// background while it watches the server: a task of the cooperative pool, which has only as
/// many threads as cores, may wait behind other suites' blocking calls for minutes on a loaded
/// run, so that what the test waits for never starts in time. `Task(executorPreference:)`.
final class OwnThreadExecutor: TaskExecutor, @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var jobs: [UnownedJob] = []

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(&thread, nil, { raw in
            Unmanaged<OwnThreadExecutor>.fromOpaque(raw!).takeRetainedValue().drain()
            return nil
        }, context) == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<OwnThreadExecutor>.fromOpaque(context).release()
        }
    }

    func enqueue(_ job: UnownedJob) {
        pthread_mutex_lock(&mutex)
        jobs.append(job)
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Runs the jobs as they come, for the life of the process (a test's executor is never freed).
    private func drain() {
        while true {
            pthread_mutex_lock(&mutex)
            while jobs.isEmpty { pthread_cond_wait(&condition, &mutex) }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(&mutex)
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
