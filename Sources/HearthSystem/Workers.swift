#if canImport(Glibc)
import Glibc
#endif

/// Worker threads for blocking work (libpq calls) side by side: `run` calls `body(i)` for each
/// i in 0..<count on up to `width` threads and returns when all have ended. A body that returns
/// false starts no further one. Threads, not Swift tasks: a libpq call blocks its thread, and
/// the cooperative pool has only as many threads as cores. A connection opened by peer
/// authentication switches the euid of its own thread only (PGConnection), so workers keep
/// their identities apart.
public enum Workers {
    /// How many workers side by side: twice the cores (the server works while a worker waits
    /// for it), at most 8, at least 1.
    public static var defaultWidth: Int {
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return max(1, min(8, 2 * max(1, cores)))
    }

    /// The number of the worker thread this runs on (1, 2, ..., never the same twice in a
    /// process, also for workers a worker starts); 0 outside `run`'s threads.
    public static var current: Int {
        Int(bitPattern: pthread_getspecific(workerKey))
    }

    private static let numbers = Mutex()
    nonisolated(unsafe) private static var lastNumber = 0

    nonisolated(unsafe) private static let workerKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    public static func run(count: Int, width: Int, _ body: @escaping (Int) -> Bool) {
        guard count > 0 else { return }
        let width = max(1, min(width, count))
        if width == 1 {
            for i in 0..<count where !body(i) { break }
            return
        }
        let queue = Queue(count: count, body: body)
        var threads: [pthread_t] = []
        _ = workerKey
        let first = numbers.locked { () -> Int in
            defer { lastNumber += width }
            return lastNumber + 1
        }
        for number in first..<(first + width) {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(Start(queue: queue, number: number)).toOpaque()
            if pthread_create(&thread, nil, { raw in
                let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
                pthread_setspecific(Workers.workerKey, UnsafeRawPointer(bitPattern: start.number))
                start.queue.drain()
                return nil
            }, context) == 0 {
                threads.append(thread)
            } else {
                Unmanaged<Start>.fromOpaque(context).release()
            }
        }
        if threads.isEmpty { queue.drain() }  // no thread could start: this one does the work
        for thread in threads { pthread_join(thread, nil) }
    }

    /// What a worker thread starts with.
    private final class Start: @unchecked Sendable {
        let queue: Queue
        let number: Int

        init(queue: Queue, number: Int) {
            self.queue = queue
            self.number = number
        }
    }

    /// The shared work list.
    private final class Queue: @unchecked Sendable {
        var lock = pthread_mutex_t()
        var next = 0
        var stopped = false
        let count: Int
        let body: (Int) -> Bool

        init(count: Int, body: @escaping (Int) -> Bool) {
            self.count = count
            self.body = body
            pthread_mutex_init(&lock, nil)
        }

        deinit { pthread_mutex_destroy(&lock) }

        func drain() {
            while true {
                pthread_mutex_lock(&lock)
                guard !stopped, next < count else {
                    pthread_mutex_unlock(&lock)
                    return
                }
                let i = next
                next += 1
                pthread_mutex_unlock(&lock)
                if !body(i) {
                    pthread_mutex_lock(&lock)
                    stopped = true
                    pthread_mutex_unlock(&lock)
                }
            }
        }
    }
}

/// A mutex for state the workers share.
public final class Mutex: @unchecked Sendable {
    private var lock = pthread_mutex_t()

    public init() { pthread_mutex_init(&lock, nil) }
    deinit { pthread_mutex_destroy(&lock) }

    public func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return try body()
    }
}

/// A value computed once, on first use, by whichever worker asks first; a failure is kept too.
public final class Once<Value>: @unchecked Sendable {
    private let mutex = Mutex()
    private var result: Result<Value, any Error>?
    private let make: () throws -> Value

    public init(_ make: @escaping () throws -> Value) {
        self.make = make
    }

    public func get() throws -> Value {
        try mutex.locked {
            if let result { return try result.get() }
            let made = Result { try make() }
            result = made
            return try made.get()
        }
    }
}

/// What one action opened for its check and keeps for its apply and verify (a migrator and its
/// connection, say); cleared when the action is done.
public final class Held<Value>: @unchecked Sendable {
    private let mutex = Mutex()
    private var value: Value?

    public init() {}

    public func get(_ make: () throws -> Value) rethrows -> Value {
        if let value = mutex.locked({ value }) { return value }
        let made = try make()
        mutex.locked { value = made }
        return made
    }

    public func clear() {
        let old = mutex.locked { () -> Value? in
            let old = value
            value = nil
            return old
        }
        _ = old
    }
}

/// What an action's apply found, for its note (set once by the apply; read after it).
public final class Box<Value>: @unchecked Sendable {
    private let mutex = Mutex()
    private var stored: Value?

    public init() {}

    public var value: Value? {
        get { mutex.locked { stored } }
        set { mutex.locked { stored = newValue } }
    }
}
