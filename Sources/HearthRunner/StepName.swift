/// The steps' names, below every folder that must name one: a check that needs an earlier
/// step's work says which (`Failure("…", needs: StepName.postgres)`), and each step's
/// definition takes its name from here (`static let name = StepName.postgres`), so that the
/// name is written once and the layers under the steps never reach up into them.
public enum StepName {
    public static let serviceUser = "service-user"
    public static let postgres = "postgres"
    public static let pgHba = "pg-hba"
    public static let pgvector = "pgvector"
    public static let databases = "databases"
    public static let migrations = "migrations"
    public static let vectorIndex = "vector-index"
    public static let backup = "backup"
    public static let monitoring = "monitoring"
    public static let verify = "verify"
    /// The tools that run as steps (their log's step name).
    public static let reset = "reset"
    public static let restore = "restore"
}
