import AccessDomain
import Foundation
import Testing

// MARK: - Scenario vocabulary

private let now = Date(timeIntervalSince1970: 1_750_000_000)
private let day: TimeInterval = 86_400
private let acme = OrganisationID(number: 100_000_123)
private let alice = AccountID.random()  // the requester
private let bob = AccountID.random()  // a super user of acme
private let member = Actor(id: AccountID.random(), staffRoles: [])
private let superUserBob = Actor(id: bob, staffRoles: [])
private let desk = Actor(id: AccountID.random(), staffRoles: [.serviceDesk])
private let steward = Actor(id: AccountID.random(), staffRoles: [.dataSteward])

/// A clean submission by an active alice with security questions set, for acme with `superUsers` super users.
private func submission(
    _ role: Role, organisation: OrganisationID? = acme, superUsers: Int = 1,
    edit: (inout SubmissionFacts) -> Void = { _ in }
) -> SubmissionFacts {
    var facts = SubmissionFacts(
        requester: alice, accountActive: true, securityQuestionsSet: true, role: role,
        organisation: organisation, organisationExists: organisation != nil, organisationActiveSuperUsers: superUsers,
        hasPendingRequestForSameRole: false, holdsRole: false, now: now, activationDelay: day,
        requestLifetime: 30 * day)
    edit(&facts)
    return facts
}

/// Alice's pending request for acme, expiring in a day.
private func request(
    _ role: Role = .superUser, status: RequestStatus = .pending, approverKind: ApproverKind = .emaServiceDesk,
    expiresAt: Date? = now.addingTimeInterval(day), requester: AccountID = alice
) -> RequestSnapshot {
    RequestSnapshot(
        id: AccessRequestID(10_042), requester: requester, role: role, organisation: acme, status: status,
        approverKind: approverKind, expiresAt: expiresAt)
}

/// The service desk deciding `request` for an organisation with `superUsers` active super users.
private func byServiceDesk(_ request: RequestSnapshot, actor: Actor = desk, superUsers: Int = 0, ticket: Bool = true) -> DecisionFacts {
    DecisionFacts(
        request: request, actor: actor, channel: .serviceDesk, actorIsActiveSuperUser: false,
        organisationActiveSuperUsers: superUsers, hasValidTicket: ticket, now: now)
}

/// An organisation member deciding `request` through the super user approval API.
private func byOrganisation(_ request: RequestSnapshot, actor: Actor = superUserBob, isSuperUser: Bool = true, superUsers: Int = 1) -> DecisionFacts {
    DecisionFacts(
        request: request, actor: actor, channel: .organisation, actorIsActiveSuperUser: isSuperUser,
        organisationActiveSuperUsers: superUsers, hasValidTicket: false, now: now)
}

/// Revoking `role` held by `holder` in acme.
private func revocation(
    _ role: Role = .industryUser, holder: AccountID = alice, revoked: Bool = false, by actor: Actor = superUserBob,
    channel: RevocationChannel = .organisation, isSuperUser: Bool = true, superUsers: Int = 2
) -> RevocationFacts {
    RevocationFacts(
        assignment: AssignmentSnapshot(holder: holder, role: role, organisation: role.needsOrganisation ? acme : nil, revoked: revoked),
        actor: actor, channel: channel, actorIsActiveSuperUser: isSuperUser, organisationActiveSuperUsers: superUsers)
}

private func refusal<T>(_ result: Result<T, Refusal>) -> Refusal? {
    if case .failure(let refusal) = result { refusal } else { nil }
}

private func value<T>(_ result: Result<T, Refusal>) -> T? {
    if case .success(let value) = result { value } else { nil }
}

/// Expects `result` to be refused with exactly `code` under `rule`.
private func expectRefused<T>(
    _ result: Result<T, Refusal>, _ code: RefusalCode, _ rule: RuleID, sourceLocation: SourceLocation = #_sourceLocation
) {
    let refused = refusal(result)
    #expect(refused?.code == code, "\(String(describing: refused))", sourceLocation: sourceLocation)
    #expect(refused?.rule == rule, "\(String(describing: refused))", sourceLocation: sourceLocation)
}

/// Expects `result` to be allowed.
private func expectAllowed<T>(_ result: Result<T, Refusal>, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(refusal(result) == nil, "\(String(describing: refusal(result)))", sourceLocation: sourceLocation)
}

// MARK: - Submission

@Suite("Approval policy: submitting a request")
struct SubmissionPolicyTests {
    @Test("R2: a pending or disabled account cannot file a request")
    func inactiveAccount() {
        expectRefused(ApprovalPolicy.submit(submission(.industryUser) { $0.accountActive = false }), .accountNotActive, .r2)
        // Account state is checked before anything else.
        expectRefused(
            ApprovalPolicy.submit(
                submission(.industryUser, organisation: nil) {
                    $0.accountActive = false
                    $0.securityQuestionsSet = false
                }),
            .accountNotActive, .r2)
    }

    @Test("R3: a first-time user must set security questions before filing any request")
    func securityQuestions() {
        for role in Role.allCases {
            let facts = submission(role, organisation: role.needsOrganisation ? acme : nil) { $0.securityQuestionsSet = false }
            expectRefused(ApprovalPolicy.submit(facts), .securityQuestionsRequired, .r3)
        }
    }

    @Test("R4: industry roles need an organisation")
    func organisationRequired() {
        expectRefused(ApprovalPolicy.submit(submission(.industryUser, organisation: nil)), .organisationRequired, .r4)
        expectRefused(ApprovalPolicy.submit(submission(.superUser, organisation: nil)), .organisationRequired, .r4)
        #expect(Role.industryUser.needsOrganisation && Role.superUser.needsOrganisation)
    }

    @Test("R4: the unaffiliated role has no organisation")
    func organisationNotAllowed() {
        expectRefused(ApprovalPolicy.submit(submission(.unaffiliatedUser, organisation: acme)), .organisationNotAllowed, .r4)
        #expect(!Role.unaffiliatedUser.needsOrganisation)
    }

    @Test("R4: staff roles are never requestable; SPOR role names parse")
    func staffRolesNotRequestable() {
        for staff in StaffRole.allCases {
            expectRefused(ApprovalPolicy.requestableRole(staff.rawValue), .staffRoleNotRequestable, .r4)
        }
        expectRefused(ApprovalPolicy.requestableRole("spor-admin"), .staffRoleNotRequestable, .r4)
        for role in Role.allCases {
            #expect(value(ApprovalPolicy.requestableRole(role.rawValue)) == role)
        }
    }

    @Test("R6: an organisation role names an organisation that exists in OMS")
    func unknownOrganisation() {
        let facts = submission(.superUser, superUsers: 0) { $0.organisationExists = false }
        expectRefused(ApprovalPolicy.submit(facts), .unknownOrganisation, .r6)
    }

    @Test("R7: no request for a role already held")
    func alreadyHeld() {
        expectRefused(ApprovalPolicy.submit(submission(.industryUser) { $0.holdsRole = true }), .alreadyHeld, .r7)
        // Holding the role wins over a pending duplicate.
        let both = submission(.industryUser) {
            $0.holdsRole = true
            $0.hasPendingRequestForSameRole = true
        }
        expectRefused(ApprovalPolicy.submit(both), .alreadyHeld, .r7)
    }

    @Test("R7: at most one pending request per user, role and organisation")
    func duplicateRequest() {
        expectRefused(ApprovalPolicy.submit(submission(.superUser) { $0.hasPendingRequestForSameRole = true }), .duplicateRequest, .r7)
    }

    @Test("R9: an industry-user request for an organisation with no super user is refused")
    func noSuperUser() {
        expectRefused(ApprovalPolicy.submit(submission(.industryUser, superUsers: 0)), .noSuperUser, .r9)
        // The super user role itself is still requestable there (it goes to EMA).
        #expect(value(ApprovalPolicy.submit(submission(.superUser, superUsers: 0)))?.status == .pending)
    }

    @Test("R5: the unaffiliated role is approved automatically, effective after the activation delay")
    func unaffiliatedIsAutomatic() {
        let decision = value(ApprovalPolicy.submit(submission(.unaffiliatedUser, organisation: nil, superUsers: 0)))
        #expect(
            decision
                == SubmissionDecision(
                    status: .approved, approverKind: .automatic, expiresAt: nil, grantEffectiveFrom: now.addingTimeInterval(day)))

        let immediate = value(ApprovalPolicy.submit(submission(.unaffiliatedUser, organisation: nil) { $0.activationDelay = 0 }))
        #expect(immediate?.grantEffectiveFrom == now)
    }

    @Test("R8: a super-user request for an organisation with no super user goes to the EMA service desk")
    func firstSuperUserGoesToEMA() {
        let decision = value(ApprovalPolicy.submit(submission(.superUser, superUsers: 0)))
        #expect(
            decision
                == SubmissionDecision(
                    status: .pending, approverKind: .emaServiceDesk, expiresAt: now.addingTimeInterval(30 * day), grantEffectiveFrom: nil))
    }

    @Test("R8: later super-user and all industry-user requests go to the organisation's super users")
    func laterRequestsGoToOrganisation() {
        for role in [Role.superUser, .industryUser] {
            let decision = value(ApprovalPolicy.submit(submission(role, superUsers: 2)))
            #expect(
                decision
                    == SubmissionDecision(
                        status: .pending, approverKind: .organisationSuperUsers, expiresAt: now.addingTimeInterval(30 * day), grantEffectiveFrom: nil)
            )
        }
    }

    @Test("R8: routing depends on the role and the organisation's active super users")
    func currentApproverKind() {
        #expect(ApprovalPolicy.currentApproverKind(role: .superUser, organisationActiveSuperUsers: 0) == .emaServiceDesk)
        #expect(ApprovalPolicy.currentApproverKind(role: .superUser, organisationActiveSuperUsers: 1) == .organisationSuperUsers)
        #expect(ApprovalPolicy.currentApproverKind(role: .industryUser, organisationActiveSuperUsers: 3) == .organisationSuperUsers)
        #expect(ApprovalPolicy.currentApproverKind(role: .unaffiliatedUser, organisationActiveSuperUsers: 0) == .automatic)
    }

    @Test("R18: a pending request expires after the configured lifetime")
    func pendingRequestsExpire() {
        let decision = value(ApprovalPolicy.submit(submission(.industryUser) { $0.requestLifetime = 7 * day }))
        #expect(decision?.expiresAt == now.addingTimeInterval(7 * day))
    }
}

// MARK: - Decision

@Suite("Approval policy: deciding a request")
struct DecisionPolicyTests {
    @Test("R8: the service desk approves the first super user, with a ticket")
    func serviceDeskApprovesFirstSuperUser() {
        let outcome = value(ApprovalPolicy.decide(byServiceDesk(request()), .approve))
        #expect(outcome == .approved(grant: .superUser, firstSuperUser: true))
    }

    @Test("R8: super users approve later requests, which are not first super users")
    func organisationApprovesLaterRequests() {
        let superUserRequest = request(.superUser, approverKind: .organisationSuperUsers)
        #expect(value(ApprovalPolicy.decide(byOrganisation(superUserRequest), .approve)) == .approved(grant: .superUser, firstSuperUser: false))
        let industryRequest = request(.industryUser, approverKind: .organisationSuperUsers)
        #expect(value(ApprovalPolicy.decide(byOrganisation(industryRequest), .approve)) == .approved(grant: .industryUser, firstSuperUser: false))
    }

    @Test("R8: super users cannot decide a first-super-user request")
    func firstSuperUserNeedsEMA() {
        expectRefused(ApprovalPolicy.decide(byOrganisation(request(), superUsers: 0), .approve), .firstSuperUserNeedsEMA, .r8)
    }

    @Test("R8: the service desk takes no part in industry-user requests")
    func serviceDeskDelegatesIndustryUsers() {
        let industryRequest = request(.industryUser, approverKind: .organisationSuperUsers)
        expectRefused(ApprovalPolicy.decide(byServiceDesk(industryRequest, superUsers: 1), .approve), .delegatedToOrganisation, .r11)
        expectRefused(ApprovalPolicy.decide(byServiceDesk(industryRequest, superUsers: 1), .reject(reason: "no")), .delegatedToOrganisation, .r11)
    }

    @Test("R8: only the service desk may use the service desk channel")
    func serviceDeskChannelNeedsStaffRole() {
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request(), actor: steward), .approve), .notAuthorised, .r8)
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request(), actor: member), .approve), .notAuthorised, .r8)
    }

    @Test("R10: a first-super-user approval needs a valid service desk ticket")
    func ticketRequired() {
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request(), ticket: false), .approve), .ticketRequired, .r10)
    }

    @Test("R10: rejecting a first-super-user request needs no ticket")
    func rejectionNeedsNoTicket() {
        let outcome = value(ApprovalPolicy.decide(byServiceDesk(request(), ticket: false), .reject(reason: "No affiliation letter")))
        #expect(outcome == .rejected(reason: "No affiliation letter"))
    }

    @Test("R11: service desk approval is refused once the organisation has a super user")
    func serviceDeskRefusedAfterOrganisationGainsSuperUser() {
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request(), superUsers: 1), .approve), .delegatedToOrganisation, .r11)
    }

    @Test("R11: two racing first-super-user approvals yield one first super user")
    func oneFirstSuperUser() {
        let first = ApprovalPolicy.decide(byServiceDesk(request(requester: alice), superUsers: 0), .approve)
        #expect(value(first) == .approved(grant: .superUser, firstSuperUser: true))
        // The second decision runs under the organisation lock after the first committed.
        let second = ApprovalPolicy.decide(byServiceDesk(request(requester: AccountID.random()), superUsers: 1), .approve)
        expectRefused(second, .delegatedToOrganisation, .r11)
    }

    @Test("R11: a rerouted request is decided by the new super users, not as a first one")
    func reroutedRequestGoesToSuperUsers() {
        let rerouted = request(.superUser, approverKind: .emaServiceDesk)
        #expect(
            value(ApprovalPolicy.decide(byOrganisation(rerouted, superUsers: 1), .approve)) == .approved(grant: .superUser, firstSuperUser: false))
    }

    @Test("R11: a pending EMA request needs rerouting once the organisation has a super user")
    func rerouteNeeded() {
        #expect(ApprovalPolicy.rerouteNeeded(byServiceDesk(request(approverKind: .emaServiceDesk), superUsers: 1)))
        #expect(!ApprovalPolicy.rerouteNeeded(byServiceDesk(request(approverKind: .emaServiceDesk), superUsers: 0)))
        #expect(!ApprovalPolicy.rerouteNeeded(byServiceDesk(request(approverKind: .organisationSuperUsers), superUsers: 1)))
        #expect(!ApprovalPolicy.rerouteNeeded(byServiceDesk(request(status: .approved, approverKind: .emaServiceDesk), superUsers: 1)))
    }

    @Test("R12: nobody approves or rejects their own request, whatever the channel")
    func selfApproval() {
        let deskAgent = Actor(id: alice, staffRoles: [.serviceDesk])
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request(), actor: deskAgent), .approve), .selfApproval, .r12)
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request(), actor: deskAgent), .reject(reason: "x")), .selfApproval, .r12)
        let ownIndustryRequest = request(.industryUser, approverKind: .organisationSuperUsers)
        let selfSuperUser = Actor(id: alice, staffRoles: [])
        expectRefused(ApprovalPolicy.decide(byOrganisation(ownIndustryRequest, actor: selfSuperUser), .approve), .selfApproval, .r12)
        expectRefused(ApprovalPolicy.decide(byOrganisation(ownIndustryRequest, actor: selfSuperUser), .reject(reason: "x")), .selfApproval, .r12)
    }

    @Test("R13: a member who is not a super user gets not-found, never forbidden")
    func notVisibleToNonSuperUsers() {
        let industryRequest = request(.industryUser, approverKind: .organisationSuperUsers)
        expectRefused(ApprovalPolicy.decide(byOrganisation(industryRequest, actor: member, isSuperUser: false), .approve), .notFound, .r13)
        // Visibility is checked before routing: a first-super-user request stays invisible too.
        expectRefused(ApprovalPolicy.decide(byOrganisation(request(), actor: member, isSuperUser: false, superUsers: 0), .approve), .notFound, .r13)
    }

    @Test("R18: decided requests never change")
    func notPending() {
        for status in RequestStatus.allCases where status.isDecided {
            expectRefused(ApprovalPolicy.decide(byServiceDesk(request(status: status)), .approve), .notPending, .r18)
            expectRefused(ApprovalPolicy.decide(byOrganisation(request(.industryUser, status: status)), .reject(reason: "x")), .notPending, .r18)
        }
        #expect(!RequestStatus.pending.isDecided)
    }

    @Test("R18: a pending request past its expiry cannot be decided")
    func requestExpired() {
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request(expiresAt: now)), .approve), .requestExpired, .r18)
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request(expiresAt: now.addingTimeInterval(-1))), .approve), .requestExpired, .r18)
        expectAllowed(ApprovalPolicy.decide(byServiceDesk(request(expiresAt: now.addingTimeInterval(1))), .approve))
    }

    @Test("R18: a rejection needs a reason, which is trimmed")
    func reasonRequired() {
        expectRefused(ApprovalPolicy.decide(byServiceDesk(request()), .reject(reason: " \n\t ")), .reasonRequired, .r18)
        let industryRequest = request(.industryUser, approverKind: .organisationSuperUsers)
        expectRefused(ApprovalPolicy.decide(byOrganisation(industryRequest), .reject(reason: "")), .reasonRequired, .r18)
        #expect(
            value(ApprovalPolicy.decide(byOrganisation(industryRequest), .reject(reason: "  Not our employee \n")))
                == .rejected(reason: "Not our employee"))
    }

    @Test("R5: the unaffiliated role is never decided by a person")
    func unaffiliatedNeverDecided() {
        // As stored it is approved already, so it is not pending (the database says the same, R18).
        let unaffiliated = RequestSnapshot(
            id: AccessRequestID(10_001), requester: alice, role: .unaffiliatedUser, organisation: nil, status: .approved,
            approverKind: .automatic, expiresAt: nil)
        expectRefused(ApprovalPolicy.decide(byServiceDesk(unaffiliated), .approve), .notPending, .r18)
        expectRefused(ApprovalPolicy.decide(byOrganisation(unaffiliated), .reject(reason: "x")), .notPending, .r18)
        // Even a pending one (which cannot be stored) is not for a person to decide.
        var pending = unaffiliated
        pending.status = .pending
        expectRefused(ApprovalPolicy.decide(byServiceDesk(pending), .approve), .notAuthorised, .r5)
    }
}

// MARK: - Cancel and expire

@Suite("Approval policy: cancelling and expiring")
struct LifecyclePolicyTests {
    @Test("R18: the requester may cancel their pending request")
    func requesterCancels() {
        expectAllowed(ApprovalPolicy.cancel(request: request(), actor: alice))
    }

    @Test("R13: someone else's request cannot be cancelled and is not found")
    func othersCannotCancel() {
        expectRefused(ApprovalPolicy.cancel(request: request(), actor: bob), .notFound, .r13)
    }

    @Test("R18: a decided request cannot be cancelled")
    func decidedCannotBeCancelled() {
        for status in RequestStatus.allCases where status.isDecided {
            expectRefused(ApprovalPolicy.cancel(request: request(status: status), actor: alice), .notPending, .r18)
        }
    }

    @Test("R18: only pending requests past their expiry expire")
    func expire() {
        expectAllowed(ApprovalPolicy.expire(request: request(expiresAt: now), now: now))
        expectAllowed(ApprovalPolicy.expire(request: request(expiresAt: now.addingTimeInterval(-day)), now: now))
        expectRefused(ApprovalPolicy.expire(request: request(expiresAt: now.addingTimeInterval(1)), now: now), .notPending, .r18)
        expectRefused(ApprovalPolicy.expire(request: request(expiresAt: nil), now: now), .notPending, .r18)
        expectRefused(ApprovalPolicy.expire(request: request(status: .approved, expiresAt: now), now: now), .notPending, .r18)
    }
}

// MARK: - Revocation

@Suite("Approval policy: revoking roles")
struct RevocationPolicyTests {
    @Test("R14: a super user revokes roles in their organisation")
    func superUserRevokes() {
        expectAllowed(ApprovalPolicy.revoke(revocation(.industryUser)))
        expectAllowed(ApprovalPolicy.revoke(revocation(.superUser, superUsers: 2)))
    }

    @Test("R14: users may drop their own roles")
    func dropOwnRole() {
        let own = Actor(id: alice, staffRoles: [])
        expectAllowed(ApprovalPolicy.revoke(revocation(.industryUser, by: own, channel: .own, isSuperUser: false)))
        expectAllowed(ApprovalPolicy.revoke(revocation(.unaffiliatedUser, by: own, channel: .own, isSuperUser: false, superUsers: 0)))
    }

    @Test("R13: only the holder may drop a role as their own; others get not-found")
    func ownChannelIsHolderOnly() {
        expectRefused(ApprovalPolicy.revoke(revocation(.industryUser, by: member, channel: .own, isSuperUser: false)), .notFound, .r13)
    }

    @Test("R13: a non super user cannot see the organisation's members to revoke")
    func organisationChannelNeedsSuperUser() {
        expectRefused(ApprovalPolicy.revoke(revocation(.industryUser, by: member, isSuperUser: false)), .notFound, .r13)
    }

    @Test("R14: the service desk channel needs the service desk role")
    func serviceDeskChannelNeedsStaffRole() {
        expectRefused(ApprovalPolicy.revoke(revocation(.industryUser, by: steward, channel: .serviceDesk, isSuperUser: false)), .notAuthorised, .r14)
    }

    @Test("R14: the organisation cannot remove its last active super user")
    func lastSuperUser() {
        expectRefused(ApprovalPolicy.revoke(revocation(.superUser, holder: AccountID.random(), superUsers: 1)), .lastSuperUser, .r14)
        // Not by dropping it themselves either.
        expectRefused(ApprovalPolicy.revoke(revocation(.superUser, holder: bob, channel: .own, superUsers: 1)), .lastSuperUser, .r14)
    }

    @Test("R14: the service desk may remove the last super user")
    func serviceDeskRemovesLastSuperUser() {
        expectAllowed(ApprovalPolicy.revoke(revocation(.superUser, by: desk, channel: .serviceDesk, isSuperUser: false, superUsers: 1)))
        // After which the next super-user request is a first one again (R8).
        #expect(ApprovalPolicy.currentApproverKind(role: .superUser, organisationActiveSuperUsers: 0) == .emaServiceDesk)
    }

    @Test("R14: a revoked role has nothing left to revoke")
    func alreadyRevoked() {
        expectRefused(ApprovalPolicy.revoke(revocation(.industryUser, revoked: true)), .notFound, .r14)
        expectRefused(ApprovalPolicy.revoke(revocation(.superUser, revoked: true, by: desk, channel: .serviceDesk)), .notFound, .r14)
    }
}

// MARK: - OMS change requests and refusals

@Suite("Approval policy: OMS change requests")
struct OMSChangePolicyTests {
    @Test("R17: filing an OMS change request needs an effective SPOR role")
    func filingNeedsEffectiveRole() {
        expectRefused(ApprovalPolicy.canFileOMSChangeRequest(hasEffectiveSPORRole: false), .noEffectiveRole, .r17)
        expectAllowed(ApprovalPolicy.canFileOMSChangeRequest(hasEffectiveSPORRole: true))
    }

    @Test("R17: only a data steward decides OMS change requests")
    func decidingNeedsDataSteward() {
        expectAllowed(ApprovalPolicy.canDecideOMSChangeRequest(actor: steward))
        expectRefused(ApprovalPolicy.canDecideOMSChangeRequest(actor: desk), .notAuthorised, .r17)
        expectRefused(ApprovalPolicy.canDecideOMSChangeRequest(actor: Actor(id: alice, staffRoles: [.admin])), .notAuthorised, .r17)
    }

    @Test("Refusals describe themselves with rule, code and message")
    func refusalDescription() {
        let refusal = Refusal(.lastSuperUser, .r14, "Keep one.")
        #expect(refusal.description == "R14 last-super-user: Keep one.")
        #expect(Set(RefusalCode.allCases.map(\.rawValue)).count == RefusalCode.allCases.count)
    }
}
