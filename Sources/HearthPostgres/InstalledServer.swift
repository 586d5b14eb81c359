import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Whether the cluster's server runs the PostgreSQL that dpkg has installed now.
///
/// An upgrade of `postgresql-<PG_VERSION>` replaces the binaries and libraries under a running
/// server: the postgres step installing from lists newer than the ones it first saw, or apt
/// pulling a newer server in for a package that needs one (pgvector's). Where systemd does not
/// run, nothing restarts the server, and every new backend then loads the new libraries into the
/// old binary (`could not load library ".../plpgsql.so": undefined symbol ...`) while the cluster
/// still answers. So the postgres and pgvector steps restart a server whose version is not the
/// installed package's (a change, said so), and verify checks it.
public enum InstalledServer {
    /// The server's package.
    public static func package(pgVersion: Int) -> String { "postgresql-\(pgVersion)" }

    /// The Debian version of the installed `postgresql-<pgVersion>` (dpkg's status file), or
    /// nil when it is not installed.
    public static func packageVersion(pgVersion: Int, statusFile: String = DpkgStatus.defaultDirectory + "/status")
        -> String?
    {
        guard let record = DpkgStatus.record(of: package(pgVersion: pgVersion), statusFile: statusFile),
            record.state == "installed", !record.version.isEmpty
        else { return nil }
        return record.version
    }

    /// Why the running server (`SHOW server_version`) is not the installed package's version, or
    /// nil when it is. Debian's builds name their package version in the server's
    /// ("15.18 (Debian 15.18-0+deb12u1)"), which must be the installed one; a server that names
    /// none is compared by its upstream version ("15.18" against 15.18-0+deb12u1's).
    public static func difference(serverVersion: String, installed: String) -> String? {
        let installedUpstream = PgvectorVersions.upstream(installed)
        let marker = "(Debian "
        let parenthesis = serverVersion.drop(while: { $0 != "(" })
        if parenthesis.hasPrefix(marker), let close = parenthesis.firstIndex(of: ")") {
            let running = String(parenthesis[parenthesis.index(parenthesis.startIndex, offsetBy: marker.count)..<close])
            return running == installed ? nil : "the server runs \(running), but \(installed) is installed"
        }
        let upstream = String(serverVersion.prefix(while: { $0 != " " }))
        return upstream == installedUpstream
            ? nil : "the server runs \(upstream), but \(installed) is installed"
    }

    /// The difference for the server behind `connection` (nil: it runs the installed version).
    /// No installed package (a server of another packaging): nothing to compare, nil.
    public static func difference(_ connection: PGConnection, pgVersion: Int) throws -> String? {
        guard let installed = packageVersion(pgVersion: pgVersion) else { return nil }
        let shown = try connection.query("SELECT pg_catalog.current_setting('server_version')").scalar ?? ""
        return difference(serverVersion: shown, installed: installed)
    }

    /// The action of the postgres and pgvector steps: the cluster restarted (pg_ctlcluster) when
    /// its server is not the installed version. `connection` is the steps' superuser session,
    /// `reset` forgets it (the restart ends it).
    public static func action(
        _ paths: ClusterPaths, pgVersion: Int, connection: @escaping @Sendable () throws -> PGConnection,
        reset: @escaping @Sendable () -> Void
    ) -> Action {
        Action(
            "cluster \(paths.id) runs the installed PostgreSQL (restarted after an upgrade)",
            check: { try difference(connection(), pgVersion: pgVersion) == nil },
            apply: {
                reset()
                try await ClusterTools.control(paths, "restart")
            },
            verify: {
                reset()
                if let why = try difference(connection(), pgVersion: pgVersion) {
                    throw Failure("after a restart of cluster \(paths.id): \(why)")
                }
                return true
            })
    }
}
