/// systemctl, for the units of the monitoring step: only where systemd runs (/run/systemd/system).
public enum SystemdUnits {
    static let seconds = 90

    public static var running: Bool {
        FileSystem.isDirectory("/run/systemd/system") && Command.resolve("systemctl") != nil
    }

    @discardableResult
    public static func systemctl(_ arguments: [String]) async throws -> String {
        try await Command.check(["systemctl"] + arguments, timeout: seconds)
    }

    public static func daemonReload() async throws { try await systemctl(["daemon-reload"]) }

    /// A property's value (`systemctl show --value -p NAME UNIT`).
    public static func property(_ unit: String, _ name: String, unix: Bool = false) async throws -> String {
        let arguments = ["show", "--value", "-p", name] + (unix ? ["--timestamp=unix"] : []) + [unit]
        return try await systemctl(arguments).trimmingCharacters(in: "\n ")
    }

    /// `systemctl is-enabled`: enabled (or enabled-runtime, alias, static) or not.
    public static func isEnabled(_ unit: String) async throws -> Bool {
        let result = try await Command.run(["systemctl", "is-enabled", unit], timeout: seconds)
        return ["enabled", "enabled-runtime", "alias", "static"].contains(result.stdout.trimmingCharacters(in: "\n "))
    }

    /// When the unit's main process started (Unix time), nil when it is not active.
    public static func mainStarted(_ unit: String) async throws -> Double? {
        guard try await property(unit, "ActiveState") == "active" else { return nil }
        let stamp = try await property(unit, "ExecMainStartTimestamp", unix: true)
        guard stamp.hasPrefix("@"), let seconds = Double(stamp.dropFirst()) else { return nil }
        return seconds
    }
}
