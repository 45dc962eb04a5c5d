/// The id of a domain rule of the design brief (R1–R18) and of the rules added since (R19–R22: docs/rules.md).
public enum RuleID: String, Sendable {
    case r1 = "R1"
    case r2 = "R2"
    case r3 = "R3"
    case r4 = "R4"
    case r5 = "R5"
    case r6 = "R6"
    case r7 = "R7"
    case r8 = "R8"
    case r9 = "R9"
    case r10 = "R10"
    case r11 = "R11"
    case r12 = "R12"
    case r13 = "R13"
    case r14 = "R14"
    case r15 = "R15"
    case r16 = "R16"
    case r17 = "R17"
    case r18 = "R18"
    case r19 = "R19"
    case r20 = "R20"
    case r21 = "R21"
    case r22 = "R22"
}

/// A rule said no: a stable code for clients, the rule it enforces, and a message a person can act on.
public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: RefusalCode
    public let rule: RuleID
    public let message: String
    /// The input field at fault, when there is one (`letter.contentBase64`, `subject`, ...).
    public let field: String?

    /// Creates a refusal of `code` under `rule`, explained by `message`.
    public init(_ code: RefusalCode, _ rule: RuleID, _ message: String, field: String? = nil) {
        self.code = code
        self.rule = rule
        self.message = message
        self.field = field
    }

    public var description: String { "\(rule.rawValue) \(code.rawValue): \(message)" }
}

/// The stable machine-readable refusal codes, as they appear in problem details.
public enum RefusalCode: String, Sendable, CaseIterable {
    /// Input that breaks a stated requirement (R10 tickets, R17 change requests); `field` names it.
    case validationFailed = "validation-failed"
    /// R2: an account with this e-mail exists already; sign in with it instead.
    case accountExists = "account-exists"
    /// R3: security questions must be answered before filing any request.
    case securityQuestionsRequired = "security-questions-required"
    /// R2/R3: pending or disabled accounts cannot file.
    case accountNotActive = "account-not-active"
    /// R4: staff roles are granted by an administrator, never requested.
    case staffRoleNotRequestable = "staff-role-not-requestable"
    /// R4: industry roles need an organisation.
    case organisationRequired = "organisation-required"
    /// R4: the unaffiliated role has no organisation.
    case organisationNotAllowed = "organisation-not-allowed"
    /// R6: the organisation is not in OMS.
    case unknownOrganisation = "unknown-organisation"
    /// R7: a pending request for the same role and organisation exists.
    case duplicateRequest = "duplicate-request"
    /// R7: the role is already held.
    case alreadyHeld = "already-held"
    /// R9: an industry-user request for an organisation without a super user.
    case noSuperUser = "no-super-user"
    /// R8/R11: the service desk tries to decide a request that belongs to the organisation's super users.
    case delegatedToOrganisation = "delegated-to-organisation"
    /// R8: super users try to decide a first-super-user request.
    case firstSuperUserNeedsEMA = "first-super-user-needs-ema"
    /// R10: no valid service desk ticket for a first-super-user approval.
    case ticketRequired = "ticket-required"
    /// R12: nobody decides their own request.
    case selfApproval = "self-approval"
    /// R13: not visible to this actor (never "forbidden").
    case notFound = "not-found"
    /// No valid session: the bearer token is unknown, expired or signed out (the database authenticates it).
    case notAuthenticated = "not-authenticated"
    /// Acting without the needed role where the resource is visible.
    case notAuthorised = "not-authorised"
    /// R14: the organisation cannot remove its last active super user.
    case lastSuperUser = "last-super-user"
    /// R18: decided requests never change.
    case notPending = "not-pending"
    /// R18: pending but past its expiry.
    case requestExpired = "request-expired"
    /// Rejections need a reason.
    case reasonRequired = "reason-required"
    /// R17: OMS change requests need an effective SPOR role.
    case noEffectiveRole = "no-effective-role"

    /// R19: the ticket was closed as delegated; its request is decided by the organisation's super users.
    case ticketDelegated = "ticket-delegated"
    /// R21: access would end before it is granted (a requested or granted end not in the future).
    case grantEndInPast = "grant-end-in-past"
    /// R21: the approver chose a later end than the requester asked for; approvers may only shorten.
    case grantLengthened = "grant-lengthened"

    // Codes only the database raises today: a direct SQL client, or a Swift half that missed something.
    /// R10/R14/R17/R18: a decided or recorded row may not be changed.
    case immutable
    /// R10: a ticket for a request that is not a pending first-super-user request.
    case notFirstSuperUserRequest = "not-first-super-user-request"
    /// R5/R8/R11: the recorded approver kind is not the one the rules give.
    case routingMismatch = "routing-mismatch"
    /// R4: an approved request without its role assignment in the same transaction.
    case grantMissing = "grant-missing"
    /// R5: an automatic grant effective earlier than the activation delay allows.
    case activationDelay = "activation-delay"
    /// R15: an audit event naming an actor other than the one acting.
    case auditActor = "audit-actor"
    /// R15: an audit event names the organisation of its subject.
    case auditOrganisation = "audit-organisation"
    /// R15: an audit event is about a known kind of subject.
    case auditSubject = "audit-subject"
    /// R15: audit events are never updated or deleted.
    case auditImmutable = "audit-immutable"
    /// R15: a change without its audit event in the same transaction.
    case auditRequired = "audit-required"
    /// R16: a notified change without its outbox row in the same transaction.
    case notificationRequired = "notification-required"
    /// R16: only a dead message can be requeued (a queued one is on its way, a sent one arrived).
    case notDead = "not-dead"
}
