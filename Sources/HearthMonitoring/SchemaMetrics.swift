import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Each database's schema state as textfile metrics (`hearthminds_schema.prom`), written by the
/// monitoring step from what the migrations state says (read as each database's owner, as
/// `hm-migrate current` reads it). Not read by the exporter: its role would have to read the
/// tenants' own tables (a view or a row-level policy there runs the tenant's code as the reader).
public enum SchemaMetrics {
    public static func render(_ statuses: [MigrationStatus]) -> TextfileMetrics {
        func labels(_ status: MigrationStatus) -> [(String, String)] { [("datname", status.database)] }
        return TextfileMetrics([
            .init(
                "hearthminds_schema_revision_info", help: "The database's revision (alembic_version; \"base\": none) and the head of Migrations/.",
                statuses.map { .init(labels($0) + [("revision", $0.current ?? "base"), ("head", $0.head ?? "base")], 1) }),
            .init(
                "hearthminds_schema_revision", help: "The database's revision as a number (its leading digits; 0: base).",
                statuses.map { .init(labels($0), number($0.current)) }),
            .init(
                "hearthminds_schema_head_revision", help: "The head revision of Migrations/ as a number.",
                statuses.map { .init(labels($0), number($0.head)) }),
            .init(
                "hearthminds_schema_at_head", help: "1 when the database is at the head revision.",
                statuses.map { .init(labels($0), $0.atHead ? 1 : 0) }),
            .init(
                "hearthminds_schema_checksums_match", help: "1 when no applied revision's files changed since they ran.",
                statuses.map { .init(labels($0), $0.changed.isEmpty ? 1 : 0) }),
        ])
    }

    /// `0006` → 6; base (nil) → 0; a revision id without leading digits → NaN.
    static func number(_ revision: String?) -> Double {
        guard let revision else { return 0 }
        let digits = revision.prefix(while: { $0.isASCIIDigitCharacter }).prefix(15)
        return digits.isEmpty ? .nan : Double(Int(digits) ?? 0)
    }
}
