/// What an audit event records (R15). The raw values are the ones stored in `audit_events.action`; the rule
/// triggers of the database look for them, so a misspelt action is a compile error here, not a failure at COMMIT.
public enum AuditAction: String, Sendable, CaseIterable {
    case accountRegistered = "account.registered"
    case accountCreatedByAdministrator = "account.created-by-administrator"
    case securityQuestionsSet = "account.security-questions-set"
    case staffRoleGranted = "staff-role.granted"
    case requestSubmitted = "access-request.submitted"
    case requestRerouted = "access-request.rerouted"
    case requestApproved = "access-request.approved"
    case requestRejected = "access-request.rejected"
    case requestCancelled = "access-request.cancelled"
    case requestExpired = "access-request.expired"
    case roleGranted = "role-assignment.granted"
    case roleRevoked = "role-assignment.revoked"
    case roleDropped = "role-assignment.dropped"
    /// R21: a time-bound grant reached its end (the clock ended it; nobody revoked it).
    case roleEnded = "role-assignment.ended"
    case ticketOpened = "service-desk-ticket.opened"
    case ticketResolved = "service-desk-ticket.resolved"
    case changeRequestFiled = "oms-change-request.filed"
    case changeRequestApproved = "oms-change-request.approved"
    case changeRequestRejected = "oms-change-request.rejected"
    case organisationCreated = "organisation.created"
    case organisationImported = "organisation.imported"
    case notificationRequeued = "notification.requeued"
    /// R22: the reviews job opened an organisation's access review, or closed it at its due date.
    case reviewOpened = "access-review.opened"
    case reviewClosed = "access-review.closed"
    /// R22: a review item was certified or revoked (subject: the item).
    case reviewItemCertified = "access-review.certified"
    case reviewItemRevoked = "access-review.revoked"
    /// A column of the deployment's settings changed (written by the database's `r15_settings_changed`, 0052; subject:
    /// `settings`/`deployment`; before and after name the changed columns only).
    case settingsChanged = "settings.changed"

    /// The audit action of a request reaching a decided state.
    public static func request(_ status: RequestStatus) -> AuditAction? {
        switch status {
        case .pending: nil
        case .approved: .requestApproved
        case .rejected: .requestRejected
        case .cancelled: .requestCancelled
        case .expired: .requestExpired
        }
    }
}

/// The kind of thing an audit event or a notification is about; raw values as stored in `subject_type`.
public enum AuditSubject: String, Sendable, CaseIterable {
    case account
    case accessRequest = "access_request"
    case roleAssignment = "role_assignment"
    case serviceDeskTicket = "service_desk_ticket"
    case omsChangeRequest = "oms_change_request"
    case organisation
    case notification
    /// R22: an access review, and one of its items.
    case accessReview = "access_review"
    case accessReviewItem = "access_review_item"
    /// The deployment's settings row (one subject: `deployment`).
    case settings
}

/// The notifications of R16; raw values as stored in `notification_outbox.template`.
public enum NotificationTemplate: String, Sendable, CaseIterable {
    case verifyEmail = "verify-email"
    case requestFiled = "request-filed"
    case requestFiledFirstSuperUser = "request-filed-first-super-user"
    case requestDecided = "request-decided"
    case ticketOpened = "ticket-opened"
    case ticketResolved = "ticket-resolved"
    case changeRequestDecided = "oms-change-request-decided"
    /// R20: the organisation lost its last super user; to each requester of a pending industry-user request (about the
    /// request) and to the service desk (about the organisation).
    case requestStranded = "request-stranded"
    /// Issue 12: an organisation request pending longer than the setting, to its super users (once).
    case requestReminder = "request-reminder"
    /// Issue 12: an open service desk ticket past its due time, to the service desk (once).
    case ticketOverdue = "ticket-overdue"
    /// R21: a time-bound grant ends soon (settings.grant_notice_days before), to its holder and the organisation's
    /// super users, and to the service desk when no other super user's grant outlasts a super user's.
    case grantEnding = "grant-ending"
    /// R21: a time-bound grant has ended, to its holder, and to the service desk when the organisation has no super
    /// user left.
    case grantEnded = "grant-ended"
    /// R22: an access review opened, to the organisation's super users (and the service desk when it has at most one).
    case reviewOpened = "review-opened"
    /// R22: an access review closed with items undecided, to the super users and the service desk.
    case reviewClosed = "review-closed"
    /// R22: a role revoked in an access review (decided, or undecided at the due date), to its holder.
    case reviewRevoked = "review-revoked"
}
