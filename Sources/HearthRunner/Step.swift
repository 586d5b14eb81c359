import HearthSystem
/// The step contract: a step is a list of actions; each action has a check (is the host
/// already right?), an apply (make it right) and a verify after apply. Every boolean is
/// logged; the first false ends the step.
public struct Action {
    public typealias Check = () async throws -> Bool
    public typealias Apply = () async throws -> Void
    /// What to say about an action that ended true (which way it was done, say): the console
    /// prints it under the action's line and the log records it as the detail. "" says nothing.
    public typealias Note = () async -> String
    /// What a dry run shows under an action whose check is false: the change the apply would
    /// make (a unified diff of a file, the statements it would run), secrets masked; see
    /// DryRunPreview. Called only in a dry run, after the check.
    public typealias Preview = () throws -> String

    public let name: String
    public let check: Check
    public let apply: Apply
    public let verify: Check
    /// True for an action that only checks (the verify step, preconditions): it has nothing
    /// to apply, and a false check fails the step.
    public let isAssertion: Bool
    public let note: Note?
    public let preview: Preview?
    /// The same work as plain blocking calls, for an action that may run in an ActionGroup on a
    /// worker thread (libpq's calls block; they need no async context).
    public let blocking: Blocking?

    public struct Blocking {
        public let check: () throws -> Bool
        public let apply: () throws -> Void
        public let verify: () throws -> Bool
        /// Called when the action is done, whatever came of it (to close what it opened).
        public let done: () -> Void
    }

    /// `verify` defaults to running the check again.
    public init(
        _ name: String, check: @escaping Check, apply: @escaping Apply, verify: Check? = nil, note: Note? = nil,
        preview: Preview? = nil
    ) {
        self.name = name
        self.check = check
        self.apply = apply
        self.verify = verify ?? check
        self.isAssertion = false
        self.note = note
        self.preview = preview
        self.blocking = nil
    }

    private init(assertion name: String, note: Note?, _ check: @escaping Check) {
        self.name = name
        self.check = check
        self.apply = {}
        self.verify = check
        self.isAssertion = true
        self.note = note
        self.preview = nil
        self.blocking = nil
    }

    private init(name: String, blocking: Blocking, isAssertion: Bool, preview: Preview? = nil) {
        self.name = name
        self.check = { try blocking.check() }
        self.apply = { try blocking.apply() }
        self.verify = { try blocking.verify() }
        self.isAssertion = isAssertion
        self.note = nil
        self.preview = preview
        self.blocking = blocking
    }

    /// An action that only checks: false fails the step, and there is nothing to apply.
    public static func assertion(_ name: String, _ check: @escaping Check) -> Action {
        Action(assertion: name, note: nil, check)
    }

    /// An assertion that says what it found when true (the console's line under it, the log's detail).
    public static func assertion(_ name: String, note: @escaping Note, _ check: @escaping Check) -> Action {
        Action(assertion: name, note: note, check)
    }

    /// An action of plain blocking calls: it may run in an ActionGroup, side by side with others.
    public static func blocking(
        _ name: String, check: @escaping () throws -> Bool, apply: @escaping () throws -> Void,
        verify: (() throws -> Bool)? = nil, done: @escaping () -> Void = {}, preview: Preview? = nil
    ) -> Action {
        Action(
            name: name, blocking: Blocking(check: check, apply: apply, verify: verify ?? check, done: done),
            isAssertion: false, preview: preview)
    }

    /// An assertion of plain blocking calls (see `blocking`).
    public static func blockingAssertion(_ name: String, _ check: @escaping () throws -> Bool) -> Action {
        Action(name: name, blocking: Blocking(check: check, apply: {}, verify: check, done: {}), isAssertion: true)
    }
}

/// Actions that do not depend on one another (one per role or database), run side by side by
/// up to `width` worker threads. Each is checked, applied and logged as its own action, as in a
/// list; the first false starts no other (those running finish, and are logged), so the step
/// fails naming that action. A width of 1 runs them in order, as a list.
public struct ActionGroup {
    public let actions: [Action]
    /// How many side by side, asked when the group starts (it may ask the server how many
    /// connections it has free).
    public let width: () -> Int
    /// Called once the group has run (its workers have ended): e.g. to close their connections.
    public let finished: () -> Void

    public init(_ actions: [Action], width: @escaping () -> Int, finished: @escaping () -> Void = {}) {
        precondition(actions.allSatisfy { $0.blocking != nil }, "a group runs blocking actions only")
        self.actions = actions
        self.width = width
        self.finished = finished
    }
}

/// A named list of actions and groups of actions, run in order.
public struct Step {
    public enum Part {
        case action(Action)
        case group(ActionGroup)
    }

    public let name: String
    public let parts: [Part]

    /// Every action, in order (a group's where the group stands).
    public var actions: [Action] {
        parts.flatMap { part -> [Action] in
            switch part {
            case .action(let action): [action]
            case .group(let group): group.actions
            }
        }
    }

    public init(_ name: String, _ actions: [Action]) {
        self.name = name
        self.parts = actions.map(Part.action)
    }

    public init(_ name: String, parts: [Part]) {
        self.name = name
        self.parts = parts
    }
}
