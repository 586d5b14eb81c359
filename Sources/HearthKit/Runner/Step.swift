/// The step contract: a step is a list of actions; each action has a check (is the host
/// already right?), an apply (make it right) and a verify after apply. Every boolean is
/// logged; the first false ends the step.
public struct Action {
    public typealias Check = () async throws -> Bool
    public typealias Apply = () async throws -> Void
    /// What to say about an action that ended true (which way it was done, say): the console
    /// prints it under the action's line and the log records it as the detail. "" says nothing.
    public typealias Note = () async -> String

    public let name: String
    public let check: Check
    public let apply: Apply
    public let verify: Check
    /// True for an action that only checks (the verify step, preconditions): it has nothing
    /// to apply, and a false check fails the step.
    public let isAssertion: Bool
    public let note: Note?

    /// `verify` defaults to running the check again.
    public init(
        _ name: String, check: @escaping Check, apply: @escaping Apply, verify: Check? = nil, note: Note? = nil
    ) {
        self.name = name
        self.check = check
        self.apply = apply
        self.verify = verify ?? check
        self.isAssertion = false
        self.note = note
    }

    private init(assertion name: String, _ check: @escaping Check) {
        self.name = name
        self.check = check
        self.apply = {}
        self.verify = check
        self.isAssertion = true
        self.note = nil
    }

    /// An action that only checks: false fails the step, and there is nothing to apply.
    public static func assertion(_ name: String, _ check: @escaping Check) -> Action {
        Action(assertion: name, check)
    }
}

/// A named list of actions, run in order.
public struct Step {
    public let name: String
    public let actions: [Action]

    public init(_ name: String, _ actions: [Action]) {
        self.name = name
        self.actions = actions
    }
}
