/// The database roles of SPOR Access (see DESIGN.md, "PostgreSQL roles").
public enum DatabaseRole {
    /// Owns the schema and runs migrations.
    public static let owner = "spor_owner"
    /// The service's login: owns nothing, so row-level security applies and the rule triggers are out of reach.
    public static let application = "spor_app"
    /// Background work: delivers the outbox and expires due requests; the only role that claims and marks outbox rows.
    public static let worker = "spor_worker"
    /// Analysts: the reporting views only.
    public static let reporting = "spor_reporting"
}
