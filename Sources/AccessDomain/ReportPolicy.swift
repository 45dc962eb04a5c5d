/// The reporting views (`reporting.*`), by the names analysts and the API use.
public enum ReportName: String, Sendable, Codable, CaseIterable {
    case organisationsWithoutSuperUser = "organisations_without_super_user"
    case organisationsWithSingleSuperUser = "organisations_with_single_super_user"
    case pendingAccessRequests = "pending_access_requests"
    case serviceDeskSLA = "service_desk_sla"
    case roleHolders = "role_holders"
    case approvalActivity = "approval_activity"
    case requestFunnel = "request_funnel"
    case omsChangeRequests = "oms_change_requests"
    /// Issue 12: the reminders and grant notices the jobs sent.
    case reminderHistory = "reminder_history"
    /// R21: every role assignment with its end.
    case roleGrants = "role_grants"
    /// R22: each access review's completion, and its items' states.
    case accessReviewCompletion = "access_review_completion"
    case accessReviewItems = "access_review_items"

    /// Whether the report has an `organisation_id` column to filter on.
    public var isPerOrganisation: Bool { self != .requestFunnel && self != .omsChangeRequests }
}

extension ApprovalPolicy {
    /// R13 for reports (`spor_report` checks the same in SQL): staff read every report; a super user only the
    /// per-organisation reports of an organisation where they hold the super-user role; anyone else finds nothing.
    public static func canRead(
        _ report: ReportName, organisation: OrganisationID?, actor: Actor, superUserOf organisations: Set<OrganisationID>
    ) -> Result<Void, Refusal> {
        if !actor.staffRoles.isEmpty { return .success(()) }
        guard report.isPerOrganisation, let organisation, organisations.contains(organisation) else {
            return .failure(Refusal(.notFound, .r13, "There is no report \(report.rawValue) for you here."))
        }
        return .success(())
    }
}
